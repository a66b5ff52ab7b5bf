"""A run's state and files under attack: a hand-edited state, planted links and FIFOs, one file named
twice, two writers on one file, and the exit codes that say what happened (`-v` included)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import write_jsonl
from .hostile import run_cli
from .run_helpers import run_args

ROW = {"query": "q", "tools": [{"name": "f", "description": "d", "parameters": {}}], "answers": [{"name": "f", "arguments": {}}]}


def offline_run(tmp_path: Path, *extra: str, seed: int = 5) -> list[str]:
    return run_args(*extra, count=12, seed=seed, out=tmp_path / "out.jsonl", rejects=tmp_path / "rejects.jsonl", quiet=True)


# --- exit codes: `-v` shows a traceback, never changes the code --------------------------------------


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
@pytest.mark.parametrize(
    ("case", "code"),
    [("usage", 2), ("bad-line", 2), ("missing-input", 2), ("strict-rejects", 1), ("clean", 0)],
)
def test_exit_codes_are_the_same_with_and_without_verbose(tmp_path: Path, case: str, code: int, verbose: bool) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [ROW])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROW) + "\n{not json\n")
    rejected = write_jsonl(tmp_path / "rejected.jsonl", [{**ROW, "answers": [{"name": "nope", "arguments": {}}]}])
    args = {
        "usage": ["format-check", "--no-such-flag", str(good)],
        "bad-line": ["format-check", str(bad)],
        "missing-input": ["format-check", str(tmp_path / "absent.jsonl")],
        "strict-rejects": ["format-check", str(rejected), "--strict"],
        "clean": ["format-check", str(good)],
    }[case]
    ran = run_cli(*args, *(["-v"] if verbose else []))
    assert ran.exit_code == code, ran.stderr
    if code == 2:
        assert "\nerror: " in "\n" + ran.stderr and "hint: " in ran.stderr
        assert ("Traceback" in ran.stderr) is (verbose and case != "usage")


# --- non-regular files where apigen needs a regular one: an error, never a hang -------------------


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_state_file_that_is_not_a_regular_file_is_an_error_not_a_hang(tmp_path: Path, kind: str) -> None:
    state = tmp_path / "out.jsonl.apigen-run.json"
    if kind == "fifo":
        os.mkfifo(state)
    else:
        state.mkdir()
    ran = run_cli(*offline_run(tmp_path), deadline=60)
    assert not ran.killed, "the run hung on the state file"
    assert ran.exit_code == 2, ran.stderr
    assert f"the run state `{state}` cannot be used" in ran.stderr and "hint: " in ran.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_fifo_as_the_rejects_of_a_resumable_run_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "rejects.jsonl")
    ran = run_cli(*offline_run(tmp_path), deadline=60)
    assert not ran.killed, "the run hung on the FIFO"
    assert ran.exit_code == 2 and "`--rejects`" in ran.stderr and "regular file" in ran.stderr, ran.stderr
