"""Live sessions (`execution/live.py`): one environment per conversation, kept between its steps.

A call that ends its process or hangs ends the session with its reason, mid-conversation; a
conversation cut by a bound leaves no process behind; a kill -9 of apigen leaves no orphan.
Processes are found through /proc (`execution/descendants.py`), and waited for with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from apigen_cli.execution.calls import ExecutorOptions
from apigen_cli.execution.descendants import descendants
from apigen_cli.execution.live import LiveSessions

from .conftest import write_jsonl
from .llm_server import LLMServer, Received, Reply
from .processes import alive
from .run_helpers import APIGEN, cli_env
from .scripted_conversation import _USER_RULES
from .test_hostile_processes import gone_soon
from .test_simulate_hostile import AGENT_CALLS, blueprint, scripted, simulate, workshop  # noqa: F401 (a fixture)

NOTES: dict[str, Any] = {"Workshop": {"notes": []}}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def test_a_call_that_ends_its_process_mid_conversation_ends_the_session_as_crashed(workshop: Path) -> None:  # noqa: F811
    with LiveSessions(str(workshop), ExecutorOptions(timeout=10)) as sessions, sessions.open("k", NOTES) as live:
        [first] = live.run([call("add_note", text="a")])
        assert first.ok and first.outcome.result == 1
        below = [live.pid, *descendants(live.pid or 0)]  # the keeper and the session's process, parked
        second, crash = live.run([call("add_note", text="b"), call("get_crash")])
        assert second.outcome.result == 2  # the same instances: the earlier call's note is there
        assert not crash.ok and live.outcome is not None and live.outcome.problem is not None
        assert live.outcome.problem.code == "crashed"
        assert live.outcome.problem.message.startswith("`get_crash` (call 3 of the session) ended its session: ")
        assert "status 3" in live.outcome.problem.message
        assert live.run([call("add_note", text="c")]) == ()  # the session is over
    assert len(below) == 2 and [pid for pid in below if pid and not gone_soon(pid)] == []


def test_a_call_that_hangs_ends_the_session_at_the_timeout_and_its_processes_with_it(workshop: Path) -> None:  # noqa: F811
    with LiveSessions(str(workshop), ExecutorOptions(timeout=0.5)) as sessions, sessions.open("k", NOTES) as live:
        assert [made.ok for made in live.run([call("add_note", text="a")])] == [True]
        below = [live.pid, *descendants(live.pid or 0)]
        [stuck] = live.run([call("get_stuck")])
        assert stuck.outcome.code == "timeout"
        assert live.outcome is not None and live.outcome.problem is not None
        assert live.outcome.problem.code == "timeout"
        assert live.outcome.problem.message == (
            "`get_stuck` (call 2 of the session) did not return within the 0.5 s timeout; its process was stopped"
        )
        assert len(below) == 2 and [pid for pid in below if pid and not gone_soon(pid)] == []
        with sessions.open("next", NOTES) as fresh:  # the server goes on serving
            [made] = fresh.run([call("add_note", text="b")])
            assert made.outcome.result == 1 and fresh.end().final_state == {"Workshop": {"notes": ["b"]}}


def test_a_server_killed_from_outside_is_started_again_for_the_next_session(workshop: Path) -> None:  # noqa: F811
    with LiveSessions(str(workshop), ExecutorOptions(timeout=10)) as sessions:
        with sessions.open("first", NOTES) as live:
            live.run([call("add_note", text="a")])
            server = _parent(live.pid or 0)
        os.kill(server, signal.SIGKILL)
        assert gone_soon(server)
        with sessions.open("second", NOTES) as live:
            [made] = live.run([call("add_note", text="b")])
            assert made.outcome.result == 1 and _parent(live.pid or 0) not in (0, server)


def sessions_left(seconds: float = 10.0) -> list[int]:
    """The processes below the live sessions' server (a child of this test process), once they are gone or at the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        below = [pid for child in _children() for pid in descendants(child)]
        if not below or time.monotonic() > deadline:
            return below
        time.sleep(0.02)


def _children() -> list[int]:
    mine = os.getpid()
    return [pid for pid in descendants(mine) if _parent(pid) == mine]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def test_a_conversation_cut_by_a_bound_leaves_no_process_behind(workshop: Path, tmp_path: Path) -> None:  # noqa: F811
    """One conversation at a time: when the second blueprint's user is asked, the first's session must be gone."""
    handler = scripted(user="Please add a note that says hello.", agent=AGENT_CALLS)
    users: list[Received] = []
    left_at_second: list[list[int]] = []

    def watching(request: Received) -> Reply | None:
        if str(request.json["messages"][0].get("content", "")).startswith(_USER_RULES):
            users.append(request)
            if len(users) == 2:
                left_at_second.append(sessions_left())
        reply: Reply | None = handler(request)
        return reply

    with LLMServer(handler=watching) as server:
        _result, kept, failed = simulate(
            tmp_path, workshop, [blueprint("one"), blueprint("two")], "--base-url", server.url, "-m", "agent",
            "--user-model", "user", "--max-tool-calls", "4", "--concurrency", "1",
        )  # fmt: skip
    assert kept == [] and [row["reason"] for row in failed] == ["tool_call_limit", "tool_call_limit"]
    assert left_at_second == [[]]
    assert _children() == []  # and the server went with the run


def test_kill_9_of_apigen_leaves_no_session_process_behind(workshop: Path, tmp_path: Path) -> None:  # noqa: F811
    source = write_jsonl(tmp_path / "blueprints.jsonl", [blueprint("one")])
    with LLMServer(handler=scripted(user="Please add a note that says hello.", agent=AGENT_CALLS)) as server:
        server.hold(after=2)  # the user's first message and the agent's calls are answered; its next request waits
        command = [
            *APIGEN, "simulate", str(source), "--functions", str(workshop), "--base-url", server.url, "-m", "agent",
            "--user-model", "user", "--seed", "1", "-o", str(tmp_path / "out.jsonl"),
        ]  # fmt: skip
        with subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
            try:
                assert server.wait_parked(1, 60), "the run never reached the held request"
                below = descendants(process.pid)  # the server, the conversation's keeper and its session's process
            finally:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        server.release()
    assert len(below) >= 3
    assert [pid for pid in below if not gone_soon(pid)] == []
    assert not any(alive(pid) for pid in below)
