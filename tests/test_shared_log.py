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
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_jsonl
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
                    second, lambda: _waits_in(second, "pipe_write", "lock"), "behind the first: on the FIFO, or on the log's lock"
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
