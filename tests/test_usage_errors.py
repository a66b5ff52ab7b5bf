"""Usage errors (a missing option, an unknown one, an unknown command) speak apigen's `error:`/`hint:` (issue 23).

Click's own block (`Usage: …`, `Try …`, `Error: Missing option '--rate'.`) stood out among
apigen's messages; scripts that read the first `error:` line found none.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import invoke


@pytest.mark.parametrize(
    ("args", "first_line", "hint"),
    [
        (["negatives"], "error: missing option `--rate`", "hint: `apigen negatives --help` lists what it takes"),
        (["stats", "--nope", "x"], "error: no such option `--nope`", "hint: `apigen stats --help` lists what it takes"),
        (["frob"], "error: no such command `frob`", "hint: `apigen --help` lists what it takes"),
        (["library", "check"], "error: missing argument `LIB`", "hint: `apigen library check --help` lists what it takes"),
        (["export", "x.jsonl"], "error: missing option `--format`", "hint: `apigen export --help` lists what it takes"),
    ],
)
def test_a_usage_error_is_an_error_line_and_a_hint(runner: CliRunner, args: list[str], first_line: str, hint: str) -> None:
    result = invoke(runner, *args, input="")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [first_line, "", hint]


_CLASSES = "the environment's classes, and no `--functions` names them"
_CLASSES_HINT = "hint: pass `--functions PATH`, the Python file or folder that defines the environment's classes"
_EITHER = (
    "an environment, and neither `--functions` nor `--mcp` names one"  # the commands an MCP server can be the environment of
)
_EITHER_HINT = f"{_CLASSES_HINT}, or `--mcp COMMAND`, an MCP server started afresh for each conversation"


@pytest.mark.parametrize(
    ("args", "what_it_replays", "hint"),
    [
        (
            ["trajectory-check", "sample_data/store/conversations.jsonl"],
            f"`trajectory-check` replays each conversation on {_EITHER}",
            _EITHER_HINT,
        ),
        (
            ["blueprint", "store_tools.jsonl", "-m", "offline"],
            f"`blueprint` replays each blueprint's actions on {_CLASSES}",
            _CLASSES_HINT,
        ),
        (["simulate", "blueprints.jsonl", "-m", "offline"], f"`simulate` runs the agent's calls on {_EITHER}", _EITHER_HINT),
        (
            ["run", "--multi-turn", "store_tools.jsonl", "-m", "offline", "-o"],
            f"`run --multi-turn` replays each blueprint's actions on {_CLASSES}",
            _CLASSES_HINT,
        ),
    ],
)
def test_a_multi_turn_command_without_functions_says_what_it_would_run_there(
    runner: CliRunner, tmp_path: Path, args: list[str], what_it_replays: str, hint: str
) -> None:
    """Each command says it in the same words, naming what it would have run on the classes (or on the server)."""
    result = invoke(runner, *args, *([str(tmp_path / "out.jsonl")] if args[-1] == "-o" else []))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {what_it_replays}", "", hint]
