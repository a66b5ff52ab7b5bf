"""Every example a command's `--help` shows runs, as a shell would run it, pasted from the help of a
terminal 80 columns wide (its lines joined by the shell at each ` \\`).

The examples name files a user would have (`rows.jsonl`, `apis.jsonl`, `lib/`...): the test makes
them in a scratch folder from `sample_data/` (`tests/example_workspace.py`), and points every
endpoint an example names at a scripted OpenAI-compatible server on 127.0.0.1 (and the REST rows'
at a scripted API). Examples that need what a test cannot make here
(a package of the user's, a provider's batch API, files of another tool) are listed in
`NEEDS_ELSEWHERE` with the test that runs their command instead; the list is checked to name only
examples that exist, so it cannot hide a new one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from apigen_cli.cli import app

from .example_workspace import (
    Workspace,
    example_env,
    expected_exit_code,
    files_it_lacks,
    programs_it_lacks,
    run_example,
    runnable,
    workspace_with_servers,
)

# example -> where its command is run for real instead
NEEDS_ELSEWHERE = {
    "apigen library from-python mypackage.tools --untyped loose > apis.jsonl": "an installed package: test_library_python",
    "apigen library from-openapi petstore.yaml -o apis.jsonl": "test_library_openapi (sample_data/petstore.yaml)",
    "apigen library from-openapi api.json --base-url http://127.0.0.1:8000 --auth api_key=PETS_KEY > apis.jsonl": "test_library_openapi",
    "apigen library from-toolbench data/toolenv/tools --key-env RAPIDAPI_KEY -o apis.jsonl": "ToolBench's tree: test_library_toolbench",
    "apigen library from-toolbench tools/Finance/stock.json --base-url http://127.0.0.1:8080 > apis.jsonl": "test_library_toolbench",
    "apigen library from-openapi pets.yaml --auth key=PETS_KEY | PETS_KEY=... apigen library check - --pass-env PETS_KEY": "test_library_check",
    "apigen library merge python_apis.jsonl rest_apis.jsonl -o apis.jsonl": "test_library_docs (the README's merge)",
    "apigen library merge a.jsonl b.jsonl | apigen library check - --lint-only": "test_library_docs",
    "apigen library from-mcp --url http://127.0.0.1:8000/mcp --name units -o units.jsonl": "an MCP server over HTTP: test_mcp",
    "apigen merge dataset.jsonl shard-0.jsonl shard-1.jsonl shard-2.jsonl --rejects rejects.jsonl --report report.json": "test_shards",
    "apigen merge dataset.jsonl out/shard-*.jsonl && apigen export dataset.jsonl --format openai > train.jsonl": "test_shards",
    "apigen batch status data.jsonl": "a provider batch API: test_batch",
    "apigen batch status data.jsonl --no-refresh --json | jq -r .status": "test_batch",
    "apigen batch cancel data.jsonl": "test_batch",
    "apigen batch cancel data.jsonl --base-url https://api.openai.com/v1": "test_batch",
    "apigen export dataset.jsonl --format messages --with-results --render-check qwen2.5.jinja -o train.jsonl": "test_chat_template",
}


def _commands(command: Any, words: list[str]) -> Iterator[tuple[list[str], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from _commands(sub, [*words, name])
    else:
        yield words, command


def help_examples() -> list[str]:
    """The example lines of every command's help, in command order."""
    found: list[str] = []
    for _words, command in _commands(typer.main.get_command(app), []):
        text = command.help or ""
        if "Examples:" not in text:
            continue
        for line in text.split("Examples:", 1)[1].splitlines():
            line = line.strip()
            if line and ("apigen " in line) and not line.startswith("#"):
                found.append(line)
    return found


EXAMPLES = help_examples()


def example_blocks(text: str) -> list[list[str]]:
    """The examples of a rendered `--help` as shown: blocks of lines between blank lines, after `Examples:`."""
    if "\n  Examples:\n" not in text:
        return []
    section = text.split("\n  Examples:\n", 1)[1]
    section = re.split(r"\n(?=\S)", section, maxsplit=1)[0]  # up to the next heading (`Arguments:`, `Options:`)
    return [block.splitlines() for block in section.strip("\n").split("\n\n") if block.strip()]


def joined(block: list[str]) -> str:
    """The one line a shell reads from an example's lines (each but the last ends in ` \\`)."""
    return " ".join(line.removesuffix(" \\").strip() for line in block)


def pasted_examples() -> dict[str, str]:
    """Each example as `--help` shows it in a terminal 80 columns wide, the lines a reader copies, by its one line."""
    found: dict[str, str] = {}
    runner = CliRunner()
    for words, _command in _commands(typer.main.get_command(app), []):
        shown = runner.invoke(app, [*words, "--help"], terminal_width=78)  # a terminal of 80: Click leaves 2 free
        for block in example_blocks(shown.stdout):
            found[joined(block)] = "\n".join(block)
    return found


PASTED = pasted_examples()


def test_the_examples_left_to_other_tests_are_examples_still() -> None:
    assert set(NEEDS_ELSEWHERE) <= set(EXAMPLES)


def test_every_example_is_shown_whole_in_help_at_80_columns() -> None:
    assert set(EXAMPLES) <= set(PASTED)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    with workspace_with_servers(tmp_path_factory.mktemp("examples") / "work") as made:
        (made.root / "out" / "earlier.jsonl").write_bytes((made.root / "dataset.jsonl").read_bytes())  # for `cat out/*.jsonl`
        yield made


@pytest.mark.parametrize("example", [example for example in EXAMPLES if example not in NEEDS_ELSEWHERE])
def test_a_help_example_runs(workspace: Workspace, example: str) -> None:
    if files_it_lacks(example, workspace.root):
        pytest.skip(f"the shared corpora are not beside the checkout: no {', '.join(files_it_lacks(example, workspace.root))}")
    env = example_env(workspace.llm_url)
    if programs_it_lacks(example, env):
        pytest.skip(
            f"the example pipes into {', '.join(programs_it_lacks(example, env))}, not installed here (.ci/run installs it)"
        )
    command = runnable(PASTED[example], workspace.llm_url).replace("--count 30", "--count 12")  # as pasted from `--help`
    done = run_example(command, workspace.root, env)
    assert done.returncode == expected_exit_code(example), f"{command}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr
