"""A folder holding the files the documentation's examples name, for running them as written.

The examples of the README, of the pages of docs/ and of `--help` name files a user would have (`rows.jsonl`,
`apis.jsonl`, `lib/`, `checked.jsonl`, `rest_rows.jsonl`...). `build_workspace` makes them from
`sample_data/` with apigen itself, once a test module; `runnable` points the endpoints an example
names at the scripted servers on 127.0.0.1 and cuts a real run's sizes down; `run_example` runs a
line with bash, as a user's shell would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .conftest import CORPORA, PROJECT, write_jsonl
from .json_http import JsonHandler, base_url, serving
from .llm_server import LLMServer
from .scripted_model import pipeline_handler

SAMPLE = PROJECT / "sample_data"
ITEMS_KEY = "ik-example-key"  # what `ITEMS_KEY=...` stands for; the items server wants exactly it

_ENDPOINT = re.compile(r"https?://(?:localhost|127\.0\.0\.1|api\.openai\.com)(?::\d+)?(?:/v1)?(?![\w/.-])")
_SIZE = re.compile(r"(-n|--count) (\d{3,})")  # a real run's hundreds or thousands: a dozen show the same thing


@dataclass
class Workspace:
    root: Path
    llm_url: str  # the scripted OpenAI-compatible server
    items_url: str  # the scripted REST API behind rest_rows.jsonl


def example_env(llm_url: str | None = None) -> dict[str, str]:
    """The environment of a user's shell: this venv's `apigen` first on PATH, no APIGEN_* of the caller's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("APIGEN_")}
    env.pop("OPENAI_API_KEY", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(PROJECT / "src")
    env["APIGEN_API_KEY"] = "test-key"
    if llm_url is not None:
        env["APIGEN_BASE_URL"] = llm_url  # as a user's apigen.toml would say, for examples that name no endpoint
    return env


def runnable(example: str, llm_url: str) -> str:
    """The example as it runs here: its endpoints are the scripted server, its sizes a dozen."""
    command = _ENDPOINT.sub(llm_url, example)
    command = _SIZE.sub(r"\1 12", command)
    return command.replace("ITEMS_KEY=...", f"ITEMS_KEY={ITEMS_KEY}")


_SAMPLE_ROWS = re.compile(r"(?<![\w/-])rows\.jsonl")


def expected_exit_code(example: str) -> int:
    """0, but 1 for a `--strict` check of `rows.jsonl`: the sample rows hold mistakes on purpose (7 of 12)."""
    return 1 if "--strict" in example and _SAMPLE_ROWS.search(example) else 0


OPTIONAL_PROGRAMS = ("jq",)  # what examples pipe into; .ci/run installs it, a test without it skips, naming it


def programs_it_lacks(command: str, env: dict[str, str]) -> list[str]:
    """The optional programs ``command`` pipes into that are not on the PATH of ``env``."""
    piped = [name for name in OPTIONAL_PROGRAMS if re.search(rf"\|\s*{name}\b", command)]
    return [name for name in piped if shutil.which(name, path=env.get("PATH")) is None]


def run_example(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


class _ItemsHandler(JsonHandler):
    """GET /v1/items/{id}: the item as JSON, for the right X-Api-Key only."""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        path, _, query = self.path.partition("?")
        if self.headers.get("X-Api-Key") != ITEMS_KEY:
            self.send_json(401, {"error": "a valid X-Api-Key is required"})
        elif path.startswith("/v1/items/"):
            self.send_json(200, {"id": path.rsplit("/", 1)[1], "query": query, "in_stock": True})
        else:
            self.send_json(404, {"error": "no such endpoint"})


@contextmanager
def items_server() -> Iterator[str]:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _ItemsHandler)) as server:
        yield base_url(server)


def _rest_rows(items_url: str) -> list[dict[str, Any]]:
    tool = {
        "name": "get_item",
        "description": "Look an item of the catalogue up by its id.",
        "parameters": {
            "type": "object",
            "properties": {"item_id": {"type": "string"}, "q": {"type": "string"}},
            "required": ["item_id"],
        },
        "http": {
            "method": "GET",
            "url": items_url + "/v1/items/{item_id}",
            "query": ["q"],
            "headers": {"X-Api-Key": "$ITEMS_KEY"},
        },
    }
    queries = [("i-1", "red"), ("i-2", "blue"), ("i-3", "large")]
    return [
        {
            "id": f"rest-{n}",
            "query": f"Is item {item} in stock in {colour}?",
            "tools": [tool],
            "answers": [{"name": "get_item", "arguments": {"item_id": item, "q": colour}}],
        }
        for n, (item, colour) in enumerate(queries)
    ]


def _single_file_library(path: Path, *modules: str) -> None:
    """A user's one-file library: sample modules joined (the functions `rows.jsonl` calls are in these)."""
    future = "from __future__ import annotations"
    bodies = [(SAMPLE / "functions" / f"{module}.py").read_text().replace(future, "") for module in modules]
    path.write_text(future + "\n" + "\n\n".join(bodies))


