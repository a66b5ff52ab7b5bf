"""What apigen prints for people reads at 80 columns: `--help` of every command (no line over 80,
usage lines as a person writes them, no Python types, examples that paste as they are, `run`'s
options in panels) and the final Table 1 of `apigen run` and `apigen stats`.

The commands are those found at test time (a command added later is covered without being listed
here), rendered as a terminal 80 columns wide renders them (`COLUMNS=80`) and as
`docs/cli-reference.md` is made (`terminal_width=80`).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from apigen_cli.cli import app
from apigen_cli.cli.help import shell_lines, use_apigen_help

from .conftest import invoke
from .llm_server import LLMServer
from .run_helpers import cli_env, run_args
from .scripted_model import pipeline_handler
from .test_help_examples import example_blocks, help_examples, joined

WIDTH = 80
_PYTHON_TYPE = re.compile(r"<(str|int|float|bool|path|list\[[\w|]+\]|tuple\[[\w, ]+\])>")


def _commands(command: Any, words: list[str]) -> Iterator[list[str]]:
    yield words
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, [*words, name])


COMMANDS = [" ".join(words) for words in _commands(typer.main.get_command(app), [])]


def rendered_help(words: list[str], *, how: str) -> str:
    return _rendered_help(tuple(words), how)


@functools.cache
def _rendered_help(words: tuple[str, ...], how: str) -> str:
    """`apigen WORDS --help` as a process in a terminal of 80 columns (`COLUMNS`: Click leaves 2 free),
    or as the CLI reference is made (in-process, `terminal_width=80`)."""
    if how == "terminal":
        done = subprocess.run(
            [str(Path(sys.executable).parent / "apigen"), *words, "--help"],  # the installed command, as a reader runs it
            env=cli_env(COLUMNS=str(WIDTH)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout
    shown = CliRunner().invoke(app, [*words, "--help"], terminal_width=WIDTH, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def test_every_command_is_found() -> None:
    assert {"", "run", "generate", "library from-mcp", "batch status", "config show"} <= set(COMMANDS)


@pytest.mark.parametrize("how", ["terminal", "reference"])
@pytest.mark.parametrize("command", COMMANDS)
def test_no_help_line_is_over_80_columns(command: str, how: str) -> None:
    text = rendered_help(command.split(), how=how)
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_wide, "\n".join(too_wide)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_narrower_terminal_gets_narrower_help(command: str) -> None:
    """60 columns (a split window): the name column narrows too, so the help beside it still fits."""
    shown = CliRunner().invoke(app, [*command.split(), "--help"], terminal_width=60, catch_exceptions=False)
    too_wide = [line for line in shown.stdout.splitlines() if len(line) > 60]
    assert not too_wide, "\n".join(too_wide)


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_names_arguments_as_a_person_writes_them(command: str) -> None:
    text = rendered_help(command.split(), how="terminal")
    usage = text.split("\n\n", 1)[0]
    assert usage.startswith(f"Usage: apigen {command}".replace("  ", " ").rstrip())
    for wrong in ("[[", "{", "}", "]...", "<"):
        assert wrong not in usage, usage
    assert not _PYTHON_TYPE.search(text), _PYTHON_TYPE.search(text)


def test_usage_lines_of_the_argument_kinds() -> None:
    """Required, optional, several, several optional, and a metavar that says it all."""
    usage = {command: rendered_help(command.split(), how="terminal").splitlines()[0] for command in COMMANDS}
    assert usage["generate"] == "Usage: apigen generate [OPTIONS] APIS"
    assert usage["run"] == "Usage: apigen run [OPTIONS] [APIS]"
    assert usage["format-check"] == "Usage: apigen format-check [OPTIONS] [INPUT]"
    assert usage["stats"] == "Usage: apigen stats [OPTIONS] FILE..."
    assert usage["merge"] == "Usage: apigen merge [OPTIONS] OUT SHARD_OUTPUTS..."
    assert usage["report"] == "Usage: apigen report [OPTIONS] DATASET [REJECTS...]"
    assert usage["library from-mcp"] == "Usage: apigen library from-mcp [OPTIONS] [-- COMMAND [ARGS...]]"


@pytest.mark.parametrize("how", ["terminal", "reference"])
@pytest.mark.parametrize("command", COMMANDS)
def test_each_example_pastes_as_it_is(command: str, how: str) -> None:
    """Every example shown is one of the command's examples, whole: each line but the last ends in ` \\`, and
    the shell, which joins such lines, reads the very words of the example."""
    text = rendered_help(command.split(), how=how)
    examples = set(help_examples())
    for block in example_blocks(text):
        assert all(line.endswith(" \\") for line in block[:-1]), block
        assert not block[-1].endswith("\\"), block
        pasted = "\n".join(block)
        one_line = joined(block)
        assert one_line in examples, f"not an example of `{command}`, or broken: {block}"
        assert shlex.split(pasted.replace("\\\n", " ")) == shlex.split(one_line)


def test_every_example_is_shown_somewhere() -> None:
    shown = {joined(block) for command in COMMANDS for block in example_blocks(rendered_help(command.split(), how="terminal"))}
    assert set(help_examples()) <= shown


def test_a_long_example_breaks_before_options_and_pipes_never_inside_a_quote() -> None:
    example = (
        "apigen run apis.jsonl --mcp units='python sample_data/mcp_server.py --port 8000' -m offline -J offline "
        "-n 100 | apigen export --format openai > train.jsonl"
    )
    lines = shell_lines(example, 70)
    assert lines == [
        "apigen run apis.jsonl \\",
        "    --mcp units='python sample_data/mcp_server.py --port 8000' \\",
        "    -m offline -J offline -n 100 \\",
        "    | apigen export --format openai > train.jsonl",
    ]
    assert shell_lines("apigen stats a.jsonl b.jsonl", 60) == ["apigen stats a.jsonl b.jsonl"]
    narrow = shell_lines(example, 50)  # the quoted word is wider than the line: it stays whole
    assert "    units='python sample_data/mcp_server.py --port 8000' \\" in narrow
    assert all(line.count("'") % 2 == 0 for line in narrow)


def test_run_groups_its_options_in_panels_the_frequent_first() -> None:
    text = rendered_help(["run"], how="terminal")
    headings = [line[:-1] for line in text.splitlines() if re.fullmatch(r"[A-Z][^:]*:", line)]
    assert headings == [
        "Arguments",
        "Input and output",
        "Generation",
        "LLM endpoint and requests",
        "Execution",
        "Judge",
        "Batch (half price, within 24 hours)",
        "Engine (past one machine)",
        "Multi-turn (--multi-turn)",
    ]
    panels = {heading: body for heading, body in re.findall(r"\n([A-Z][^:\n]*):\n(.*?)(?=\n\n|\Z)", text, re.S)}
    assert re.match(r"  -o, --output FILE", panels["Input and output"])
    for flag in ("--rejects", "--report", "--strict", "--quiet", "--help"):
        assert f" {flag}" in panels["Input and output"]
    assert "-n, --count N" in panels["Generation"]
    assert re.match(r"  --base-url URL\s", panels["LLM endpoint and requests"])
    assert re.match(r"  --functions PATH\s", panels["Execution"])
    assert re.match(r"  -J, --judge-model NAME\s", panels["Judge"])
    assert "--ray-address" in panels["Engine (past one machine)"]
    assert re.match(r"  --multi-turn\s", panels["Multi-turn (--multi-turn)"])
    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    for parameter in command.params:
        for flag in parameter.opts:
            if flag.startswith("-"):
                assert len(re.findall(rf"(?<![\w-]){re.escape(flag)}(?=[ ,/\n])", "\n".join(panels.values()))) >= 1, flag


def test_text_breaks_between_words_never_inside_a_flag() -> None:
    """Click breaks at hyphens (`--error-` / `pattern`, `few-` / `shot`); apigen's help breaks only at spaces."""
    text = rendered_help(["run"], how="terminal")
    assert not re.search(r"[\w`]-\n", text)


