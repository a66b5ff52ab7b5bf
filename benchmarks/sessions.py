"""Sessions on stateful environments: what a session costs in the workers, beside in-process floors.

A session here: a store (50 orders, 20 prices) and a file system whose nodes point at their
parent, made fresh, then 7 calls (4 of which change the state). Measured in the same run:

1. the bare in-process replay: fresh instances and the calls, nothing else (the floor);
2. the same with the state read, compared and diffed after every call, as the worker does;
3. ``Executor.run_sessions`` with 1 and 2 workers (a forked process per session, frames,
   outcomes);
4. an empty session (one class, no call) through the workers: the fork and the round trip;
5. a fresh worker started and closed: what a new process per session would cost instead.

Run: ``.venv/bin/python benchmarks/sessions.py [--sessions N] [--repeat K]``. The machine
is shared and noisy, so each figure is the best and the median of K runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apigen_cli import Executor, ExecutorOptions, SessionRequest
from apigen_cli.environments.session import Session
from apigen_cli.environments.state import canonical_json, diff_canonical

LIBRARY = """
class Store:
    def load_state(self, config):
        self.orders = {key: dict(value) for key, value in config["orders"].items()}
        self.prices = dict(config["prices"])

    def get_order(self, order_id):
        return self.orders[order_id]

    def cancel_order(self, order_id):
        self.orders[order_id]["status"] = "cancelled"
        return "cancelled"

    def set_price(self, product, price):
        self.prices[product] = price

    def place_order(self, order_id, product, quantity=1):
        self.orders[order_id] = {"product": product, "quantity": quantity, "status": "pending"}
        return self.orders[order_id]


class Node:
    def __init__(self, name, parent):
        self.name = name
        self.parent = parent
        self.contents = {}


class FileSystem:
    def _load_scenario(self, scenario, long_context=False):
        self.root = Node("/", None)
        self._current = self.root
        for name in scenario["folders"]:
            self.root.contents[name] = Node(name, self.root)

    def cd(self, folder):
        self._current = self._current.contents[folder]
        return folder

    def mkdir(self, dir_name):
        self._current.contents[dir_name] = Node(dir_name, self._current)
"""

ENVIRONMENT = {
    "Store": {
        "orders": {f"o-{n}": {"status": "pending", "product": "mug", "quantity": n} for n in range(50)},
        "prices": {f"p{n}": n * 1.5 for n in range(20)},
    },
    "FileSystem": {"folders": ["docs", "tmp", "src"]},
}
CALLS = [
    {"name": "get_order", "arguments": {"order_id": "o-1"}},
    {"name": "cancel_order", "arguments": {"order_id": "o-2"}},
    {"name": "cd", "arguments": {"folder": "docs"}},
    {"name": "mkdir", "arguments": {"dir_name": "new"}},
    {"name": "set_price", "arguments": {"product": "p1", "price": 1.5}},
    {"name": "place_order", "arguments": {"order_id": "o-99", "product": "mug"}},
    {"name": "get_order", "arguments": {"order_id": "o-99"}},
]


def classes(path: Path) -> dict[str, type]:
    """The library's classes, imported here as the worker imports them."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = sys.modules[path.stem] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: value for name, value in vars(module).items() if isinstance(value, type)}


def bare_replay(found: dict[str, type], sessions: int) -> None:
    for _ in range(sessions):
        session = Session(found, ENVIRONMENT)
        for call in CALLS:
            session.call(call["name"], call["arguments"])


def replay_with_states(found: dict[str, type], sessions: int) -> None:
    for _ in range(sessions):
        session = Session(found, ENVIRONMENT)
        before = session.state()
        before_json = canonical_json(before)
        for call in CALLS:
            session.call(call["name"], call["arguments"])
            after = session.state()
            after_json = canonical_json(after)
            if after_json != before_json:
                diff_canonical(before, after, 20)
            before, before_json = after, after_json


def in_workers(path: Path, workers: int, sessions: int, environment: Any, calls: list[dict[str, Any]]) -> float:
    with Executor(path, ExecutorOptions(workers=workers, timeout=30)) as executor:
        requests = [SessionRequest(n, environment, calls) for n in range(sessions)]
        started = time.perf_counter()
        outcomes = list(executor.run_sessions(requests))
        elapsed = time.perf_counter() - started
    assert all(outcome.ok for outcome in outcomes), outcomes[0].problem
    return elapsed


def fresh_worker(path: Path) -> float:
    started = time.perf_counter()
    with Executor(path, ExecutorOptions(workers=1)):
        pass
    return time.perf_counter() - started


def best_and_median(measure: Callable[[], float], repeat: int) -> tuple[float, float]:
    times = [measure() for _ in range(repeat)]
    return min(times), statistics.median(times)


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    count, repeat = options.sessions, options.repeat
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench_environment.py"
        path.write_text(LIBRARY)
        found = classes(path)
        rows = [
            ("bare in-process replay (the floor)", best_and_median(lambda: timed(lambda: bare_replay(found, count)), repeat)),
            ("in-process replay, state read and diffed per call", best_and_median(lambda: timed(lambda: replay_with_states(found, count)), repeat)),
        ]  # fmt: skip
        for workers in (1, 2):
            measured = best_and_median(functools.partial(in_workers, path, workers, count, ENVIRONMENT, CALLS), repeat)
            rows.append((f"run_sessions, {workers} worker{'s' if workers > 1 else ''}", measured))
        empty = best_and_median(lambda: in_workers(path, 1, count, {"Store": ENVIRONMENT["Store"]}, []), repeat)
        rows.append(("an empty session (one class, no call), 1 worker", empty))
        start = best_and_median(lambda: fresh_worker(path), max(repeat, 5))
    print(f"{count} sessions of {len(CALLS)} calls; best (median) of {repeat}")
    print("| measure | sessions/s | ms per session |")
    print("| --- | --- | --- |")
    for label, (best, median) in rows:
        print(
            f"| {label} | {count / best:,.0f} ({count / median:,.0f}) | {best / count * 1000:.2f} ({median / count * 1000:.2f}) |"
        )
    print(
        f"| a fresh worker started and closed (a process per session instead) | – | {start[0] * 1000:.1f} ({start[1] * 1000:.1f}) |"
    )


if __name__ == "__main__":
    main()
