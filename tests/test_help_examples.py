"""Every example a command's `--help` shows runs, as a shell would run it (issue 11).

The examples name files a user would have (`rows.jsonl`, `apis.jsonl`, `lib/`...): the test makes
them in a scratch folder from `sample_data/`, and points every endpoint an example names at a
scripted OpenAI-compatible server on 127.0.0.1. Examples that need what a test cannot make here
(a package of the user's, a provider's batch API, files of another tool) are listed in
`NEEDS_ELSEWHERE` with the test that runs their command instead; the list is checked to name only
examples that exist, so it cannot hide a new one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from apigen_cli.cli import app

from .conftest import PROJECT
from .llm_server import LLMServer
from .scripted_model import pipeline_handler

SAMPLE = PROJECT / "sample_data"

# example -> where its command is run for real instead
NEEDS_ELSEWHERE = {
    "apigen format-check xlam_function_calling_60k.json --keep-rejected | jq .reason": "the released xlam file: test_format_check (corpus)",
    "ITEMS_KEY=... apigen exec-check rest_rows.jsonl --http-concurrency 16 --strict": "a REST server: test_rest",
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
_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1|api\.openai\.com)(?::\d+)?(?:/v1)?")


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


def test_the_examples_left_to_other_tests_are_examples_still() -> None:
    assert set(NEEDS_ELSEWHERE) <= set(EXAMPLES)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder holding the files the examples name, and the scripted server they talk to."""
    root = tmp_path_factory.mktemp("examples")
    (root / "sample_data").symlink_to(SAMPLE)
    (root / "lib").symlink_to(SAMPLE / "functions")
    shutil.copy(SAMPLE / "apis.jsonl", root / "apis.jsonl")
    shutil.copy(SAMPLE / "functions" / "math_tools.py", root / "my_tools.py")
    shutil.copy(SAMPLE / "examples.jsonl", root / "seeds.jsonl")
    shutil.copy(SAMPLE / "rows.jsonl", root / "rows.jsonl")
    env = _env()
    steps = [
        "apigen run sample_data/apis.jsonl --functions sample_data/functions -m offline -J offline -n 60 --seed 1 "
        "-o dataset.jsonl --rejects rejects.jsonl -q",
        "apigen format-check rows.jsonl -o checked.jsonl -q",
        "apigen exec-check checked.jsonl --functions sample_data/functions -o executed.jsonl -q",
    ]
    for step in steps:
        subprocess.run(["bash", "-c", step], cwd=root, env=env, check=True, capture_output=True, timeout=300)
    (root / "out").mkdir(exist_ok=True)
    shutil.copy(root / "dataset.jsonl", root / "out" / "earlier.jsonl")  # for `cat out/*.jsonl | apigen stats -`
    with LLMServer() as server:
        server.handler = pipeline_handler
        yield root, server.url


def _env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("APIGEN_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(PROJECT / "src")
    env["APIGEN_API_KEY"] = "test-key"
    return env


def _runnable(example: str, url: str) -> str:
    command = _URL.sub(url, example)
    command = re.sub(r"-n (\d{3,})", "-n 12", command)  # the examples' sizes are a real run's
    command = command.replace("--count 30", "--count 12")
    return command


@pytest.mark.parametrize("example", [example for example in EXAMPLES if example not in NEEDS_ELSEWHERE])
def test_a_help_example_runs(workspace: tuple[Path, str], example: str) -> None:
    root, url = workspace
    command = _runnable(example, url)
    env = _env() | {"APIGEN_BASE_URL": url}  # as a user's apigen.toml would say, for examples that name no endpoint
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    allowed = {0, 1} if "--strict" in example else {0}  # --strict: rejected rows are exit 1 by design
    assert done.returncode in allowed, f"{command}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr
