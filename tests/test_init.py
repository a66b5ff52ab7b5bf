"""The public Python API: what `from apigen_cli import ...` offers, and that it needs no CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import apigen_cli
from apigen_cli.cli import app
from apigen_cli.cli.main import COMMAND_MODULES, COMMAND_ORDER
from apigen_cli.conversations.simulation import simulation_tools

from .conftest import invoke
from .llm_server import LLMServer
from .run_helpers import SAMPLE, apigen_process
from .scripted_conversation import conversation_handler

STORE = SAMPLE / "store"


def test_every_exported_name_exists_and_is_listed_once() -> None:
    assert len(apigen_cli.__all__) == len(set(apigen_cli.__all__))
    for name in apigen_cli.__all__:
        assert hasattr(apigen_cli, name), name
    public = {
        name for name in dir(apigen_cli) if not name.startswith("_") and not isinstance(getattr(apigen_cli, name), type(sys))
    }
    assert public <= set(apigen_cli.__all__) | {"annotations"}


def test_the_library_does_not_import_typer_or_rich() -> None:
    code = "import sys, apigen_cli; print(sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# What generating needs none of: provider batches (and httpx with them; an offline run sends
# nothing), Ray's engine, the pipeline, the worker pool, MCP, the multi-turn modules, and rich.
NOT_FOR_GENERATE = (
    "apigen_cli.llm.batch",
    "apigen_cli.ray_engine",
    "apigen_cli.pipeline",
    "apigen_cli.execution.executor",
    "apigen_cli.execution.mcp",
    "apigen_cli.conversations",
    "httpx",
    "ray",
    "mcp",
    "ruamel",
    "rich",  # the quiet run below has nothing to print: its console is made on first use
)
NOT_FOR_RUN = ("apigen_cli.llm.batch", "apigen_cli.execution.mcp", "apigen_cli.conversations", "ray", "mcp", "ruamel")
# What acting out blueprints needs none of: the modules of the other commands (export, reports, the
# library importers, settings), MCP (no `--mcp`), the single-turn pipeline and its engines, provider
# batches, the HTTP client (an offline run sends nothing), and rich (nothing to print).
NOT_FOR_MULTI_TURN = (
    "apigen_cli.cli.training_data",
    "apigen_cli.cli.reports",
    "apigen_cli.cli.library",
    "apigen_cli.cli.settings",
    "apigen_cli.stages.export",
    "apigen_cli.report",
    "apigen_cli.execution.mcp",
    "apigen_cli.execution.mcp_environment",
    "apigen_cli.library.from_mcp",
    "apigen_cli.pipeline",
    "apigen_cli.ray_engine",
    "apigen_cli.llm.batch",
    "httpx",
    "aiohttp",
    "mcp",
    "ray",
    "ruamel",
    "rich",
)
NOT_FOR_SIMULATE = ("apigen_cli.cli.runs", *NOT_FOR_MULTI_TURN)


def loaded(names: tuple[str, ...]) -> str:
    """Python code whose value is the sorted list of ``names`` (modules or packages) in ``sys.modules``."""
    return f"sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') for n in {names!r}))"


def loaded_by_command(argv: list[str], names: tuple[str, ...]) -> str:
    """Run ``apigen ARGV`` in a fresh process, as the installed command does; which of ``names`` it had loaded at its end."""
    code = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: print('loaded', {loaded(names)}, file=sys.stderr))\n"
        f"sys.argv = {['apigen', *argv]!r}\n"
        "runpy.run_module('apigen_cli', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_importing_the_generate_stage_loads_no_batch_ray_mcp_pipeline_or_rich() -> None:
    code = f"import sys, apigen_cli.stages.generate\nprint({loaded(NOT_FOR_GENERATE)})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_quiet_offline_generate_loads_no_batch_ray_mcp_pipeline_or_rich(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    argv = ["generate", str(SAMPLE / "apis.jsonl"), "-m", "offline", "-n", "3", "-o", str(out), "-q"]
    assert loaded_by_command(argv, NOT_FOR_GENERATE) == "loaded []"
    assert len(out.read_text().splitlines()) == 3


def test_a_run_without_batches_or_mcp_servers_loads_neither(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    functions = ["--functions", str(SAMPLE / "functions")]
    argv = ["run", str(SAMPLE / "apis.jsonl"), *functions, "-m", "offline", "-J", "offline", "-n", "3", "-o", str(out), "-q"]
    assert loaded_by_command(argv, NOT_FOR_RUN) == "loaded []"
    assert out.exists()


@pytest.fixture(scope="module")
def store_blueprints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample store's tools and a few verified blueprints of it, as `library from-python` and `blueprint` write them."""
    folder = tmp_path_factory.mktemp("store")
    tools, blueprints = folder / "store_tools.jsonl", folder / "blueprints.jsonl"
    runner = CliRunner()
    made = invoke(runner, "library", "from-python", str(STORE), "--class", "OnlineStore", "-o", str(tools), "-q")
    assert made.exit_code == 0, made.stderr
    made = invoke(
        runner,
        "blueprint", str(tools), "--functions", str(STORE), "--initial-state", str(STORE / "initial_state.json"),
        "--policy", str(STORE / "policy.md"), "-m", "offline", "-n", "3", "--seed", "23", "-o", str(blueprints), "-q",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    return tools, blueprints


def test_an_offline_multi_turn_run_loads_no_other_command_mcp_pipeline_or_http_client(
    store_blueprints: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "conversations.jsonl"
    argv = [
        "run", "--multi-turn", str(store_blueprints[0]), "--functions", str(STORE),
        "--initial-state", str(STORE / "initial_state.json"), "--policy", str(STORE / "policy.md"),
        "-m", "offline", "-n", "2", "--seed", "23", "-o", str(out), "-q",
    ]  # fmt: skip
    assert loaded_by_command(argv, NOT_FOR_MULTI_TURN) == "loaded []"
    assert out.with_name("conversations.blueprints.jsonl").stat().st_size > 0


def test_an_offline_simulate_loads_no_other_command_mcp_pipeline_or_http_client(
    store_blueprints: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "conversations.jsonl"
    argv = [
        "simulate", str(store_blueprints[1]), "--functions", str(STORE), "--policy", str(STORE / "policy.md"),
        "-m", "offline", "--seed", "1", "-o", str(out), "-q",
    ]  # fmt: skip
    assert loaded_by_command(argv, NOT_FOR_SIMULATE) == "loaded []"
    assert out.stat().st_size > 0


def test_the_command_line_lists_every_command_and_suggests_one_it_has_not_loaded() -> None:
    """The console script imports a command's module only when it runs; `--help` and a misspelt name load them all."""
    listed = apigen_process(["--help"])
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.split("\nCommands:\n")[1].splitlines()
    assert [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")] == list(COMMAND_ORDER)
    misspelt = apigen_process(["simulat"])
    assert misspelt.returncode == 2
    assert misspelt.stderr.splitlines()[0] == "error: no such command `simulat`. Did you mean `simulate`?"


def test_each_command_is_defined_in_the_module_its_table_names() -> None:
    """`main.COMMAND_MODULES` is how the console script finds a command's code: each entry must name its module."""
    defined: dict[str, set[str]] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        defined.setdefault(command.name or "", set()).add(command.callback.__module__)
    for group in app.registered_groups:
        assert group.typer_instance is not None
        callbacks = [command.callback for command in group.typer_instance.registered_commands]
        defined.setdefault(group.typer_instance.info.name or "", set()).update(c.__module__ for c in callbacks if c)
    assert defined == {name: {f"apigen_cli.cli.{module}"} for name, module in COMMAND_MODULES.items()}


def test_a_simulate_that_asks_an_endpoint_loads_its_http_client_while_the_tools_are_read(
    store_blueprints: tuple[Path, Path], tmp_path: Path
) -> None:
    """The HTTP client's import (httpx, aiohttp: 0.2-0.3 s) overlaps the child process reading the classes' tools."""
    blueprints = store_blueprints[1]
    rows = [json.loads(line) for line in blueprints.read_text().splitlines()]
    out = tmp_path / "conversations.jsonl"
    code = (
        "import runpy, sys, threading\n"
        "import apigen_cli.conversations.simulation as simulation\n"
        "read_tools = simulation.simulation_tools\n"
        "def spied(*args, **kwargs):\n"
        "    importing = any(thread.name == 'apigen-import-http' for thread in threading.enumerate())\n"
        "    print('http client', 'loading' if importing or 'apigen_cli.llm.http_backend' in sys.modules else 'not loading',\n"
        "          file=sys.stderr)\n"
        "    return read_tools(*args, **kwargs)\n"
        "simulation.simulation_tools = spied\n"
        "runpy.run_module('apigen_cli', run_name='__main__')\n"
    )
    with LLMServer(handler=conversation_handler(rows, sorted(simulation_tools(None, str(STORE))[1]))) as server:
        argv = [
            "simulate", str(blueprints), "--functions", str(STORE), "--policy", str(STORE / "policy.md"),
            "--base-url", server.url, "-m", "agent", "--user-model", "user", "--seed", "1", "-o", str(out), "-q",
        ]  # fmt: skip
        result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == "http client loading"
    assert out.stat().st_size > 0
