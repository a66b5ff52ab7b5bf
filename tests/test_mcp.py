"""MCP through the real CLI: `library from-mcp` and exec-check's `--mcp`/`--mcp-url`, against
real MCP servers (tests/mcp_test_server.py, written with the SDK) over stdio and streamable HTTP."""

from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.library.loader import load_library

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl
from .doc_pages import page_with

SERVER_SCRIPT = str(Path(__file__).with_name("mcp_test_server.py"))
STDIO = shlex.join([sys.executable, SERVER_SCRIPT])


def mcp_row(row_id: str, tool: str, server: str = "tests", **arguments: Any) -> dict[str, Any]:
    definition = {
        "name": tool,
        "description": "d",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": True},
        "mcp": {"server": server, "tool": tool},
    }
    return {"id": row_id, "query": f"run {tool}", "tools": [definition], "answers": [{"name": tool, "arguments": arguments}]}


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The test server over streamable HTTP on 127.0.0.1; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, SERVER_SCRIPT, "--http"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=60)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("READY "):
        process.kill()
        process.wait()
        process.stdout.close()
        pytest.fail(f"the HTTP MCP server did not start: {line!r}")
    try:
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


# --- library from-mcp -------------------------------------------------------------------


def test_from_mcp_over_stdio_writes_one_library_entry_per_tool(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "library", "from-mcp", "--name", "tests", "--", sys.executable, SERVER_SCRIPT)
    assert result.exit_code == 0, result.stderr
    entries = parse_stdout(result.stdout)
    assert [entry["name"] for entry in entries] == [
        "add",
        "shout",
        "lookup",
        "read_query",
        "environment",
        "picture",
        "hang",
        "overlap",
        "die",
    ]
    add = entries[0]
    assert add["description"] == "Add two integers."
    assert add["mcp"] == {"server": "tests", "tool": "add"}
    assert add["category"] == "tests"
    assert add["parameters"]["required"] == ["a", "b"]
    assert add["parameters"]["properties"]["a"]["type"] == "integer"
    assert all("command" not in entry["mcp"] and set(entry["mcp"]) == {"server", "tool"} for entry in entries)
    assert (
        result.stderr.strip()
        == f"library from-mcp: 9 tools of MCP server `tests`; run them with `--mcp tests={shlex.quote(STDIO)}`"
    )
    # The library loader reads it, and the model is never shown the binding.
    library = write_jsonl(tmp_path / "tools.jsonl", entries)
    apis = load_library(str(library))
    assert [api.name for api in apis][:2] == ["add", "shout"]
    assert "mcp" not in apis[0].shown_definition and apis[0].row_definition["mcp"] == {"server": "tests", "tool": "add"}


def test_from_mcp_over_http_and_to_a_file(runner: CliRunner, http_server: str, tmp_path: Path) -> None:
    out = tmp_path / "remote.jsonl"
    result = invoke(runner, "library", "from-mcp", "--url", http_server, "--name", "remote", "--category", "misc", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    entries = read_jsonl(out)
    assert len(entries) == 9
    assert {entry["category"] for entry in entries} == {"misc"}
    assert entries[2]["mcp"] == {"server": "remote", "tool": "lookup"}


def test_from_mcp_names_the_server_after_its_script_by_default(runner: CliRunner) -> None:
    result = invoke(runner, "library", "from-mcp", "--", sys.executable, SERVER_SCRIPT)
    assert result.exit_code == 0, result.stderr
    assert parse_stdout(result.stdout)[0]["mcp"] == {"server": "mcp_test_server", "tool": "add"}


def test_from_mcp_without_a_server_or_with_both_is_an_error(runner: CliRunner) -> None:
    neither = invoke(runner, "library", "from-mcp")
    assert neither.exit_code == 2
    assert neither.stderr.startswith("error: no MCP server given\n\nhint: e.g. `apigen library from-mcp -- python")
    both = invoke(runner, "library", "from-mcp", "--url", "http://127.0.0.1:9/mcp", "--", "python", "x.py")
    assert both.exit_code == 2
    assert both.stderr.startswith("error: give either the command that starts the MCP server (after `--`) or `--url`, not both")


def test_from_mcp_with_a_server_that_cannot_start_says_why(runner: CliRunner) -> None:
    result = invoke(runner, "library", "from-mcp", "--name", "broken", "--", sys.executable, SERVER_SCRIPT, "--fail-start")
    assert result.exit_code == 2
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: the MCP server `broken` (`{STDIO} --fail-start`) could not start: it exited")
    assert first.endswith("; its stderr ends: cannot start: no configuration")
    assert "hint: check that" in result.stderr


def test_from_mcp_with_a_server_that_never_answers_gives_up_after_the_timeout(runner: CliRunner) -> None:
    silent = [sys.executable, "-c", "import time; time.sleep(600)"]
    result = invoke(runner, "library", "from-mcp", "--name", "silent", "--timeout", "1", "--", *silent)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error: the MCP server `silent` (`{shlex.join(silent)}`) could not start: it did not finish the MCP handshake within 1 s"
    )


def test_from_mcp_with_a_missing_program_or_an_unreachable_url(runner: CliRunner) -> None:
    missing = invoke(runner, "library", "from-mcp", "--", "no-such-mcp-server-program")
    assert missing.exit_code == 2
    assert missing.stderr.startswith(
        "error: the MCP server `no-such-mcp-server-program` (`no-such-mcp-server-program`) could not start"
    )
    nobody = invoke(runner, "library", "from-mcp", "--url", "http://127.0.0.1:9/mcp", "--timeout", "5")
    assert nobody.exit_code == 2
    assert nobody.stderr.startswith("error: the MCP server `mcp` (`http://127.0.0.1:9/mcp`) could not be reached: ")
    assert "hint: check that an MCP server answers at `http://127.0.0.1:9/mcp`" in nobody.stderr


# --- exec-check -------------------------------------------------------------------------


def _exec(runner: CliRunner, rows: Path, *options: str) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    rejects = rows.with_name("rejects.jsonl")
    result = invoke(runner, "exec-check", str(rows), "--rejects", str(rejects), *options)
    kept = parse_stdout(result.stdout) if result.exit_code == 0 else []
    return result, kept, read_jsonl(rejects) if rejects.exists() else []


def test_exec_check_calls_tools_through_a_stdio_server(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    monkeypatch.setenv("SERVICE_API_KEY", "sk-never-leaves")
    monkeypatch.setenv("PASSED_TOKEN", "tok-passed-on-purpose")
    rows = [
        mcp_row("add", "add", a=2, b=3),
        mcp_row("shout", "shout", text="hi"),
        mcp_row("lookup", "lookup", key="two"),
        mcp_row("missing-key", "lookup", key="zzz"),
        mcp_row("picture", "picture"),
        mcp_row("plain-env", "environment", name="PLAIN_SETTING"),
        mcp_row("secret-env", "environment", name="SERVICE_API_KEY"),
        mcp_row("passed-env", "environment", name="PASSED_TOKEN"),
        mcp_row("no-such-tool", "teleport"),
        mcp_row("bad-arguments", "add", a="two", b=3),
        mcp_row("other-server", "add", server="elsewhere", a=1, b=1),
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result, kept, rejected = _exec(runner, source, "--mcp", f"tests={STDIO}", "--pass-env", "PASSED_TOKEN")
    assert result.exit_code == 0, result.stderr
    results = {row["id"]: row["execution_result"][0]["result"] for row in kept}
    assert results == {
        "add": {"result": 5},
        "shout": "HI",
        "lookup": {"key_length": 3, "value": 2},
        "picture": "[image image/png, 4 bytes]",
        "plain-env": {"result": "unset"},  # only the base variables (PATH, HOME, LANG...) reach the server...
        "secret-env": {"result": "unset"},
        "passed-env": {"result": "***"},  # ...unless passed, and then their values never reach a row
    }
    reasons = {row["id"]: row["reason"] for row in rejected}
    assert reasons == {
        "missing-key": "mcp_tool_error",
        "no-such-tool": "mcp_tool_error",
        "bad-arguments": "mcp_tool_error",
        "other-server": "mcp_server_unknown",
    }
    details = {row["id"]: row["reason_detail"] for row in rejected}
    assert (
        details["missing-key"]
        == "call 1 `lookup`: MCP server `tests` answered that `lookup` failed: Error executing tool lookup: no such key: zzz"
    )
    assert "Unknown tool: teleport" in details["no-such-tool"]
    assert details["other-server"].startswith(
        "call 1 `add`: `add` is bound to the MCP server `elsewhere`, which was not given on the command line"
    )
    assert "`--mcp elsewhere=COMMAND`" in details["other-server"]
    assert len(kept) + len(rejected) == len(rows)
    assert result.stderr.strip() == "exec-check: 7 passed, 4 rejected (mcp_tool_error 3, mcp_server_unknown 1)"


def test_exec_check_through_a_streamable_http_server(runner: CliRunner, http_server: str, tmp_path: Path) -> None:
    rows = [mcp_row("add", "add", server="web", a=40, b=2), mcp_row("bad", "lookup", server="web", key="nope")]
    result, kept, rejected = _exec(runner, write_jsonl(tmp_path / "rows.jsonl", rows), "--mcp-url", f"web={http_server}")
    assert result.exit_code == 0, result.stderr
    assert [(row["id"], row["execution_result"]) for row in kept] == [
        ("add", [{"name": "add", "ok": True, "result": {"result": 42}}])
    ]
    [bad] = rejected
    assert bad["execution_result"][0]["error"] == {
        "type": "McpToolError",
        "message": "MCP server `web` answered that `lookup` failed: Error executing tool lookup: no such key: nope",
        "code": "mcp_tool_error",
    }


def test_a_tool_that_answers_an_error_as_plain_text_fails_its_call(runner: CliRunner, tmp_path: Path) -> None:
    """mcp-server-sqlite answers `Database error: ...` as text with isError false: the call failed all the same."""
    rows = [
        mcp_row("missing-table", "read_query", query="SELECT * FROM orders"),
        mcp_row("found", "read_query", query="SELECT * FROM users"),
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result, kept, rejected = _exec(runner, source, "--mcp", f"tests={STDIO}")
    assert result.exit_code == 0, result.stderr
    assert [row["id"] for row in kept] == ["found"]
    [failed] = rejected
    assert failed["reason"] == "error_result"
    assert failed["reason_detail"] == (
        'call 1 `read_query`: returned an error: "Database error: no such table: orders" '
        "(its text reads as an error (the built-in rule; `--no-error-shaped` turns it off))"
    )
    assert failed["execution_result"][0]["result"] == "Database error: no such table: orders"
    assert result.stderr.strip() == "exec-check: 1 passed, 1 rejected (error_result 1)"

    # The rule can be turned off, and replaced by the user's own pattern.
    result, kept, rejected = _exec(runner, source, "--mcp", f"tests={STDIO}", "--no-error-shaped")
    assert (len(kept), rejected) == (2, [])
    result, kept, rejected = _exec(
        runner, source, "--mcp", f"tests={STDIO}", "--no-error-shaped", "--error-pattern", "(?i)^database error"
    )
    assert [row["id"] for row in kept] == ["found"]
    assert rejected[0]["reason_detail"].endswith("(its text matches `--error-pattern (?i)^database error`)")


def test_a_call_past_the_timeout_is_rejected_and_the_session_goes_on(runner: CliRunner, tmp_path: Path) -> None:
    rows = [mcp_row("slow", "hang", seconds=600), mcp_row("after", "add", a=1, b=1), mcp_row("quick", "hang", seconds=0)]
    result, kept, rejected = _exec(
        runner, write_jsonl(tmp_path / "rows.jsonl", rows), "--mcp", f"tests={STDIO}", "--exec-timeout", "0.5"
    )
    assert result.exit_code == 0, result.stderr
    assert [row["id"] for row in kept] == ["after", "quick"]
    [slow] = rejected
    assert (slow["id"], slow["reason"]) == ("slow", "timeout")
    assert (
        slow["reason_detail"]
        == "call 1 `hang`: MCP server `tests` did not answer `hang` within the 0.5 s timeout; the call was cancelled"
    )


def test_a_server_that_exits_costs_its_call_and_is_started_again(runner: CliRunner, tmp_path: Path) -> None:
    rows = [mcp_row("first", "add", a=1, b=2), mcp_row("fatal", "die"), mcp_row("later", "add", a=3, b=4)]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    # One call in flight at a time, so that `later` is sent after the server died.
    result, kept, rejected = _exec(runner, source, "--mcp", f"tests={STDIO}", "--mcp-concurrency", "1")
    assert result.exit_code == 0, result.stderr
    assert [(row["id"], row["execution_result"][0]["result"]) for row in kept] == [
        ("first", {"result": 3}),
        ("later", {"result": 7}),
    ]
    [fatal] = rejected
    assert (fatal["id"], fatal["reason"]) == ("fatal", "mcp_server_exited")
    assert fatal["reason_detail"] == (
        "call 1 `die`: MCP server `tests` is gone (it exited or closed the connection) before `die` returned; "
        "its stderr ends: the server is about to exit"
    )


def test_a_server_that_dies_on_every_call_is_started_again_three_times_then_no_more(runner: CliRunner, tmp_path: Path) -> None:
    rows = [mcp_row(f"die-{n}", "die") for n in range(6)] + [mcp_row("add", "add", a=1, b=1)]
    result, kept, rejected = _exec(
        runner, write_jsonl(tmp_path / "rows.jsonl", rows), "--mcp", f"tests={STDIO}", "--mcp-concurrency", "1"
    )
    assert result.exit_code == 0, result.stderr
    assert kept == []
    assert [row["id"] for row in rejected] == [row["id"] for row in rows]
    assert {row["reason"] for row in rejected} == {"mcp_server_exited"}
    details = [row["reason_detail"] for row in rejected]
    assert all("is gone (it exited or closed the connection) before `die` returned" in text for text in details[:4])
    assert details[4].endswith(
        "is gone and was not started again (it was restarted 3 times, the most a run allows), so `die` was not sent; "
        "its stderr ends: the server is about to exit"
    )
    assert "so `add` was not sent" in details[6]


def test_a_server_that_cannot_start_stops_exec_check_before_any_row(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [mcp_row("add", "add", a=1, b=2)])
    result, kept, rejected = _exec(runner, source, "--mcp", f"tests={STDIO} --fail-start")
    assert result.exit_code == 2
    assert result.stdout == "" and rejected == []
    assert result.stderr.startswith(f"error: the MCP server `tests` (`{STDIO} --fail-start`) could not start: it exited")


def test_rows_only_name_servers_a_binding_with_a_command_is_rejected(runner: CliRunner, tmp_path: Path) -> None:
    row = mcp_row("sneaky", "add", a=1, b=2)
    row["tools"][0]["mcp"]["command"] = "rm -rf ~"
    unbound = mcp_row("unbound", "add", a=1, b=2)
    result, kept, rejected = _exec(runner, write_jsonl(tmp_path / "rows.jsonl", [row, unbound]))
    assert result.exit_code == 0, result.stderr
    assert kept == []
    assert [(r["id"], r["reason"]) for r in rejected] == [
        ("sneaky", "invalid_tool_definition"),
        ("unbound", "mcp_server_unknown"),
    ]
    assert "`mcp` has unknown key(s) `command`" in rejected[0]["reason_detail"]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--mcp", "  ", "error: `--mcp` is given an empty value"),
        ("--mcp-url", "http://127.0.0.1:9/mcp", "error: `--mcp-url http://127.0.0.1:9/mcp` should be NAME=URL"),
        ("--mcp", "b@d=python x.py", "error: `--mcp`: `b@d` is not a usable MCP server name"),
        ("--mcp-url", "web=ftp://host/mcp", "error: `--mcp-url`: `ftp://host/mcp` should start with http:// or https://"),
        ("--mcp", "a='unclosed", "error: `--mcp a='unclosed`: the command cannot be split into words: No closing quotation"),
    ],
)
def test_unusable_server_options_are_errors(runner: CliRunner, tmp_path: Path, flag: str, value: str, message: str) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [mcp_row("add", "add", a=1, b=2)])
    result = invoke(runner, "exec-check", str(source), flag, value)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == message


