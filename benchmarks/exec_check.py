"""exec-check throughput and the cost of a hung call, each beside a baseline measured in the same run.

1. Calls per second of a trivial function through ``exec_check`` (isolation on: worker
   processes, pipes, JSON conversion), beside the same calls in a plain in-process loop.
2. The same through the real CLI, file in and ``/dev/null`` out (interpreter and worker
   start-up included).
3. What a row that loops forever costs: the run's time with one such row, minus the same
   run without it, as a multiple of ``--timeout``.

Run: ``.venv/bin/python benchmarks/exec_check.py [--calls N] [--repeat K]``. The machine
is shared and noisy, so each figure is the best and the median of K runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apigen_cli import ExecPolicy, Executor, ExecutorOptions, exec_check
from apigen_cli.execution.pool import default_workers

LIBRARY = """
def add(a, b):
    return a + b


def spin():
    while True:
        pass
"""


def rows_of(calls: int) -> list[dict[str, Any]]:
    return [{"id": str(n), "query": "q", "answers": [{"name": "add", "arguments": {"a": n, "b": 1}}]} for n in range(calls)]


def best_and_median(samples: list[float]) -> tuple[float, float]:
    return max(samples), statistics.median(samples)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def in_process(library: Path, calls: int) -> float:
    namespace: dict[str, Any] = {}
    exec(compile(library.read_text(), str(library), "exec"), namespace)  # our own benchmark library, not user input
    add = namespace["add"]
    rows = rows_of(calls)

    def loop() -> None:
        for row in rows:
            for call in row["answers"]:
                add(**call["arguments"])

    return calls / timed(loop)


def through_stage(executor: Executor, calls: int) -> float:
    rows = rows_of(calls)
    return calls / timed(lambda: list(exec_check(rows, executor)))


def through_cli(library: Path, rows_file: Path, calls: int) -> float:
    command = [sys.executable, "-m", "apigen_cli", "exec-check", str(rows_file), "--functions", str(library)]
    command += ["-o", os.devnull, "-q"]
    return calls / timed(lambda: subprocess.run(command, check=True))


def loop_cost(library: Path, timeout: float, calls: int) -> float:
    """Seconds a row looping forever adds to a run of ``calls`` trivial rows."""
    plain = rows_of(calls)
    hung = rows_of(calls)
    hung.insert(calls // 2, {"id": "spin", "query": "q", "answers": [{"name": "spin", "arguments": {}}]})
    with Executor(library, ExecutorOptions(timeout=timeout)) as executor:
        without = timed(lambda: list(exec_check(plain, executor, ExecPolicy())))
        with_it = timed(lambda: list(exec_check(hung, executor, ExecPolicy())))
    return with_it - without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1.0)
    options = parser.parse_args()
    calls, repeat = options.calls, options.repeat

    with tempfile.TemporaryDirectory() as folder:
        library = Path(folder) / "bench_tools.py"
        library.write_text(LIBRARY)
        rows_file = Path(folder) / "rows.jsonl"
        rows_file.write_text("".join(json.dumps(row) + "\n" for row in rows_of(calls)))

        baseline = best_and_median([in_process(library, calls) for _ in range(repeat)])
        workers = default_workers()
        with Executor(library) as executor:
            through_stage(executor, 2_000)  # warm up
            stage = best_and_median([through_stage(executor, calls) for _ in range(repeat)])
        cli = best_and_median([through_cli(library, rows_file, calls) for _ in range(repeat)])
        costs = sorted(loop_cost(library, options.timeout, 5_000) for _ in range(3))

    print(f"exec-check: {calls:,} calls of a trivial function, {os.cpu_count()} CPUs, best (median) of {repeat} runs")
    print(f"  plain in-process loop                   {baseline[0]:>12,.0f} calls/s ({baseline[1]:,.0f})")
    print(
        f"  exec_check stage, {workers} worker processes    {stage[0]:>12,.0f} calls/s ({stage[1]:,.0f})"
        f"   ratio to the loop {stage[0] / baseline[0]:.4f}"
    )
    print(f"  apigen exec-check CLI, file to /dev/null {cli[0]:>11,.0f} rows/s  ({cli[1]:,.0f})   start-up included")
    print(
        f"  a row looping forever, --timeout {options.timeout:g} s: adds {costs[0]:.2f} s (median {costs[1]:.2f} s)"
        f" = {costs[1] / options.timeout:.2f} x the timeout"
    )


if __name__ == "__main__":
    main()
