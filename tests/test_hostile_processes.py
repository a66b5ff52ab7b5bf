"""Issue 12: nothing a function starts outlives its call, in a session of its own or double-forked."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from apigen_cli.execution.calls import ExecutorOptions
from apigen_cli.execution.executor import Executor

from .conftest import PROJECT, read_jsonl, write_jsonl
from .hostile import run_cli
from .processes import alive

FUNCTIONS = str(PROJECT / "tests" / "fixtures" / "hostile_functions.py")


def gone_soon(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("name", ["new_session", "double_fork"])
def test_what_a_returning_call_left_running_is_ended_before_its_result_comes_back(tmp_path: Path, name: str) -> None:
    with Executor(FUNCTIONS, ExecutorOptions(workers=1, timeout=5)) as executor:
        for number in range(3):
            pid_file = tmp_path / f"{name}-{number}.pid"
            outcome = executor.run(name, {"pid_file": str(pid_file)})
            assert outcome.ok and outcome.result == "started", outcome.message
            assert not alive(int(pid_file.read_text()))  # already ended and reaped by the worker
        assert executor.run("add", {"a": 1, "b": 2}).result == 3  # and the worker goes on


@pytest.mark.parametrize("name", ["new_session_then_hang", "double_fork_then_hang"])
def test_a_timeout_ends_what_the_call_started_outside_its_process_group(tmp_path: Path, name: str) -> None:
    pid_file = tmp_path / "child.pid"
    with Executor(FUNCTIONS, ExecutorOptions(workers=1, timeout=0.5)) as executor:
        outcome = executor.run(name, {"pid_file": str(pid_file)})
        assert outcome.code == "timeout"
        assert gone_soon(int(pid_file.read_text()))
        assert executor.run("add", {"a": 1, "b": 2}).result == 3


def test_nothing_outlives_an_exec_check_run(tmp_path: Path) -> None:
    tool = {"name": "f", "parameters": {"type": "object", "properties": {"pid_file": {"type": "string"}}}}
    names = ["new_session", "double_fork"] * 10 + ["new_session_then_hang", "double_fork_then_hang"]
    rows = []
    for number, name in enumerate(names):
        calls = [{"name": name, "arguments": {"pid_file": str(tmp_path / f"{number}.pid")}}]
        rows.append({"id": f"r{number}", "query": "q", "tools": [{**tool, "name": name}], "answers": calls})
    source, output, rejects = tmp_path / "rows.jsonl", tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    write_jsonl(source, rows)
    ran = run_cli(
        "exec-check", str(source), "--functions", FUNCTIONS, "--workers", "2", "--exec-timeout", "1",
        "-o", str(output), "--rejects", str(rejects), deadline=60,
    )  # fmt: skip
    assert not ran.killed and ran.exit_code == 0, ran.stderr
    kept, rejected = read_jsonl(output), read_jsonl(rejects)
    assert len(kept) == 20 and sorted(row["reason"] for row in rejected) == ["timeout", "timeout"]
    pids = [int((tmp_path / f"{number}.pid").read_text()) for number in range(len(names))]
    assert [pid for pid in pids if not gone_soon(pid)] == []


FLOOD_AT_IMPORT = """
import os
block = b"x" * 1023 + b"\\n"
for _ in range(50 * 1024):
    os.write(1, block)
    os.write(2, block)
os.write(2, b"the import is over\\n")


def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b
"""


def test_what_a_module_prints_at_import_is_kept_only_at_its_end(tmp_path: Path) -> None:
    module = tmp_path / "loud.py"
    module.write_text(FLOOD_AT_IMPORT)  # 100 MB on stdout and stderr
    ran = run_cli("library", "from-python", str(module), "-o", str(tmp_path / "lib.jsonl"), deadline=60)
    assert not ran.killed and ran.exit_code == 0, ran.stderr
    assert [tool["name"] for tool in read_jsonl(tmp_path / "lib.jsonl")] == ["add"]
    assert ran.peak_rss_mb < 100


DAEMON_AT_IMPORT = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    written, told = os.pipe()
    if os.fork() == 0:  # the daemon: keeps every descriptor it inherited, and never exits
        with open({pid_file!r}, "w") as out:
            out.write(str(os.getpid()))
        os.write(told, b"x")
        while True:
            time.sleep(60)
    os.read(written, 1)  # the import goes on once the daemon has said who it is
    os._exit(0)
os.wait()


def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b
"""


def test_a_module_that_daemonizes_at_import_is_described_without_waiting_for_its_daemon(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    module = tmp_path / "forks.py"
    module.write_text(DAEMON_AT_IMPORT.format(pid_file=str(pid_file)))
    ran = run_cli("library", "from-python", str(module), "-o", str(tmp_path / "lib.jsonl"), "--import-timeout", "30", deadline=25)
    try:
        assert not ran.killed, "from-python waited for the daemon"
        assert ran.exit_code == 0, ran.stderr
        assert [tool["name"] for tool in read_jsonl(tmp_path / "lib.jsonl")] == ["add"]
        assert gone_soon(int(pid_file.read_text()))
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError, OSError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
