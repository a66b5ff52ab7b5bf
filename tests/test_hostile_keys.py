"""Keys stay in apigen: user code can read neither apigen's environment nor its memory, and no result carries a secret.

A function (or an MCP server) is code that came with the data. It runs with the user's
rights, so these tests have it do what such code can: walk up its process chain reading
every ancestor's ``/proc/<pid>/environ``, ``cmdline`` and ``mem``, and return what it found.
The key must then be in no row, no rejected row, no ``--log-llm`` line, no request the
judge receives and no cache file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import PROJECT, read_jsonl, write_jsonl
from .llm_server import LLMServer
from .run_helpers import APIGEN, apigen_process, cli_env, run_args
from .scripted_model import pipeline_handler

PRYING = PROJECT / "tests" / "fixtures" / "prying_functions.py"
KEY = "sk-test-KEEPOUT-5f1d8c0a9b7e4c2d"
PASSED = "passed-value-9c2e7a41d0"  # a variable --pass-env hands to the functions on purpose
DATABASE_URL = "postgres://app:hunter2-db-pass@127.0.0.1/app"  # a secret whose name says nothing of it

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, which only Linux has")


def _tool(name: str) -> dict[str, object]:
    parameters = {"type": "object", "properties": {"city": {"type": "string", "enum": ["Oslo", "Rome"]}}, "required": ["city"]}
    return {"name": name, "description": "The weather in a city.", "category": "weather", "parameters": parameters}


def _apigens_environment(seen: dict[str, Any]) -> list[str]:
    """What the walk up from user code read of apigen's own environment (one entry per apigen process passed)."""
    entries = [entry for entry in seen.values() if isinstance(entry, dict) and "cmdline" in entry]
    return [str(entry["environ"]) for entry in entries if "\0-m\0apigen_cli\0" in str(entry["cmdline"])]


def _everything_written(folder: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(folder.rglob("*")) if path.is_file())


@linux_only
@pytest.mark.parametrize("function", ["peek", "peek_memory"])
def test_a_function_reading_apigens_environment_or_memory_finds_no_key(tmp_path: Path, function: str) -> None:
    apis = write_jsonl(tmp_path / "apis.jsonl", [_tool(function)])
    written = tmp_path / "written"
    written.mkdir()
    out, rejects, log, cache = (written / name for name in ("data.jsonl", "rejects.jsonl", "llm.jsonl", "cache"))
    with LLMServer(handler=pipeline_handler) as server:
        args = run_args(
            "--log-llm", str(log), "--cache", str(cache), "--workers", "1", "--pass-env", "PASSED_ON", "--max-result-chars", "1000000",
            apis=apis, functions=PRYING, server=server, count=4, seed=3, out=out, rejects=rejects,
        )  # fmt: skip
        ran = apigen_process(args, APIGEN_API_KEY=KEY, PASSED_ON=PASSED, DATABASE_URL=DATABASE_URL)
        bodies = [request.raw.decode() for request in server.chat_requests()]
    assert ran.returncode == 0, ran.stderr
    rows = read_jsonl(out)
    assert rows, "the run verified no row: the test would prove nothing"
    results = [call["result"] for row in rows for call in row["execution_result"]]
    if function == "peek":  # the walk reached apigen, and could not read its environment
        for result in results:
            assert [text[:16] for text in _apigens_environment(result)] == ["PermissionError:"], result
            assert DATABASE_URL not in json.dumps(result)  # nor had the worker its own copy
    else:
        assert all(str(result["memory"]).startswith("PermissionError") for result in results), results
    assert any("quality of function-calling training data" in body for body in bodies)  # the judge read the results
    for where, text in [("written files", _everything_written(written)), ("requests", "\n".join(bodies)), ("stderr", ran.stderr)]:
        assert KEY not in text and KEY[:16] not in text, where
        assert PASSED not in text, where  # a value --pass-env handed out is cut from what comes back too
        assert "hunter2-db-pass" not in text, where


@linux_only
def test_apigens_command_line_holds_no_key(tmp_path: Path) -> None:
    """Keys come from the environment only: the command line, which any process may read, never holds one."""
    rows = [{"id": "r1", "query": "q", "tools": [_tool("peek")], "answers": [{"name": "peek", "arguments": {"city": "Oslo"}}]}]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    command = ["exec-check", str(source), "--functions", str(PRYING), "--max-result-chars", "1000000"]
    ran = apigen_process(command, APIGEN_API_KEY=KEY)
    assert ran.returncode == 0, ran.stderr
    (row,) = [json.loads(line) for line in ran.stdout.splitlines()]
    seen = row["execution_result"][0]["result"]
    assert len(_apigens_environment(seen)) == 1
    assert KEY not in json.dumps(seen)


@linux_only
def test_an_mcp_server_reading_apigens_environment_finds_no_key(tmp_path: Path) -> None:
    """The server runs below a subreaper of apigen's: neither can read apigen's environment, and the server gets no key."""
    definition = {"name": "pry", "parameters": {"type": "object", "properties": {}}, "mcp": {"server": "spy", "tool": "pry"}}
    source = write_jsonl(
        tmp_path / "rows.jsonl",
        [{"id": "r1", "query": "q", "tools": [definition], "answers": [{"name": "pry", "arguments": {}}]}],
    )
    server = f"spy={sys.executable} {PROJECT / 'tests' / 'mcp_hostile_server.py'}"
    command = ["exec-check", str(source), "--mcp", server, "--max-result-chars", "1000000"]
    ran = apigen_process(command, APIGEN_API_KEY=KEY, DATABASE_URL=DATABASE_URL)
    assert ran.returncode == 0, ran.stderr
    (row,) = [json.loads(line) for line in ran.stdout.splitlines()]
    seen = row["execution_result"][0]["result"]
    assert [text[:16] for text in _apigens_environment(seen)] == ["PermissionError:"], seen
    assert KEY not in json.dumps(seen) and "hunter2-db-pass" not in json.dumps(seen)


def _as_an_ordinary_user() -> list[str]:
    """A command prefix that runs apigen without root's capabilities, as an ordinary user runs it.

    Root reads any process's ``/proc`` files, dumpable or not (and user code is refused
    apigen's only because apigen holds capabilities the worker gave up); without them, only
    apigen's own not-dumpable mark keeps its environment from code of the same user.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("runs as root, and without setpriv cannot drop root's capabilities")
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]


@linux_only
def test_debugging_does_not_open_apigens_environment_to_user_code(tmp_path: Path) -> None:
    """``APIGEN_DEBUG=1`` shows tracebacks and nothing more: apigen stays not dumpable, so a function still reads no key."""
    rows = [{"id": "r1", "query": "q", "tools": [_tool("peek")], "answers": [{"name": "peek", "arguments": {"city": "Oslo"}}]}]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    command = [
        *_as_an_ordinary_user(),
        *APIGEN,
        "exec-check",
        str(source),
        "--functions",
        str(PRYING),
        "--max-result-chars",
        "1000000",
    ]
    ran = subprocess.run(command, env=cli_env(APIGEN_API_KEY=KEY, APIGEN_DEBUG="1"), capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    (row,) = [json.loads(line) for line in ran.stdout.splitlines()]
    seen = row["execution_result"][0]["result"]
    assert [text[:16] for text in _apigens_environment(seen)] == ["PermissionError:"], seen
    assert KEY not in json.dumps(seen)
