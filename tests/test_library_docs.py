"""Every example of the README's "API libraries" section runs, in order, as a shell would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import PROJECT, read_jsonl
from .doc_pages import page_with

README = page_with("\n## API libraries")
SECTION = README.split("\n## API libraries", 1)[1].split("\n## ", 1)[0]
# `library from-mcp` needs a server running: tests/test_mcp.py runs its examples
_MCP = SECTION.split("### `apigen library from-mcp`", 1)
SECTION = _MCP[0] + ("\n### " + _MCP[1].split("\n### ", 1)[1] if len(_MCP) > 1 else "")


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", SECTION, re.S)


def test_the_library_examples_run_and_say_what_the_readme_says(tmp_path: Path) -> None:
    (tmp_path / "sample_data").symlink_to(PROJECT / "sample_data")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    commands = [line for block in _blocks("sh") for line in block.splitlines() if line.startswith("apigen ")]
    assert len(commands) >= 9
    stderr_of: dict[str, str] = {}
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        stderr_of[command] = done.stderr
    [shown] = [block for block in _blocks("text") if "from-openapi:" in block]
    openapi = next(stderr for command, stderr in stderr_of.items() if "from-openapi" in command and "--auth" in command)
    assert openapi == shown
    assert len(read_jsonl(tmp_path / "working.jsonl")) == 47  # "keeps the 47 of 57 functions"
    assert len(read_jsonl(tmp_path / "store_tools.jsonl")) == 14  # "its 14 methods become 14 tools"
    assert read_jsonl(tmp_path / "dataset.jsonl")
    merged = read_jsonl(tmp_path / "all.jsonl")
    assert len(merged) == 57 + 3 + 1
