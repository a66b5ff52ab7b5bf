"""Sessions in real worker processes: fresh instances per session, calls in order, states compared,
and containment (timeouts, crashes, leaks between sessions, prints, secrets, stray processes)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from apigen_cli import Executor, ExecutorOptions, FunctionsError
from apigen_cli.environments import diff, digest
from apigen_cli.environments.session import Session
from apigen_cli.execution.sessions import SessionOutcome, SessionRequest

from .processes import alive
from .test_environments import CLASSES

LIBRARY = Path(__file__).parent / "fixtures" / "environments"
STORE = {"orders": {"o-1": {"status": "pending"}, "o-2": {"status": "shipped"}}, "prices": {"mug": 25}, "tags": ["a"]}
FILES = {"contents": {"docs": {"a.txt": "hello"}}}


def call(tool: str, /, **arguments: Any) -> dict[str, Any]:
    return {"name": tool, "arguments": arguments}


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(LIBRARY, ExecutorOptions(workers=2, timeout=2, memory_mb=512)) as running:
        yield running


def run(executor: Executor, environment: Any, *calls: dict[str, Any]) -> SessionOutcome:
    (outcome,) = executor.run_sessions([SessionRequest("k", environment, calls)])
    return outcome


# --- what a session reports ---------------------------------------------------------------


def test_a_session_reports_each_call_and_what_it_changed(executor: Executor) -> None:
    outcome = run(
        executor,
        {"Store": STORE, "TinyFileSystem": FILES},
        call("get_order", order_id="o-1"),
        call("cancel_order", order_id="o-1"),
        call("cancel_order", order_id="o-2"),
        call("cd", folder="docs"),
        call("mkdir", dir_name="old"),
        call("touch", file_name="b.txt"),
        call("set_price", product="mug", price=25.0),
    )
    assert outcome.problem is None and outcome.key == "k"
    assert [(c.name, c.ok, c.changed) for c in outcome.calls] == [
        ("get_order", True, False),
        ("cancel_order", True, True),
        ("cancel_order", False, False),
        ("cd", True, False),  # a private attribute moved: not the state
        ("mkdir", True, True),
        ("touch", True, True),
        ("set_price", True, False),  # 25 -> 25.0 is no change
    ]
    assert outcome.calls[0].outcome.result == {"status": "pending"}
    assert (
        outcome.calls[2].outcome.code == "exception"
        and "only pending orders can be cancelled" in outcome.calls[2].outcome.message
    )
    assert outcome.calls[1].changes.lines() == ['Store.orders["o-1"]["status"]: "pending" -> "cancelled"']
    assert outcome.calls[5].changes[0].path == 'TinyFileSystem.root.contents["docs"].contents["b.txt"]'
    assert outcome.initial_state is not None and outcome.final_state is not None
    assert outcome.final_digest == digest(outcome.final_state)
    assert [str(change) for change in diff(outcome.initial_state, outcome.final_state)][:1] == [
        'Store.orders["o-1"]["status"]: "pending" -> "cancelled"'
    ]


def test_the_workers_state_is_the_state_of_the_same_calls_replayed_here(executor: Executor) -> None:
    calls = [
        call("place_order", order_id="o-3", product="mug", quantity=2),
        call("tag", label="gift"),
        call("mkdir", dir_name="x"),
    ]
    outcome = run(executor, {"Store": STORE, "TinyFileSystem": FILES}, *calls)
    here = Session(CLASSES, {"TinyFileSystem": FILES, "Store": STORE})
    for each in calls:
        assert here.call(each["name"], each["arguments"]).ok
    assert outcome.final_state == here.state()
    assert outcome.final_digest == digest(here.state())  # another process, another hash seed


@pytest.mark.parametrize(
    ("environment", "code"),
    [
        ({"Nowhere": {}}, "unknown_environment_class"),
        ({"Counter": {}, "Tally": {}}, "ambiguous_tool"),
        ({"BrokenLoader": {}}, "environment_load_error"),
        ({"Store": "o-1"}, "environment_config_not_object"),
        ([], "environment_not_object"),
    ],
)
def test_a_session_that_cannot_start_has_its_problem_and_runs_no_call(executor: Executor, environment: Any, code: str) -> None:
    outcome = run(executor, environment, call("increment"))
    assert outcome.problem is not None and outcome.problem.code == code
    assert outcome.calls == () and outcome.initial_state is None and outcome.final_state is None


def test_a_state_that_cannot_be_read_after_a_call_ends_the_session_with_its_problem(executor: Executor) -> None:
    outcome = run(executor, {"Fragile": {}}, call("break_it"), call("break_it"))
    assert outcome.problem is not None and outcome.problem.code == "environment_state_error"
    assert "Fragile.state() raised RuntimeError: state lost" in outcome.problem.message
    assert [(c.name, c.outcome.result, c.changed) for c in outcome.calls] == [("break_it", "broken", None)]
    assert outcome.initial_state == {"Fragile": {"broken": False}} and outcome.final_state is None


def test_a_call_that_is_not_an_object_with_a_name_is_a_problem(executor: Executor) -> None:
    (outcome,) = executor.run_sessions([SessionRequest(1, {"Counter": {}}, [{"arguments": {}}])])
    assert outcome.problem is not None and outcome.problem.code == "invalid_call"


def test_sessions_need_a_library() -> None:
    with Executor(None) as bare, pytest.raises(FunctionsError, match="sessions need the library"):
        list(bare.run_sessions([SessionRequest(1, {"Counter": {}})]))


# --- nothing passes from one session to the next ----------------------------------------


def test_class_attributes_and_module_globals_do_not_leak_between_sessions() -> None:
    with Executor(LIBRARY, ExecutorOptions(workers=1, timeout=5)) as single:
        requests = [SessionRequest(n, {"Store": STORE}, [call("cancel_order", order_id="o-1"), call("seen")]) for n in range(6)]
        seen = [outcome.calls[1].outcome.result for outcome in single.run_sessions(requests)]
    assert seen == [{"opened": 1, "audit": ["o-1"], "module": ["store"]}] * 6


def test_two_workers_give_what_one_gives() -> None:
    requests = []
    for n in range(24):
        calls = [call("place_order", order_id=f"o-{n}", product="mug", quantity=n), call("cancel_order", order_id=f"o-{n % 3}")]
        calls += [call("increment")] * (n % 4) + [call("seen")]
        requests.append(SessionRequest(n, {"Store": STORE, "Counter": {"start": n}}, calls))

    def outcomes(workers: int) -> list[SessionOutcome]:
        with Executor(LIBRARY, ExecutorOptions(workers=workers, timeout=5)) as pool:
            found = list(pool.run_sessions(requests, window=8))
        return [replace(o, seconds=0, calls=tuple(replace(c, seconds=0) for c in o.calls)) for o in found]

    one, two = outcomes(1), outcomes(2)
    assert [o.key for o in two] == list(range(24))
    assert one == two


# --- containment --------------------------------------------------------------------------


def test_a_hanging_call_ends_its_session_with_a_timeout_and_the_next_session_runs() -> None:
    with Executor(LIBRARY, ExecutorOptions(workers=1, timeout=0.5)) as single:
        loading, hung, after = single.run_sessions(
            [
                SessionRequest("loading", {"HangingLoader": {}}, [call("note")]),
                SessionRequest("hung", {"Saboteur": {}}, [call("note"), call("hang"), call("note")]),
                SessionRequest("after", {"Saboteur": {}}, [call("note")]),
            ]
        )
    assert loading.problem == (
        "timeout",
        "loading the environment did not return within the 0.5 s timeout; its worker was stopped",
    )
    assert loading.calls == () and loading.initial_state is None
    assert hung.problem is not None and hung.problem.code == "timeout"
    assert (
        hung.problem.message == "`hang` (call 2 of the session) did not return within the 0.5 s timeout; its worker was stopped"
    )
    assert [(c.name, c.ok, c.outcome.code) for c in hung.calls] == [("note", True, ""), ("hang", False, "timeout")]
    assert hung.final_state is None and hung.initial_state == {"Saboteur": {"calls": 0}}
    assert after.problem is None and after.calls[0].outcome.result == 1


@pytest.mark.parametrize(
    ("method", "error_type", "text"),
    [("hard_exit", "ProcessExit", "exited with status 7"), ("segfault", "SIGSEGV", "killed by SIGSEGV")],
)
def test_a_call_that_ends_its_process_ends_only_its_session(executor: Executor, method: str, error_type: str, text: str) -> None:
    requests = [
        SessionRequest(n, {"Saboteur": {}}, [call("note"), call(method if n == 2 else "note"), call("note")]) for n in range(5)
    ]
    outcomes = list(executor.run_sessions(requests))
    crashed = outcomes[2]
    assert crashed.problem is not None and crashed.problem.code == "crashed"
    assert crashed.problem.message.startswith(f"`{method}` (call 2 of the session) ended its session: ")
    assert text in crashed.problem.message
    assert [(c.name, c.ok, c.outcome.error_type) for c in crashed.calls] == [("note", True, ""), (method, False, error_type)]
    assert all(o.problem is None and [c.outcome.result for c in o.calls] == [1, 2, 3] for n, o in enumerate(outcomes) if n != 2)


def test_what_a_session_prints_is_captured_never_returned() -> None:
    lines: list[str] = []
    with Executor(LIBRARY, ExecutorOptions(workers=1, on_output=lines.append)) as single:
        (outcome,) = single.run_sessions([SessionRequest(1, {"Saboteur": {}}, [call("shout", text="hi")])])
        single.run("nonexistent", {})  # one more round trip: the output has been read by now
    assert outcome.calls[0].outcome.result == "HI"
    assert {"SABOTEUR PRINTS hi", "SABOTEUR RAW FD1"} <= set(lines)


def test_a_session_cannot_read_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEATHER_API_KEY", "sk-test-123")
    with Executor(LIBRARY, ExecutorOptions(workers=1)) as single:
        (outcome,) = single.run_sessions([SessionRequest(1, {"Saboteur": {}}, [call("secret", name="WEATHER_API_KEY")])])
    assert outcome.calls[0].ok and outcome.calls[0].outcome.result is None


def test_what_a_call_started_is_ended_before_the_session_goes_on(executor: Executor, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    outcome = run(executor, {"Spawner": {}, "Counter": {}}, call("spawn", pid_file=str(pid_file)), call("increment"))
    assert outcome.problem is None and outcome.calls[0].outcome.result == "started"
    deadline = time.monotonic() + 5
    while alive(int(pid_file.read_text())) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(int(pid_file.read_text()))


def test_the_worker_imports_nothing_of_apigen_but_its_pure_modules(executor: Executor) -> None:
    outcome = run(executor, {"Spawner": {}}, call("modules"))
    packages = set(outcome.calls[0].outcome.result)
    assert "orjson" in packages and {"apigen_cli", "typer", "rich", "httpx", "pydantic", "tenacity"}.isdisjoint(packages)


class _Counter:
    """A state() that counts how often it is read, and returns plain JSON (or a float, or a set, when told)."""

    def __init__(self) -> None:
        self.reads = 0
        self.value: Any = 1

    def state(self) -> dict[str, Any]:
        self.reads += 1
        return {"value": self.value, "items": [{"a": 1}, {"b": "x"}]}


class _Plain:
    def __init__(self) -> None:
        self.value = 1


def test_a_state_read_again_unchanged_is_the_same_value_without_a_walk_and_a_changed_one_is_read_whole() -> None:
    session = Session({"Counter": _Counter}, {"Counter": {}})
    counter = session.instances["Counter"]
    first = session.state_again()
    assert first == session.state() and session.state_again() is first  # same plain JSON: the same value, not walked
    nan, infinity = {"$float": "nan"}, {"$float": "inf"}
    steps = [
        (1.0, 1),
        (2.5, 2.5),
        ({3, 1}, [1, 3]),
        (2.5, 2.5),
        (None, None),
        (math.nan, nan),
        (None, None),
        (math.inf, infinity),
    ]
    for changed, expected in steps:
        counter.value = changed
        again = session.state_again()
        assert again == session.state() and again["Counter"]["value"] == expected
        assert again is not first  # 1.0 is written otherwise than 1, NaN as None; a set is not plain JSON: each read whole
        first = again
    assert counter.reads == 3 + 2 * len(steps)  # once a read, whichever way it went
    plain = Session({"Plain": _Plain}, {"Plain": {}})  # no state(): its attributes are walked each time
    assert plain.state_again() is not plain.state_again()
    plain.instances["Plain"].value = 2
    assert plain.state_again() == {"Plain": {"value": 2}}
