"""A reader that goes away (`apigen ... | head`) ends every command quietly with exit 0 (issue 23).

Each command runs as a real process whose standard output is a pipe already closed at the
reading end, so its first write fails, whatever the machine's speed: the deterministic form
of `| head -0`. Click alone would exit 1 with nothing on stderr, and a command whose output
fit in a buffer would have Python complain at exit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .batch_server import BatchServer
from .run_helpers import APIGEN, APIS, FUNCTIONS, SAMPLE, cli_env
from .scripted_model import pipeline_handler

COMMANDS = {
    "config show": ["config", "show"],
    "library check": ["library", "check", APIS, "--functions", FUNCTIONS],
    "library from-python": ["library", "from-python", FUNCTIONS],
    "generate": ["generate", APIS, "-m", "offline", "-n", "30"],
    "format-check": ["format-check", str(SAMPLE / "rows.jsonl")],
    "run": ["run", APIS, "--functions", FUNCTIONS, "-m", "offline", "-J", "offline", "-n", "12"],
    "stats --json": ["stats", "{dataset}", "{rejects}", "--json"],
    "report --json": ["report", "{dataset}", "{rejects}", "--json"],
    "export": ["export", "{dataset}", "--format", "openai"],
    "--help": ["--help"],
}


def with_closed_stdout(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a byte
    try:
        return subprocess.run(
            [*APIGEN, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=cwd, timeout=120
        )
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("closed-pipe")
    dataset, rejects = folder / "dataset.jsonl", folder / "rejects.jsonl"
    made = subprocess.run(
        [*APIGEN, *COMMANDS["run"], "-o", str(dataset), "--rejects", str(rejects), "-q"], env=cli_env(), capture_output=True
    )
    assert made.returncode == 0, made.stderr
    return {"dataset": str(dataset), "rejects": str(rejects)}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_closed_pipe_ends_the_command_with_0_and_no_complaint(name: str, run_files: dict[str, str], tmp_path: Path) -> None:
    args = [word.format(**run_files) for word in COMMANDS[name]]
    done = with_closed_stdout(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "error:" not in done.stderr


def test_batch_status_into_a_closed_pipe(tmp_path: Path) -> None:
    out = tmp_path / "b.jsonl"
    with BatchServer(pipeline_handler) as server:
        generate = [*APIGEN, "generate", APIS, "-m", "test-model", "-n", "6", "--base-url", server.url]
        made = subprocess.run(
            [*generate, "--batch", "--batch-poll-seconds", "0", "-o", str(out), "-q"], env=cli_env(), capture_output=True
        )
        assert made.returncode == 0, made.stderr
        done = with_closed_stdout(["batch", "status", str(out), "--no-refresh"], tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
