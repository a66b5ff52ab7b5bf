"""The suite's own time limit (pytest-timeout, in pyproject.toml): a hung test fails alone and the run goes on.

A hang in CI once stopped the whole run, so no test after it ran and none said where it hung.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import PROJECT

HANGING = """
import subprocess
import sys
import threading


def test_waits_on_an_event_no_one_sets():
    threading.Event().wait()


def test_waits_on_a_child_that_never_ends():
    subprocess.run([sys.executable, "-c", "import threading; threading.Event().wait()"], check=False)


def test_after_them():
    assert True
"""


def test_a_hung_test_fails_alone_and_the_next_one_runs(tmp_path: Path) -> None:
    (tmp_path / "test_hangs.py").write_text(HANGING)
    # the project's own configuration (its timeout method), with a limit short enough for this test
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(PROJECT / "pyproject.toml")]
    command += ["--rootdir", str(tmp_path), "--timeout", "2", str(tmp_path / "test_hangs.py")]
    command += ["-rN"]  # no short summary: under CI=true pytest writes its lines whole, each naming the timeout again
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed, 1 passed" in result.stdout
    assert result.stdout.count("Failed: Timeout (>2.0s) from pytest-timeout.") == 2
