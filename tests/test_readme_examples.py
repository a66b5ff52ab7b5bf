"""Every example of the README and of the pages of docs/ runs, as a user's shell would run it.

Each ```sh block is run here, in order, in its own copy of a folder holding the files the
examples name (`tests/example_workspace.py`), with every endpoint pointed at scripted servers on
127.0.0.1 and a real run's sizes cut to a dozen rows; or it belongs to a section whose own test
runs that section's blocks as written (`RUN_BY`, each checked to read its section). Blocks are
named by page and line (`docs/export.md:40`). The few lines that are not examples of apigen
(installing, the developer's `make` targets, starting a model server) are listed in
`NOT_RUN_HERE` with what stands in for them, and the list is checked to hold only lines the pages
have. A block that names files a reader brings (`apis.jsonl`, `lib/`, a dataset) carries the line
`*Needs your own files: ...*` just above it, naming them, and a test checks that every block
says so when it should, and names nothing it does not use: here, files made from `sample_data/`
stand in for them, and a block needing one the workspace cannot make is skipped, saying which.
The `toml` configuration, the first Python example and the exec-check rejection the pages show
are run too.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import PROJECT, read_jsonl, write_jsonl
from .doc_pages import PAGES, page_name, page_with
from .example_workspace import (
    READERS_FILES,
    Workspace,
    example_env,
    expected_exit_code,
    files_it_lacks,
    fresh_copy,
    programs_it_lacks,
    run_example,
    runnable,
    workspace_with_servers,
)

# a heading (or the start of one) -> the test module that runs the blocks under it as written
RUN_BY = {
    "## From an MCP server to a dataset": "test_mcp",  # it also checks the figures the page shows
    "### `apigen report`": "test_cli_report",  # and reads the page's numbers back
    "### `apigen export`": "test_export_messages",  # with the chat template and Parquet it needs
    "### Conversations: multi-turn rows": "test_export_conversations",  # with the chat template it needs
    "### `apigen simulate`": "test_simulate",  # and compares the figures the page shows
    "### `apigen blueprint`": "test_blueprint",  # its two blocks, and the figures the page shows
    "## From your environment to a dataset": "test_run_multi_turn",  # and checks what it exported
    "### `apigen batch status`": "test_batch",  # a provider's batch API, scripted
    "### `apigen batch cancel`": "test_batch",
    "## Provider batches": "test_batch",
    "## API libraries": "test_library_docs",  # and its subsections, in order
    "## Past one machine: shards and merge": "test_shards",  # the Slurm array, as a script
    "## On a Ray cluster": "test_ray_engine",  # needs the `ray` extra
}

# a line of the manual that is not an example of apigen -> what runs it, or stands in for it
NOT_RUN_HERE = {
    "make demo    # install into .venv and run the whole pipeline on sample_data/": (
        "the demo block's command, run here; the Makefile's recipe is checked to be that command"
    ),
    "make test    # install into .venv and run the test suite": "the command CI runs (.ci/run)",
    "python3 -m venv .venv && .venv/bin/pip install -e .   # or: make install (adds the dev tools)": (
        "installing: .ci/run installs into a fresh venv and runs `apigen --help`"
    ),
    ".venv/bin/pip install -e '.[parquet]'                 # only for `export --output-format parquet` (pyarrow)": (
        "installing the extra: make install adds it; test_export_parquet uses it"
    ),
    ".venv/bin/apigen --help": "run by .ci/run in a venv without the dev dependencies",
    "vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000 &": "the model server: the scripted server stands in for it",
    "make test     # the test suite (real CLI, real subprocesses, real sockets on 127.0.0.1)": "the command CI runs",
    "make lint     # ruff check, ruff format --check, mypy --strict over src and tests, cog --check": ("the developer's check"),
    "make docs     # docs/cli-reference.md again from every --help, then the site into site/ (mkdocs build --strict)": (
        "it writes into the project; test_docs checks that the file is what it would write, and builds the site"
    ),
    "make bench    # the benchmarks in benchmarks/; figures in docs/benchmarks.md": (
        "measured, not tested: timings do not belong in tests"
    ),
}


@dataclass(frozen=True)
class Block:
    page: str  # README.md, docs/NAME.md
    line: int  # of the opening fence
    headings: tuple[str, ...]  # the `#`/`##` heading, then the `###` one when there is one
    commands: tuple[str, ...]  # one a logical line: continuations joined, comments and blanks left out
    needs: tuple[str, ...]  # the files its `*Needs your own files: ...*` line names (none: no such line)

    @property
    def label(self) -> str:
        return f"{self.page}:{self.line} {self.headings[-1].lstrip('# ') if self.headings else ''}"


MARKER = "*Needs your own files:"


def _marker_above(lines: list[str], opening: int) -> tuple[str, ...]:
    """The files named in backticks by the `*Needs your own files: ...*` line just above a fence (blank lines aside)."""
    above = opening - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above < 0 or not lines[above].startswith(MARKER):
        return ()
    return tuple(re.findall(r"`([^`]+)`", lines[above]))


def page_blocks(page: Path, language: str = "sh") -> list[Block]:
    blocks: list[Block] = []
    headings: list[str] = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            opening = index
            index += 1
            body: list[str] = []
            while not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            if line == f"```{language}":
                joined = "\n".join(body).replace("\\\n", " ")
                commands = [" ".join(part.split()) for part in joined.splitlines()]
                kept = tuple(command for command in commands if command and not command.startswith("#"))
                blocks.append(Block(page_name(page), opening + 1, tuple(headings), kept, _marker_above(lines, opening)))
        elif line.startswith(("# ", "## ")):
            headings = [line]
        elif line.startswith("### "):
            headings = headings[:1] + [line]
        index += 1
    return blocks


def _run_by(block: Block) -> str | None:
    return next((module for key, module in RUN_BY.items() if any(h.startswith(key) for h in block.headings)), None)


def _manual_line(key: str) -> str:
    return " ".join(key.split())


NOT_RUN_LINES = {_manual_line(key) for key in NOT_RUN_HERE}
BLOCKS = [block for page in PAGES for block in page_blocks(page)]
RUN_HERE = [
    block for block in BLOCKS if _run_by(block) is None and any(command not in NOT_RUN_LINES for command in block.commands)
]


def test_the_lines_not_run_here_are_lines_of_the_manual_still() -> None:
    lines = {command for block in BLOCKS for command in block.commands}
    assert lines >= NOT_RUN_LINES


@pytest.mark.parametrize("key", sorted(set(RUN_BY)))
def test_each_section_left_to_another_test_is_read_by_that_test(key: str) -> None:
    assert any(heading.startswith(key) for block in BLOCKS for heading in block.headings), key
    source = (PROJECT / "tests" / f"{RUN_BY[key]}.py").read_text()
    assert key.lstrip("# ").split(":")[0] in source, f"{RUN_BY[key]} does not read the manual's {key!r}"


def test_every_sh_block_is_found_and_most_run_here() -> None:
    assert len(BLOCKS) == sum(page.read_text().count("\n```sh\n") for page in PAGES) >= 30
    assert {block.page for block in BLOCKS} > {"README.md", "docs/pipeline.md", "docs/getting-started.md"}
    here = sum("apigen" in command for block in RUN_HERE for command in block.commands)
    assert here >= 30, here  # a parser gone wrong would run next to nothing


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    with workspace_with_servers(tmp_path_factory.mktemp("readme") / "work") as made:
        yield made


_WRITES = re.compile(r"(?:^|\s)(?:-o|--output|>)\s+(\S+)")
_ALSO_WRITES = re.compile(r"(?:^|\s)(?:--rejects|--report|--html|--card)\s+(\S+)")


def _outputs(command: str) -> list[str]:
    return _WRITES.findall(command) + _ALSO_WRITES.findall(command)


def _run_command(command: str, cwd: Path, env: dict[str, str], workspace: Workspace, made: set[str]) -> None:
    """Run one line; ``made``: the files earlier lines of its block wrote (the ones it may build on)."""
    if command.startswith("export "):
        for assignment in shlex.split(runnable(command, workspace.llm_url))[1:]:
            name, _, value = assignment.partition("=")
            env[name] = value
        return
    if command.startswith("make "):  # a target of the project's Makefile, with this venv's apigen
        target = command.split()[1]
        done = run_example(f"make -s -C {PROJECT} {target} BIN={Path(sys.executable).parent} STAMP=", cwd, env)
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert done.stdout.strip(), f"`{command}` showed nothing"
        return
    assert "apigen " in command, f"a line of the manual that is neither apigen nor listed in NOT_RUN_HERE: {command}"
    shown = runnable(command, workspace.llm_url)
    for written in _outputs(shown):  # each example starts afresh, but from what its block's earlier lines made
        if written not in made:  # with the run state beside it, else the workspace's run would be resumed
            for name in (written, written + ".apigen-run.json"):
                (cwd / name).unlink(missing_ok=True)
    done = run_example(shown, cwd, env)
    assert done.returncode == expected_exit_code(command), f"{shown}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr, shown
    for written in _WRITES.findall(shown):
        assert (cwd / written).is_file() and (cwd / written).stat().st_size > 0, f"{shown}: wrote no {written}"
    made.update(_outputs(shown))


def _files_read(command: str) -> set[str]:
    """The reader's files (`READERS_FILES`) a line names and does not write itself."""
    words = {word.strip("'\"") for word in re.split(r"[\s=|<>]+", command)}
    return {name for name in READERS_FILES if name in words or name.rstrip("/") in words} - set(_outputs(command))


