"""The public Python API: what `from apigen_cli import ...` offers, and that it needs no CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import apigen_cli

from .run_helpers import SAMPLE


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
# nothing), Ray's engine, the pipeline, the worker pool, MCP, the multi-turn modules.
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
)
# Python code whose value is the sorted list of those in sys.modules
LOADED = f"sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') for n in {NOT_FOR_GENERATE!r}))"


def test_importing_the_generate_stage_loads_no_batch_ray_mcp_or_pipeline() -> None:
    code = f"import sys, apigen_cli.stages.generate\nprint({LOADED})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_offline_generate_loads_no_batch_ray_mcp_or_pipeline(tmp_path: Path) -> None:
    """The whole command as `apigen generate` runs it; the modules it loaded are listed as the process ends."""
    out = tmp_path / "rows.jsonl"
    argv = ["apigen", "generate", str(SAMPLE / "apis.jsonl"), "-m", "offline", "-n", "3", "-o", str(out), "-q"]
    code = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: print('loaded', {LOADED}, file=sys.stderr))\n"
        f"sys.argv = {argv!r}\n"
        "runpy.run_module('apigen_cli', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 3
    assert result.stderr.strip().splitlines()[-1] == "loaded []"
