"""Running the real CLI as a process under attack: its exit code, output and peak memory.

``run_cli`` starts ``python -m apigen_cli ARGS`` with stdout and stderr in files,
kills it if it outlives ``deadline`` (so that a test never hangs: a kill is a
failure the test reports), and reads the process's own peak RSS (``VmHWM``, which
``exec`` resets, unlike ``ru_maxrss``, which a child inherits from its parent), written
by the process itself as it exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .conftest import PROJECT


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    killed: bool  # it outlived its deadline


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, deadline: float = 60.0, cwd: Path | None = None, stdin: str = ""
) -> Ran:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("APIGEN_")}
    environment.pop("OPENAI_API_KEY", None)
    environment["PYTHONPATH"] = str(PROJECT / "src")
    environment.update(env or {})
    peak = tempfile.NamedTemporaryFile(delete=False)  # noqa: SIM115 - removed below
    peak.close()
    environment["PEAK_RSS_FILE_FOR_TESTS"] = peak.name
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        given.write(stdin.encode())
        given.seek(0)
        process = subprocess.Popen(
            [sys.executable, "-c", _MEASURED, *args],
            stdin=given,
            stdout=out,
            stderr=err,
            env=environment,
            cwd=cwd,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(deadline, kill)
        timer.start()
        try:
            _pid, status, _usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Ran(
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            _read_peak(peak.name),
            killed.is_set(),
        )


def _read_peak(path: str) -> float:
    try:
        text = Path(path).read_text().strip()
    finally:
        os.unlink(path)
    return int(text) / 1024 if text else float("inf")  # no figure (killed): as bad as it gets


#: The CLI's entry point, writing its peak RSS in kB to $PEAK_RSS_FILE_FOR_TESTS on the way out.
_MEASURED = """
import atexit, os, sys

def _peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_RSS_FILE_FOR_TESTS"], "w") as out:
        out.write(kb)

atexit.register(_peak)
sys.argv[0] = "apigen"
from apigen_cli.cli import run
run()
"""