#: the files the examples name that a reader brings (an API library, its functions, rows, a dataset): a block naming one
#: says so above it (`*Needs your own files: ...*`); here the workspace makes each from `sample_data/`, but the last
READERS_FILES = (
    "apis.jsonl",
    "lib/",
    "my_tools.py",
    "seeds.jsonl",
    "rows.jsonl",
    "rest_rows.jsonl",
    "xlam_function_calling_60k.json",
    "dataset.jsonl",
    "rejects.jsonl",
    "checked.jsonl",
    "executed.jsonl",
    "generated.jsonl",
    "generated_rejects.jsonl",
    "checked_rejects.jsonl",
    "Qwen2.5-7B-Instruct.jinja",  # a model's chat template (tests/fixtures/chat_templates/ has it for test_export_messages)
)

#: files of the workspace made from ../shared/corpora, which a bare clone has not: the examples naming them skip there
FROM_THE_CORPORA = ("xlam_function_calling_60k.json",)


def files_it_lacks(command: str, root: Path) -> list[str]:
    """The corpus-made files ``command`` names that the workspace at ``root`` could not make (no ../shared here)."""
    return [name for name in FROM_THE_CORPORA if name in command and not (root / name).exists()]


def _xlam_file(root: Path) -> None:
    """The released xlam file's shape (one JSON array), holding the real rows of the shared corpus."""
    samples = CORPORA / "xlam" / "samples.jsonl"
    if samples.exists():
        rows = [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]
        (root / "xlam_function_calling_60k.json").write_text(json.dumps(rows, indent=1))


def build_workspace(root: Path, llm_url: str, items_url: str) -> Workspace:
    """The files the examples read, each made the way a user would make it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sample_data").symlink_to(SAMPLE)
    (root / "lib").symlink_to(SAMPLE / "functions")
    shutil.copy(SAMPLE / "apis.jsonl", root / "apis.jsonl")
    _single_file_library(root / "my_tools.py", "finance", "statistics_tools", "dates")
    shutil.copy(SAMPLE / "examples.jsonl", root / "seeds.jsonl")
    shutil.copy(SAMPLE / "rows.jsonl", root / "rows.jsonl")
    write_jsonl(root / "rest_rows.jsonl", _rest_rows(items_url))
    _xlam_file(root)
    # a stateful environment of the user's own: the sample store under the names the multi-turn examples give
    shutil.copy(SAMPLE / "store" / "online_store.py", root / "my_env.py")
    shutil.copy(SAMPLE / "store" / "conversations.jsonl", root / "conversations.jsonl")
    shutil.copy(SAMPLE / "store" / "initial_state.json", root / "state.json")
    (root / "out").mkdir()
    run = "apigen run sample_data/apis.jsonl --functions sample_data/functions -m offline -J offline --seed 7 -q"
    steps = [
        f"{run} -n 60 -o dataset.jsonl --rejects rejects.jsonl",
        "apigen format-check rows.jsonl -o checked.jsonl -q",
        "apigen exec-check checked.jsonl --functions sample_data/functions -o executed.jsonl -q",
        "apigen generate apis.jsonl -m offline -n 30 --seed 3 -o generated.jsonl --rejects generated_rejects.jsonl -q",
        "apigen format-check generated.jsonl -o generated_checked.jsonl --rejects checked_rejects.jsonl -q",
        "apigen library from-mcp --name units -o units.jsonl -q -- python sample_data/mcp_server.py",
        "apigen generate units.jsonl -m offline -n 6 --seed 1 -q | apigen format-check -o units_checked.jsonl -q",
        f"{run} -n 24 --shard 0/2 -o out/shard-0.jsonl --rejects out/rejects-0.jsonl",
        f"{run} -n 24 --shard 1/2 -o out/shard-1.jsonl --rejects out/rejects-1.jsonl",
        "apigen library from-python sample_data/store --class OnlineStore -o store_tools.jsonl -q",
        "apigen library from-python my_env.py --class OnlineStore -o env_tools.jsonl -q",
        "apigen trajectory-check conversations.jsonl --functions my_env.py -o verified.jsonl --rejects failed.jsonl -q",
    ]
    env = example_env()
    for step in steps:
        done = run_example(step, root, env)
        assert done.returncode == 0, f"{step}\n{done.stderr[-2000:]}"
    # the blueprints simulate's examples read: blueprint's own example, as its run would resume it (same settings)
    step = (
        "apigen blueprint store_tools.jsonl --functions sample_data/store --initial-state sample_data/store/initial_state.json"
        " --policy sample_data/store/policy.md -m offline -n 20 --seed 1 -o blueprints.jsonl --rejects blueprint_rejects.jsonl -q"
    )
    done = run_example(step, root, example_env(llm_url))
    assert done.returncode == 0, f"{step}\n{done.stderr[-2000:]}"
    return Workspace(root, llm_url, items_url)


@contextmanager
def workspace_with_servers(root: Path) -> Iterator[Workspace]:
    with LLMServer(handler=pipeline_handler) as server, items_server() as items_url:
        yield build_workspace(root, server.url, items_url)


def fresh_copy(workspace: Workspace, into: Path) -> Path:
    """A copy of the workspace, so that an example's outputs never meet another's (a run's state does)."""
    shutil.copytree(workspace.root, into, symlinks=True)
    return into
