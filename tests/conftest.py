"""Shared test fixtures: an isolated environment for every test, and the real corpora."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.cli import app

PROJECT = Path(__file__).resolve().parent.parent
CORPORA = PROJECT.parent / "shared" / "corpora"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No APIGEN_* settings, no real keys, no proxies, no colour, a private config folder, an empty working folder.

    The working folder matters: a developer's own ./apigen.toml must not change a test.
    """
    import os

    for name in list(os.environ):
        if name.startswith("APIGEN_") or name in ("OPENAI_API_KEY", "NO_COLOR"):
            monkeypatch.delenv(name, raising=False)
        if name.lower().endswith("_proxy"):  # the tests' servers are on 127.0.0.1: a machine's proxy is not in the way
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    yield


def corpus(path: str) -> Path:
    """A file of ../shared/corpora, or skip the test saying why."""
    found = CORPORA / path
    if not found.exists():
        pytest.skip(f"the shared corpora are not beside the checkout ({found} is absent)")
    return found


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def parse_stdout(text: str) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object: that is the contract the tests hold it to."""
    rows = []
    for line in text.splitlines():
        value = json.loads(line)
        assert isinstance(value, dict), line
        rows.append(value)
    return rows


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, input: str | None = None) -> Any:
    """Run the real CLI in-process; stdout and stderr kept apart.

    Every `hint:` the command prints is checked on the way: each flag it names must
    be one that this very command takes, so a hint never sends a user to a flag
    that is not there.
    """
    result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
    check_hints_name_real_flags(list(args), result.stderr)
    return result


def command_flags(words: list[str]) -> set[str]:
    """The flags of the command that ``words`` (a command line, without `apigen`) runs."""
    import typer.main

    command: Any = typer.main.get_command(app)
    for word in words:
        subcommands = getattr(command, "commands", None)
        if not subcommands or word not in subcommands:
            break
        command = subcommands[word]
    flags = {"--help"}
    for parameter in command.params:
        flags.update(getattr(parameter, "opts", ()))
        flags.update(getattr(parameter, "secondary_opts", ()))
    return flags


def check_hints_name_real_flags(words: list[str], stderr: str) -> None:
    import re

    # hints, and every other line that tells the user to "pass `--flag`"
    hints = [line for line in stderr.splitlines() if line.startswith("hint:") or "pass `--" in line]
    if not hints:
        return
    known = command_flags(words)
    for hint in hints:
        # A command line quoted whole (`apigen run ...`, `python ...`) has its own flags.
        own = re.sub(r"`([^`]*)`", lambda quoted: quoted.group(0) if quoted.group(1).startswith("-") else "", hint)
        for flag in re.findall(r"(?<![\w$-])(--[a-z][a-z0-9-]*)", own):
            assert flag in known, f"`apigen {' '.join(words[:2])}` says {hint!r}, but has no {flag}"
