"""trajectory-check: rows/s against a bare in-process replay of the same calls (the floor).

The rows are the sample store's four conversations (sample_data/store/conversations.jsonl),
repeated: each row is two sessions (the gold actions and the conversation's calls) on fresh
instances of the store's initial state. Measured in the same run:

1. the bare in-process replay: for each row, fresh instances and both call lists, nothing else
   (the floor: what the environment's own code costs);
2. ``trajectory_check`` from Python, the rows streamed through the workers (1 and 2 workers);
3. ``apigen trajectory-check FILE -o OUT`` as a process, start-up, reading and writing included.

Ratios are to the floor, measured in this run. Run: ``.venv/bin/python benchmarks/trajectory_check.py
[--rows N] [--repeat K]``. The machine is shared and noisy, so each figure is the best and the
median of K runs.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import APIGEN, SAMPLE, read_jsonl

from apigen_cli import Executor, ExecutorOptions
from apigen_cli.conversations.trajectory_check import trajectory_check
from apigen_cli.conversations.transcript import read_transcript
from apigen_cli.environments.session import Session

STORE = SAMPLE / "store"


def store_classes() -> dict[str, type]:
    """The store's classes, imported here as the worker imports them."""
    path = STORE / "online_store.py"
    spec = importlib.util.spec_from_file_location("online_store", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules["online_store"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: value for name, value in vars(module).items() if isinstance(value, type)}


def bare_replay(found: dict[str, type], rows: list[dict[str, Any]]) -> None:
    for row in rows:
        transcript = read_transcript(copy.deepcopy(row))
        for calls in (transcript.actions, [call.action() for call in transcript.calls]):
            session = Session(found, transcript.environment)
            for call in calls:
                session.call(call["name"], call["arguments"])


def in_workers(rows: list[dict[str, Any]], workers: int) -> float:
    with Executor(str(STORE), ExecutorOptions(workers=workers, timeout=30)) as executor:
        copies = copy.deepcopy(rows)
        started = time.perf_counter()
        checked = list(trajectory_check(copies, executor))
        elapsed = time.perf_counter() - started
    assert len(checked) == len(rows)
    return elapsed


def as_process(source: Path, out: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*APIGEN, "trajectory-check", str(source), "--functions", str(STORE), "-o", str(out), "--keep-rejected", "-q"],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return elapsed


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def best_and_median(measure: Callable[[], float], repeat: int) -> tuple[float, float]:
    times = [measure() for _ in range(repeat)]
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    conversations = read_jsonl(STORE / "conversations.jsonl")
    rows = [dict(conversations[n % len(conversations)], id=f"row-{n}") for n in range(options.rows)]
    found = store_classes()
    measured = [
        ("bare in-process replay (the floor)", best_and_median(lambda: timed(lambda: bare_replay(found, rows)), options.repeat))
    ]
    for workers in (1, 2):
        label = f"`trajectory_check` from Python, {workers} worker{'s' if workers > 1 else ''}"
        measured.append((label, best_and_median(lambda workers=workers: in_workers(rows, workers), options.repeat)))  # type: ignore[misc]
    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / "rows.jsonl", Path(folder) / "out.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in rows))
        measured.append(("`apigen trajectory-check` as a process (default workers)", best_and_median(lambda: as_process(source, out), options.repeat)))  # fmt: skip
    floor = measured[0][1][0]
    print(f"{options.rows} rows (2 sessions each); best (median) of {options.repeat}")
    print("| measure | rows/s | ms per row | time / floor |")
    print("| --- | --- | --- | --- |")
    for label, (best, median) in measured:
        print(
            f"| {label} | {options.rows / best:,.0f} ({options.rows / median:,.0f}) | "
            f"{best / options.rows * 1000:.2f} ({median / options.rows * 1000:.2f}) | {best / floor:,.1f}x |"
        )


if __name__ == "__main__":
    main()
