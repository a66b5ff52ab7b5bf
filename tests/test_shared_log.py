"""``--log-llm FILE`` shared by two apigen processes at once: every line stays whole.

The hard case is a log that is not a regular file: a FIFO takes a write of more than
``PIPE_BUF`` bytes in pieces, and a second writer's pieces land between them. The test
holds both processes at a known point: the first blocked mid-line on the full FIFO (which
the test does not read yet), the second waiting behind it. Then it reads the FIFO.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apigen_cli.rows import shared_log

from .conftest import PROJECT, invoke, parse_stdout, write_jsonl
from .run_helpers import held_apigen, wait_until

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/task/*/wchan, which only Linux has")


def _waiting_in(process: subprocess.Popen[bytes]) -> list[str]:
    """Where in the kernel each of the process's threads waits (``anon_pipe_write``, a lock's wait, ...)."""
    found = []
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        try:
            found.append((task / "wchan").read_text())
        except OSError:
            continue  # the thread ended
    return found


def _waits_in(process: subprocess.Popen[bytes], *where: str) -> bool:
    """One of the process's threads waits in a kernel function whose name holds one of ``where``."""
    return any(part in name for name in _waiting_in(process) for part in where)


def _logging_to(log: Path, apis: Path, out: Path) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """``apigen generate`` of one row with the offline model, its exchange logged to ``log``."""
    return held_apigen(
        ["generate", str(apis), "-m", "offline", "-n", "1", "--seed", "1", "-q", "-o", str(out), "--log-llm", str(log)]
    )


@linux_only
def test_two_processes_logging_to_one_fifo_write_whole_lines(tmp_path: Path) -> None:
    api = {"name": "lookup", "description": "word " * 60_000, "parameters": {"type": "object", "properties": {}}}
    apis = write_jsonl(tmp_path / "apis.jsonl", [api])  # the prompt quotes the description: a line of 300 kB and more
    log = tmp_path / "llm.fifo"
    os.mkfifo(log)
    reader = os.open(log, os.O_RDONLY | os.O_NONBLOCK)  # open, so the writers may open theirs; read only once both wait
    try:
        with _logging_to(log, apis, tmp_path / "first.jsonl") as first:
            wait_until(first, lambda: _waits_in(first, "pipe_write"), "mid-line, on the full FIFO")
            with _logging_to(log, apis, tmp_path / "second.jsonl") as second:
                wait_until(
                    second,
                    lambda: _waits_in(second, "pipe_write", "nanosleep"),
                    "behind the first: on the FIFO, or between tries of the log's lock",
                )
                fcntl.fcntl(reader, fcntl.F_SETFL, 0)
                with os.fdopen(reader, "rb") as stream:
                    reader = -1
                    written = stream.read()
                for process in (first, second):
                    assert process.wait() == 0, process.communicate()[1]
    finally:
        if reader >= 0:
            os.close(reader)
    lines = written.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3, [len(line) for line in lines]
    for line in lines[:-1]:
        entry = json.loads(line)
        assert "word word" in json.dumps(entry["messages"])


# A writer of the log that takes its lock, writes half a line and stops itself (SIGSTOP) there.
_STOPPED_MID_WRITE = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b'{"half": ')
print("HELD", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
os.write(fd, b'"line"}\\n')
"""


def test_a_writer_stopped_mid_write_holds_up_no_other_writer(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_log, "LOCK_WAIT_SECONDS", 0.05)  # short, so the test is quick; nothing times it
    log = tmp_path / "llm.jsonl"
    stopped = subprocess.Popen([sys.executable, "-c", _STOPPED_MID_WRITE, str(log)], stdout=subprocess.PIPE)
    try:
        assert stopped.stdout is not None and stopped.stdout.readline() == b"HELD\n"
        out = tmp_path / "out.jsonl"
        args = [
            "generate",
            str(PROJECT / "sample_data" / "apis.jsonl"),
            "-m",
            "offline",
            "-n",
            "3",
            "--seed",
            "1",
            "-o",
            str(out),
            "--log-llm",
            str(log),
        ]
        result = invoke(runner, *args)
        assert result.exit_code == 0, result.stderr
        assert len(parse_stdout(out.read_text())) == 3
        assert result.stderr.count("left out of the log") == 1, result.stderr
        assert f"`--log-llm {log}`" in result.stderr
        assert log.read_bytes() == b'{"half": '  # nothing written into the stopped writer's half line
    finally:
        stopped.send_signal(signal.SIGCONT)
        assert stopped.wait() == 0
    assert log.read_bytes() == b'{"half": "line"}\n'
    result = invoke(runner, *args)  # the lock is free again: every exchange is logged
    assert result.exit_code == 0 and "left out" not in result.stderr, result.stderr
    lines = log.read_bytes().splitlines()
    assert len(lines) > 1 and all(json.loads(line) for line in lines)


def test_a_line_left_out_makes_the_next_try_once_until_the_lock_is_had(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    holder = os.open(path, os.O_WRONLY | os.O_CREAT)  # another open file: its lock shuts this log's out
    log = shared_log.SharedLog(str(path), lock_wait=0.01)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert log.append(b"first\n") is False
        log.lock_wait = 3600.0  # a wait this long would hang the test: the next line must try only once
        assert log.append(b"second\n") is False
        fcntl.flock(holder, fcntl.LOCK_UN)
        assert log.append(b"third\n") is True
        assert log.append(b"fourth\n") is True
    finally:
        log.close()
        os.close(holder)
    assert path.read_bytes() == b"third\nfourth\n"
