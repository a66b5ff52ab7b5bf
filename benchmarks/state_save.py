"""The run state's save alone: what `apigen run` pays at every finished request (issue 25).

A state of about 2,700 bytes (a run's settings and report) saved 2,000 times in a loop, its
request count changed each time, without ``fsync`` (as between the once-a-second syncs), in a
folder of the current directory (the disk a run writes to). Each code runs in a fresh process:
this checkout's, and with ``--compare SRC`` other code (``git archive REV | tar -x -C DIR``, then
``DIR/src``), interleaved. Printed: milliseconds a save, median and range over the repeats, and
the size of the state file.

    python benchmarks/state_save.py                       # a few seconds
    python benchmarks/state_save.py --compare /tmp/before/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

_MEASURE = """
import os, sys, tempfile, time
from apigen_cli import checkpoint
from apigen_cli.checkpoint import RunState

saves = int(sys.argv[1])
state = RunState(
    "f" * 32, seed=1, requests_total=saves, settings={f"setting {n}": "x" * 30 for n in range(50)},
    report={"models": {"bench": {"requested": 1, "verified": 1}}, "reasons": {"exec_check": {"exception": 1}}},
)
with tempfile.TemporaryDirectory(dir=os.getcwd()) as folder:
    path = os.path.join(folder, "out.jsonl.apigen-run.json")
    state.save(path)
    saving = getattr(checkpoint, "saving", None)  # the code before the two slots saved by renaming only
    start = time.perf_counter()
    if saving is None:
        for done in range(saves):
            state.requests_done = done
            state.save(path, sync=False)
    else:
        with saving(path) as save:
            for done in range(saves):
                state.requests_done = done
                save(state, sync=False)
    took = time.perf_counter() - start
    print(took / saves * 1e3, os.path.getsize(path))
"""


def measure(src: Path, saves: int) -> tuple[float, int]:
    """(ms a save, bytes of the state file) of the code at ``src``, in a fresh process."""
    environment = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(saves)], env=environment, capture_output=True, text=True, check=True
    )
    millis, size = out.stdout.split()
    return float(millis), int(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=2000, help="saves in each loop (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="loops of each code (default 3)")
    parser.add_argument("--compare", metavar="SRC", help="also run other code (PYTHONPATH=SRC), interleaved")
    args = parser.parse_args()
    codes = {"this checkout": SRC} | ({"compared": Path(args.compare)} if args.compare else {})
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in codes}
    for _ in range(args.repeat):
        for name, src in codes.items():
            results[name].append(measure(src, args.saves))
    for name, runs in results.items():
        millis = [ms for ms, _ in runs]
        print(
            f"{name}: {statistics.median(millis):.4f} ms a save ({min(millis):.4f}-{max(millis):.4f}), "
            f"state file {runs[-1][1]} bytes"
        )


if __name__ == "__main__":
    main()
