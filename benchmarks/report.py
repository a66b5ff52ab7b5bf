"""Rows per second and peak memory of `apigen report`, beside `apigen stats` over the same files.

A small offline run of the sample data gives the rows; copies of them with fresh ids,
request ids, queries and argument values (so every row is its own, as in a long run)
make files of growing size. Each size is read by `apigen stats` (Table 1 only: the
baseline) and by `apigen report --html --card` (every figure), each in its own process;
peak memory is that process's peak resident set.

The copies are written in plan order, as a run writes its files (request ids
`gen-SEED-INDEX` ascending in each file), so Table 1 reads the files together and
settles each request as soon as both have passed it. The baseline, `--orders shuffled`,
writes the copies in reverse: the files are then out of plan order and are read one
after another, every request kept to the end (what every read did before).

    .venv/bin/python benchmarks/report.py                      # 50,000 and 500,000 rows, both orders
    .venv/bin/python benchmarks/report.py --sizes 20000 100000 --orders plan
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from _common import APIGEN, apigen_command, read_jsonl


def apigen(*arguments: str) -> list[str]:
    return [*APIGEN, *arguments]


def base_rows(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out, rejects = folder / "base.jsonl", folder / "base_rejects.jsonl"
    subprocess.run(apigen_command("run", count=600, seed=3, out=out, rejects=rejects), check=True)
    return read_jsonl(out), read_jsonl(rejects)


REQUEST_ID = re.compile(r"^gen-(\d+)-(\d+)$")
COPY_STRIDE = 100_000  # request indexes of copy c start at c * COPY_STRIDE (the base run has fewer requests)


def write_copies(
    folder: Path, size: int, kept: list[dict[str, Any]], rejected: list[dict[str, Any]], *, in_plan_order: bool = True
) -> tuple[Path, Path]:
    """``size`` rows in all, kept and rejected in the base run's proportion, each one fresh.

    Copy ``c`` of a request ``gen-S-I`` is request ``gen-S-(c * COPY_STRIDE + I)``: in plan
    order when the copies are written first to last, out of it when written last to first.
    """
    rows = kept + rejected
    copies = -(-size // len(rows))
    out, rejects = folder / f"data{size}.jsonl", folder / f"rejects{size}.jsonl"
    with open(out, "wb") as kept_file, open(rejects, "wb") as rejects_file:
        for m in range(size):
            row = dict(rows[m % len(rows)])
            copy = m // len(rows) if in_plan_order else copies - 1 - m // len(rows)
            n = copy * len(rows) + m % len(rows)
            row["id"] = f"{row['id']}-c{copy}"
            match = REQUEST_ID.match(str(row.get("request_id")))
            if match:
                row["request_id"] = f"gen-{match.group(1)}-{copy * COPY_STRIDE + int(match.group(2)):09d}"
            elif "request_id" in row:
                row["request_id"] = f"{row['request_id']}{copy:04d}"
            if isinstance(row.get("query"), str):
                row["query"] = f"{row['query']} (case {n})"
            if isinstance(row.get("answers"), list):
                row["answers"] = [
                    {"name": call.get("name"), "arguments": {**(call.get("arguments") or {}), "case": n}}
                    for call in row["answers"]
                    if isinstance(call, dict)
                ]
            (rejects_file if "rejected_by" in row else kept_file).write(orjson.dumps(row) + b"\n")
    return out, rejects


def measure(command: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one child process (its own, from wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"{command[3]} failed with exit code {process.returncode}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 500_000])
    parser.add_argument("--orders", nargs="+", choices=["shuffled", "plan"], default=["shuffled", "plan"])
    arguments = parser.parse_args()
    print(
        "rows      order     stats rows/s  report rows/s  ratio  stats peak MB  report peak MB  stats MB / shuffled  report MB / shuffled"
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        kept, rejected = base_rows(folder)
        for size in sorted(arguments.sizes):
            baseline: tuple[float, float] | None = None
            for order in arguments.orders:
                out, rejects = write_copies(folder, size, kept, rejected, in_plan_order=order == "plan")
                stats_seconds, stats_peak = measure(apigen("stats", str(out), str(rejects), "--json"))
                report_seconds, report_peak = measure(
                    apigen(
                        "report",
                        str(out),
                        str(rejects),
                        "--html",
                        str(folder / "r.html"),
                        "--card",
                        str(folder / "README.md"),
                        "-q",
                    )
                )
                baseline = baseline or (stats_peak, report_peak)
                print(
                    f"{size:<9} {order:<9} {size / stats_seconds:>12,.0f}  {size / report_seconds:>13,.0f}"
                    f"  {stats_seconds / report_seconds:>5.2f}  {stats_peak:>13.0f}  {report_peak:>14.0f}"
                    f"  {stats_peak / baseline[0]:>19.2f}  {report_peak / baseline[1]:>20.2f}",
                    flush=True,
                )
                out.unlink()
                rejects.unlink()


if __name__ == "__main__":
    main()
