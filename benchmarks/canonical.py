"""Reading an environment's state: the canonical walk of this checkout against another revision's, alternating.

What a session does after every call, on the sample store's initial state (43 KB of JSON: 12
users, 16 products, 34 orders): ``canonical`` (the walk), ``digest`` (the walk, its JSON and a
SHA-256), and ``state_of`` an ``OnlineStore`` loaded with it (the store's own ``state()``, a deep
copy, then the walk: the whole read). ``--before REV``'s ``environments/state.py`` (``git show``)
and this checkout's are loaded side by side in one process and timed in turns, so the machine's
load falls on both alike; both must give the same digest. Run:
``.venv/bin/python benchmarks/canonical.py --before REV [--rounds N]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from _common import ROOT, SAMPLE

STATE_MODULE = "src/apigen_cli/environments/state.py"


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_call_ms(work: Callable[[], Any], calls: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the revision to compare with, e.g. HEAD~1")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "state_before.py"
        old.write_text(
            subprocess.run(
                ["git", "show", f"{args.before}:{STATE_MODULE}"], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        modules = {"before": load("state_before", old), "after": load("state_after", ROOT / STATE_MODULE)}
    state = json.loads((SAMPLE / "store" / "initial_state.json").read_text())["OnlineStore"]
    store_class = load("online_store", SAMPLE / "store" / "online_store.py").OnlineStore
    store = store_class()
    store.load_state(state)
    digests = {module.digest(state) for module in modules.values()}
    assert len(digests) == 1, f"the digests differ: {digests}"
    measures: dict[str, Callable[[ModuleType], Callable[[], Any]]] = {
        "canonical(state)": lambda module: lambda: module.canonical(state),
        "digest(state)": lambda module: lambda: module.digest(state),
        "state_of(store): state() and the walk": lambda module: lambda: module.state_of(store),
    }
    print(f"| measure | before ({args.before}), ms | after, ms | after / before |")
    print("| --- | --- | --- | --- |")
    for label, make in measures.items():
        times: dict[str, list[float]] = {name: [] for name in modules}
        for _ in range(args.rounds):
            for name, module in modules.items():
                times[name].append(per_call_ms(make(module)))
        before, after = statistics.median(times["before"]), statistics.median(times["after"])
        shown = {name: f"{statistics.median(values):.3f} ({min(values):.3f})" for name, values in times.items()}
        print(f"| {label} | {shown['before']} | {shown['after']} | {after / before:.2f} |")


if __name__ == "__main__":
    main()