def _files_needed() -> dict[Block, set[str]]:
    """Per block, the reader's files its lines read that no earlier line of its page wrote (a reader follows a page)."""
    needed: dict[Block, set[str]] = {}
    written: dict[str, set[str]] = {}
    for block in BLOCKS:
        made = written.setdefault(block.page, set())
        needed[block] = set()
        for command in block.commands:
            needed[block] |= _files_read(command) - made
            made.update(_outputs(command))
    return needed


NEEDED = _files_needed()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.label for block in BLOCKS])
def test_a_block_naming_the_readers_files_says_so_above_it(block: Block) -> None:
    """`*Needs your own files: `apis.jsonl`, `lib/`*` just above the block: exactly the reader's files it reads."""
    if NEEDED[block]:
        assert block.needs, f"{block.label} reads {sorted(NEEDED[block])}: mark it with `{MARKER} ...*` naming them"
    assert set(block.needs) == NEEDED[block], f"{block.label}: its marker names {block.needs}, it reads {NEEDED[block]}"


@pytest.mark.parametrize("block", RUN_HERE, ids=[block.label for block in RUN_HERE])
def test_a_block_runs_as_written(workspace: Workspace, tmp_path: Path, block: Block) -> None:
    missing = [name for name in block.needs if not (workspace.root / name).exists()]
    if missing:  # the marker says so on the page; nothing here stands in for these
        pytest.skip(f"{block.label} needs the reader's own {', '.join(missing)}, which the examples' workspace has not")
    env = example_env(workspace.llm_url)
    lacking = sorted({name for command in block.commands for name in programs_it_lacks(command, env)})
    if lacking:
        pytest.skip(f"{block.label} pipes into {', '.join(lacking)}, not installed here (.ci/run installs it)")
    folder = fresh_copy(workspace, tmp_path / "work")
    made: set[str] = set()
    left_out = []
    for command in block.commands:
        if command in NOT_RUN_LINES:
            continue
        if files_it_lacks(command, folder):  # a bare clone: run the rest of the block, then say what was not run
            left_out.append(command)
            continue
        _run_command(command, folder, env, workspace, made)
    if left_out:
        lacking = sorted({name for command in left_out for name in files_it_lacks(command, folder)})
        pytest.skip(f"the shared corpora are not beside the checkout (no {', '.join(lacking)}): not run: {left_out}")


