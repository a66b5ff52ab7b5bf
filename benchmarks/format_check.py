"""Rows per second of format-check, against the orjson floor, measured in the same run.

Builds N rows (default 200,000) from the BFCL corpus in ../shared/corpora (each row
repeated with a fresh id), then times, on one core:

- floor: a bare loop of ``orjson.loads`` + ``orjson.dumps`` over the same lines;
- format-check: the real stage path (read_rows -> format_check -> JSONL writer), as
  ``apigen format-check FILE -o /dev/null`` runs it;

and prints both rates and their ratio (the aim is at least 0.5). It also measures the
peak memory of the stage over N/4 and N rows in child processes: it should stay flat.

    python benchmarks/format_check.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "bfcl"


def build_input(path: Path, rows: int) -> int:
    """Write ``rows`` BFCL rows to ``path``; returns the mean line length."""
    base = []
    for name in sorted(CORPORA.glob("*.jsonl")):
        base.extend(orjson.loads(line) for line in name.read_bytes().splitlines() if line.strip())
    if not base:
        sys.exit(f"no BFCL corpus found in {CORPORA}")
    total = 0
    with path.open("wb") as out:
        for index in range(rows):
            row = dict(base[index % len(base)])
            row["id"] = f"{row['id']}#{index}"
            line = orjson.dumps(row) + b"\n"
            total += len(line)
            out.write(line)
    return total // rows


def floor_rate(path: Path) -> float:
    started = time.perf_counter()
    count = 0
    with path.open("rb") as lines, open(os.devnull, "wb") as sink:
        for line in lines:
            sink.write(orjson.dumps(orjson.loads(line)) + b"\n")
            count += 1
    return count / (time.perf_counter() - started)


def stage_rate(path: Path) -> float:
    from apigen_cli.rows.runner import Destinations, run_stage
    from apigen_cli.stages.format_check import format_check

    started = time.perf_counter()
    summary = run_stage("format-check", format_check, Destinations(str(path), os.devnull, os.devnull))
    elapsed = time.perf_counter() - started
    return summary.total / elapsed


def peak_memory_mb(path: Path) -> float:
    """Peak RSS of a child process running the stage over ``path``."""
    code = (
        "import resource, os, sys\n"
        "from apigen_cli.stages.format_check import format_check\n"
        "from apigen_cli.rows.runner import Destinations, run_stage\n"
        "run_stage('format-check', format_check, Destinations(sys.argv[1], os.devnull, os.devnull))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(result.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        full, quarter = Path(folder) / "rows.jsonl", Path(folder) / "quarter.jsonl"
        mean_length = build_input(full, options.rows)
        build_input(quarter, options.rows // 4)
        print(f"{options.rows} BFCL rows, {mean_length} bytes each on average; best of {options.repeat}, one core")
        floors, stages = [], []
        for _ in range(options.repeat):  # interleaved, so both see the same machine noise
            floors.append(floor_rate(full))
            stages.append(stage_rate(full))
        floor, stage = max(floors), max(stages)
        print(f"orjson loads+dumps floor : {floor:10,.0f} rows/s")
        print(f"format-check             : {stage:10,.0f} rows/s")
        print(f"ratio                    : {stage / floor:10.2f}  (aim: >= 0.5)")
        small, large = peak_memory_mb(quarter), peak_memory_mb(full)
        print(
            f"peak RSS, {options.rows // 4} rows: {small:.0f} MB; {options.rows} rows: {large:.0f} MB "
            f"(ratio {large / small:.2f}; flat is ~1.0)"
        )


if __name__ == "__main__":
    main()