def test_a_server_name_given_twice_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [mcp_row("add", "add", a=1, b=2)])
    result = invoke(runner, "exec-check", str(source), "--mcp", f"tests={STDIO}", "--mcp-url", "tests=http://127.0.0.1:9/mcp")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the MCP server name `tests` is given twice")


def test_many_calls_share_one_session_and_all_come_back_in_order(runner: CliRunner, tmp_path: Path) -> None:
    rows = [mcp_row(f"r{i}", "add", a=i, b=i) for i in range(200)]
    result, kept, rejected = _exec(runner, write_jsonl(tmp_path / "rows.jsonl", rows), "--mcp", f"tests={STDIO}")
    assert result.exit_code == 0, result.stderr
    assert rejected == []
    assert [row["execution_result"][0]["result"]["result"] for row in kept] == [2 * i for i in range(200)]


# --- the README's MCP examples, run as a user would (a shell, `python` and `apigen` of this venv) -----


def _section(heading: str) -> str:
    return page_with(heading).split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def _blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``text`` opened with ```` ```language ```` (``""``: a bare fence)."""
    found: list[str] = []
    current: list[str] = []
    opened: str | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if opened is None:
                opened, current = line[3:].strip(), []
            else:
                if opened == language:
                    found.append("\n".join(current) + "\n")
                opened = None
        elif opened is not None:
            current.append(line)
    return found


def _shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The script in bash, in ``cwd`` with ``sample_data`` beside it, this venv's programs first on PATH."""
    if not (cwd / "sample_data").exists():
        (cwd / "sample_data").symlink_to(PROJECT / "sample_data")
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def test_the_readme_walkthrough_from_an_mcp_server_to_a_dataset_runs_as_shown(tmp_path: Path) -> None:
    section = _section("## From an MCP server to a dataset")
    first, second = _blocks(section, "sh")
    [table] = _blocks(section, "")
    done = _shell(first, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    for line in table.strip().splitlines():
        assert line in done.stderr.splitlines(), line  # the figures the README shows are the run's
    dataset = read_jsonl(tmp_path / "out/mcp/dataset.jsonl")
    rejected = read_jsonl(tmp_path / "out/mcp/rejects.jsonl")
    assert len(dataset) + len(rejected) == 40
    assert all(row["tools"][0]["mcp"]["server"] == "units" for row in dataset)
    assert any("no element with the symbol 'GOOGL' in this table" in row["reason_detail"] for row in rejected)
    done = _shell(second, tmp_path)
    assert done.returncode == 0, done.stderr
    assert read_jsonl(tmp_path / "out/mcp/piped.jsonl")
    assert read_jsonl(tmp_path / "out/mcp/quick.jsonl")
    assert len(read_jsonl(tmp_path / "out/mcp/quick.jsonl.tools.jsonl")) == 4


def test_the_readme_from_mcp_examples_run_and_the_line_shown_is_written(tmp_path: Path, http_server: str) -> None:
    section = _section("### `apigen library from-mcp`")
    [examples] = _blocks(section, "sh")
    [shown] = _blocks(section, "json")
    script = examples.replace("http://127.0.0.1:8000/mcp", http_server)
    done = _shell(script, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    library, checked = lines[:4], lines[4:]  # the first example prints the library, the third format-checked rows
    assert json.loads(shown) in library
    assert len(read_jsonl(tmp_path / "units.jsonl")) == 9
    assert [entry["mcp"]["server"] for entry in read_jsonl(tmp_path / "mcp_apis.jsonl")] == ["mcp_server"] * 4
    assert checked and all(row["keep_row_after_format_check"] is True for row in checked)
    assert re.search(r"^format-check: \d+ passed", done.stderr, flags=re.M)


def test_run_without_a_library_or_a_server_says_what_to_give(runner: CliRunner) -> None:
    result = invoke(runner, "run", "-m", "offline", "-J", "offline", "-n", "2")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: no API library given\n\nhint: pass the APIS file, or `--mcp NAME=COMMAND` / `--mcp-url NAME=URL` to use a server's tools"
    )


def test_run_with_a_library_and_a_server_executes_through_the_server(runner: CliRunner, tmp_path: Path) -> None:
    library = invoke(runner, "library", "from-mcp", "--name", "tests", "--", sys.executable, SERVER_SCRIPT)
    entries = [entry for entry in parse_stdout(library.stdout) if entry["name"] in ("add", "shout")]
    apis = write_jsonl(tmp_path / "apis.jsonl", entries)
    out, rejects = tmp_path / "dataset.jsonl", tmp_path / "rejects.jsonl"
    result = invoke(
        runner, "run", str(apis), "--mcp", f"tests={STDIO}", "-m", "offline", "-J", "offline", "-n", "12", "--seed", "3",
        "-o", str(out), "--rejects", str(rejects),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    kept, rejected = read_jsonl(out), read_jsonl(rejects)
    assert kept and len(kept) + len(rejected) == 12
    for row in kept:
        for call, entry in zip(row["answers"], row["execution_result"], strict=True):
            if call["name"] == "add":
                assert entry["result"] == {"result": call["arguments"]["a"] + call["arguments"]["b"]}
            else:
                assert entry["result"] == call["arguments"]["text"].upper()


def test_run_rejects_the_rows_whose_tool_answered_an_error_as_text(runner: CliRunner, tmp_path: Path) -> None:
    library = invoke(runner, "library", "from-mcp", "--name", "tests", "--", sys.executable, SERVER_SCRIPT)
    entries = [entry for entry in parse_stdout(library.stdout) if entry["name"] in ("add", "read_query")]
    apis = write_jsonl(tmp_path / "apis.jsonl", entries)

    def run(*options: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        out, rejects = tmp_path / "dataset.jsonl", tmp_path / "rejects.jsonl"
        result = invoke(
            runner, "run", str(apis), "--mcp", f"tests={STDIO}", "-m", "offline", "-J", "offline", "-n", "12",
            "--seed", "3", "--styles", "simple", "-O", "offline_error_rate=0", "-o", str(out), "--rejects", str(rejects),
            "--overwrite", *options,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        return read_jsonl(out), read_jsonl(rejects)

    def queried(row: dict[str, Any]) -> bool:
        return any(call["name"] == "read_query" for call in row["answers"])

    kept, rejected = run()
    failing = [row for row in rejected if queried(row)]
    assert failing and not any(queried(row) for row in kept) and kept
    assert {(row["rejected_by"], row["reason"]) for row in failing} == {("exec_check", "error_result")}
    # With the rule off the calls pass the execution check; the offline judge reads the results and says no.
    kept, rejected = run("--no-error-shaped")
    failing = [row for row in rejected if queried(row)]
    assert failing and not any(queried(row) for row in kept)
    assert {(row["rejected_by"], row["reason"]) for row in failing} == {("semantic_check", "semantic_mismatch")}
    assert all("failed: Database error: no such table" in row["thought"] for row in failing)


def test_messages_show_a_server_url_without_its_credentials() -> None:
    from apigen_cli.execution.mcp import parse_server

    server = parse_server("web=https://user:secret@host.example/mcp?token=abc", "--mcp-url")
    assert server.url == "https://user:secret@host.example/mcp?token=abc"  # used as given
    assert server.shown == "https://host.example/mcp"
    assert parse_server("python sample_data/mcp_server.py", "--mcp").name == "mcp_server"


def test_calls_in_flight_per_server_stay_within_mcp_concurrency(runner: CliRunner, tmp_path: Path) -> None:
    rows = [mcp_row(f"r{n}", "overlap", seconds=0.2) for n in range(12)]
    options = ("--mcp", f"tests={STDIO}", "--mcp-concurrency", "3")
    result, kept, rejected = _exec(runner, write_jsonl(tmp_path / "rows.jsonl", rows), *options)
    assert result.exit_code == 0, result.stderr
    most = [row["execution_result"][0]["result"]["result"] for row in kept]
    assert len(most) == 12 and rejected == []
    assert max(most) <= 3  # never more than --mcp-concurrency at once...
    assert max(most) >= 2  # ...and calls do overlap (12 calls of 0.2 s are all queued at once)


def test_the_run_report_s_wall_time_counts_the_servers_start(tmp_path: Path) -> None:
    """The wall time is the run's, setup included: a server that takes a second to start makes it at least that long."""
    server = tmp_path / "slow_start.py"
    server.write_text(
        "import runpy, time\n"
        "time.sleep(1.0)\n"
        f"runpy.run_path({str(PROJECT / 'sample_data' / 'mcp_server.py')!r}, run_name='__main__')\n"
    )
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "apigen_cli",
        "run",
        "--mcp",
        f"{sys.executable} {server}",
        "-m",
        "offline",
        "-J",
        "offline",
        "-n",
        "6",
    ]
    done = subprocess.run([*command, "-o", str(tmp_path / "out.jsonl"), "--report", str(report), "-q"], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["wall_seconds"] >= 1.0
