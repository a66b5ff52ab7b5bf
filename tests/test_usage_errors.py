"""Usage errors (a missing option, an unknown one, an unknown command) speak apigen's `error:`/`hint:` (issue 23).

Click's own block (`Usage: …`, `Try …`, `Error: Missing option '--rate'.`) stood out among
apigen's messages; scripts that read the first `error:` line found none.
"""

from __future__ import annotations

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