# --- the blocks that are not shell --------------------------------------------------------


def _makefile_demo() -> str:
    recipe = (PROJECT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    command = next(part for part in recipe.replace("\\\n", " ").splitlines() if "apigen run" in part)
    return " ".join(command.replace("$(BIN)/", "").replace("$(DEMO_OUT)", "out/demo").split())


def test_make_demo_runs_the_demo_command_the_manual_shows() -> None:
    shown = [block.commands for block in BLOCKS if block.headings[:1] == ("## The 30-second demo",)]
    assert (_makefile_demo(),) in shown


def _toml_block() -> str:
    (block,) = re.findall(r"```toml\n(.*?)```", page_with("```toml\n# apigen.toml"), re.DOTALL)
    return str(block)


def test_the_config_file_shown_sets_what_it_says(workspace: Workspace, tmp_path: Path) -> None:
    import tomllib

    folder = fresh_copy(workspace, tmp_path / "work")
    text = runnable(_toml_block(), workspace.llm_url)
    (folder / "apigen.toml").write_text(text)
    env = example_env()  # no APIGEN_BASE_URL: the file says where the model is
    shown = run_example("apigen config show --json", folder, env)
    assert shown.returncode == 0, shown.stderr
    settings = {entry["name"]: entry for entry in map(json.loads, shown.stdout.splitlines())}
    written = tomllib.loads(text)
    flat = {f"options.{key}": value for key, value in written.pop("options").items()} | written
    for key, value in flat.items():
        entry = settings[key]
        assert entry["source"].startswith("project config"), entry
        assert entry["value"] == value or (key == "model" and entry["value"] == list(value)), entry
    done = run_example("apigen generate apis.jsonl -n 6 --seed 1 -o generated.jsonl", folder, env)
    assert done.returncode == 0, done.stderr
    assert {row["model"] for row in read_jsonl(folder / "generated.jsonl")} == set(tomllib.loads(text)["model"])
    assert (folder / ".apigen-cache").is_dir()


def test_the_format_check_snippet_runs(workspace: Workspace, tmp_path: Path) -> None:
    folder = fresh_copy(workspace, tmp_path / "work")
    snippet = re.findall(r"```python\n(.*?)```", page_with("# Python API\n").split("# Python API\n", 1)[1], re.DOTALL)[0]
    assert "format_check" in snippet
    script = snippet + "\nprint(len(kept))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=folder, env=example_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 5  # the sample rows: 5 of 12 pass, as `format-check rows.jsonl` says


def _tool(name: str) -> dict[str, Any]:
    for line in (PROJECT / "sample_data" / "apis.jsonl").read_text().splitlines():
        api = json.loads(line)
        if api.get("name", api.get("function", {}).get("name")) == name:
            return dict(api)
    raise AssertionError(name)


def test_the_exec_check_rejection_shown_is_what_exec_check_writes(tmp_path: Path) -> None:
    shown = json.loads(
        page_with("### `apigen exec-check`").split("### `apigen exec-check`", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    )
    calls: list[tuple[str, dict[str, Any]]] = [
        ("prime_factors", {"n": 360}),
        ("triangle_area", {"a": 1, "b": 2, "c": 10}),
        ("get_book", {"book_id": "bk-999"}),
    ]
    answers = [{"name": name, "arguments": arguments} for name, arguments in calls]
    row = {"id": "r1", "query": "…", "tools": [_tool(name) for name, _ in calls], "answers": answers}
    write_jsonl(tmp_path / "row.jsonl", [row])
    command = "apigen exec-check row.jsonl --functions sample_data/functions --keep-rejected"
    (tmp_path / "sample_data").symlink_to(PROJECT / "sample_data")
    done = run_example(command, tmp_path, example_env())
    assert done.returncode == 0, done.stderr
    (written,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert {key: written[key] for key in shown} == shown