def test_a_command_of_a_group_made_elsewhere_gets_the_same_help() -> None:
    """A command another module adds (a new group of commands, say) reads as the others do, without being told."""
    later = typer.Typer(rich_markup_mode=None)
    things = typer.Typer(name="things")
    later.add_typer(things)

    @things.command("count")
    def count(
        files: Annotated[list[str], typer.Argument(metavar="FILE", help="Files to count.")],
        limit: Annotated[Optional[int], typer.Option("--limit", help="At most this many.")] = None,
    ) -> None:
        """Count things.

        Examples:

            apigen things count a.jsonl b.jsonl c.jsonl d.jsonl e.jsonl f.jsonl g.jsonl --limit 100000000
        """

    @later.command("other")
    def other() -> None:
        """Another command."""

    use_apigen_help(later)
    shown = CliRunner().invoke(later, ["things", "count", "--help"], terminal_width=WIDTH, prog_name="apigen")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0] == "Usage: apigen things count [OPTIONS] FILE..."
    assert "--limit LIMIT" in shown.stdout and "<int>" not in shown.stdout
    assert "      apigen things count a.jsonl b.jsonl c.jsonl d.jsonl e.jsonl f.jsonl \\\n" in shown.stdout


def test_the_final_table_of_a_run_and_of_stats_fits_80_columns(tmp_path: Path) -> None:
    """Two generators with long names, a judge, tokens and wall time: what `apigen run` ends with, and what
    `apigen stats` prints, has no line over 80 columns, and each model's figures are there whole."""
    out, rejects, report = tmp_path / "data.jsonl", tmp_path / "rejects.jsonl", tmp_path / "report.json"
    models = ["Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.3-70B-Instruct-Turbo"]
    runner = CliRunner()
    with LLMServer(handler=pipeline_handler) as server:
        args = run_args(server=server, model=models, judge=models[0], count=24, seed=5, out=out, rejects=rejects, report=report)
        ran = invoke(runner, *args)
    assert ran.exit_code == 0, ran.stderr
    stats = invoke(runner, "stats", str(out), str(rejects))
    assert stats.exit_code == 0, stats.stderr
    figures = json.loads(report.read_text())
    for shown in (ran.stderr, stats.stdout):
        lines = shown.splitlines()
        assert max(len(line) for line in lines) <= WIDTH, "\n".join(line for line in lines if len(line) > WIDTH)
        names = next(line for line in lines if line.startswith("model "))
        assert names.split()[1:] == [*models, "total"][: len(names.split()) - 1]
        requested = [line for line in lines if line.startswith("requested ")]
        counts = [word for line in requested for word in line.split()[1:]]
        assert counts == [str(figures["models"][model]["requested"]) for model in models] + [str(figures["total"]["requested"])]
