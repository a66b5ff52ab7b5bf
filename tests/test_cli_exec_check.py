"""`apigen exec-check` through the real CLI: in-process with CliRunner, and as a real shell pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl
from .doc_pages import page_with
from .json_http import JsonHandler, base_url, serving
from .processes import alive

LIBRARY = str(Path(__file__).parent / "fixtures" / "exec_library.py")


def call_row(row_id: str, function: str, **arguments: Any) -> dict[str, Any]:
    tool = {
        "name": function,
        "description": "d",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": True},
    }
    return {
        "id": row_id,
        "query": f"please run {function}",
        "tools": [tool],
        "answers": [{"name": function, "arguments": arguments}],
    }


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    rows = [call_row("ok-1", "add", a=1, b=2), call_row("bad", "fail", message="nope"), call_row("ok-2", "subtract", a=9, b=4)]
    return write_jsonl(tmp_path / "rows.jsonl", rows)


def test_kept_rows_go_to_stdout_and_rejects_to_their_file(runner: CliRunner, rows_file: Path, tmp_path: Path) -> None:
    rejects = tmp_path / "rejected.jsonl"
    result = invoke(runner, "exec-check", str(rows_file), "--functions", LIBRARY, "--rejects", str(rejects), "--workers", "2")
    assert result.exit_code == 0, result.stderr
    kept = parse_stdout(result.stdout)
    assert [row["id"] for row in kept] == ["ok-1", "ok-2"]
    assert [row["execution_result"][0]["result"] for row in kept] == [3, 5]
    assert all(row["keep_row_after_execution_check"] is True for row in kept)
    [rejected] = read_jsonl(rejects)
    assert (rejected["id"], rejected["rejected_by"], rejected["reason"]) == ("bad", "exec_check", "exception")
    assert result.stderr.strip() == "exec-check: 2 passed, 1 rejected (exception 1)"


def test_strict_exits_1_and_keep_rejected_keeps_them_flagged(runner: CliRunner, rows_file: Path) -> None:
    result = invoke(runner, "exec-check", str(rows_file), "--functions", LIBRARY, "--strict", "--keep-rejected", "-q")
    assert result.exit_code == 1
    assert result.stderr == ""
    rows = parse_stdout(result.stdout)
    assert [row["keep_row_after_execution_check"] for row in rows] == [True, False, True]


def test_stdin_is_read_by_default(runner: CliRunner, rows_file: Path) -> None:
    result = invoke(runner, "exec-check", "--functions", LIBRARY, "-q", input=rows_file.read_text())
    assert result.exit_code == 0 and len(parse_stdout(result.stdout)) == 2


def test_a_library_that_cannot_load_stops_before_any_row(runner: CliRunner, rows_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken_tools.py"
    broken.write_text("import json\n\ndef f(:\n")
    result = invoke(runner, "exec-check", str(rows_file), "--functions", str(broken))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"error: cannot load the function library `{broken}`: SyntaxError: invalid syntax ({broken}, line 3)"
    )
    assert "\n\nhint: check that `python " in result.stderr


def test_a_missing_library_is_an_error(runner: CliRunner, rows_file: Path) -> None:
    result = invoke(runner, "exec-check", str(rows_file), "--functions", "no_such_tools.py")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the function library `no_such_tools.py` does not exist\n\nhint: ")


def test_a_library_that_runs_no_call_at_all_is_an_error_and_the_rejects_are_kept(runner: CliRunner, tmp_path: Path) -> None:
    rows = [call_row("a", "convert_currency", amount=1), call_row("b", "mean", numbers=[1]), call_row("c", "mean", numbers=[2])]
    rows_file = write_jsonl(tmp_path / "rows.jsonl", rows)
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(runner, "exec-check", str(rows_file), "--functions", LIBRARY, "--rejects", str(rejects))
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"error: no call of the 3 rows could run: `{LIBRARY}` defines none of the functions they call: "
        "`mean` (2), `convert_currency` (1); every row was rejected as `no_implementation`"
        f"; what was written is kept in `{rejects}.partial` (3 rows); `{rejects}` is left as it was"
    )
    assert lines[-1].startswith("hint: pass `--functions` the Python library that defines them")
    assert [row["reason"] for row in read_jsonl(f"{rejects}.partial")] == ["no_implementation"] * 3  # rejected rows stay data
    bare = invoke(runner, "exec-check", str(rows_file), "-q")
    assert bare.exit_code == 2
    assert "no Python library was given and their tools have no `http` or `mcp` binding" in bare.stderr


def test_one_call_that_runs_is_enough_for_the_others_to_be_plain_rejects(runner: CliRunner, tmp_path: Path) -> None:
    rows = [call_row("a", "convert_currency", amount=1), call_row("b", "fail", message="nope")]
    result = invoke(runner, "exec-check", str(write_jsonl(tmp_path / "rows.jsonl", rows)), "--functions", LIBRARY)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "exec-check: 0 passed, 2 rejected (no_implementation 1, exception 1)"


def test_input_that_skipped_format_check_altogether_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    raw = [{"id": f"g{n}", "query": "add 1 and 2", "raw_output": '[{"name": "add"}]'} for n in range(3)]  # as generate wrote them
    source = write_jsonl(tmp_path / "generated.jsonl", raw)
    result = invoke(runner, "exec-check", str(source), "--functions", LIBRARY)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        f"error: none of the 3 rows of `{source}` has been through `format-check`: every one was rejected as `not_format_checked`"
    )


def test_an_api_library_given_for_rows_is_named_as_such(runner: CliRunner) -> None:
    apis = PROJECT / "sample_data" / "apis.jsonl"
    for command in (["format-check"], ["exec-check", "--functions", LIBRARY], ["dedup"], ["export", "--format", "openai"]):
        result = invoke(runner, *command, str(apis))
        assert result.exit_code == 2 and result.stdout == "", command
        assert result.stderr.startswith(f"error: row 1 of `{apis}` is an API definition, not a row"), result.stderr


def test_conflicting_destinations_are_refused_before_workers_start(runner: CliRunner, rows_file: Path, tmp_path: Path) -> None:
    result = invoke(
        runner,
        "exec-check",
        str(rows_file),
        "--functions",
        "no_such_tools.py",
        "--rejects",
        str(tmp_path / "r"),
        "--keep-rejected",
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `--rejects` and `--keep-rejected` both say where rejected rows go")


def test_a_bad_policy_value_is_a_usage_error(runner: CliRunner, rows_file: Path) -> None:
    result = invoke(runner, "exec-check", str(rows_file), "--functions", LIBRARY, "--empty-result", "maybe")
    assert result.exit_code == 2
    assert 'error: `--empty-result` is "maybe", not one of: pass, fail' in result.stderr


def test_policy_flags_reach_the_stage(runner: CliRunner, tmp_path: Path) -> None:
    rows = write_jsonl(tmp_path / "rows.jsonl", [call_row("empty", "empty_list"), call_row("error", "error_payload")])
    default = invoke(runner, "exec-check", str(rows), "--functions", LIBRARY, "--keep-rejected", "-q")
    assert [row.get("reason") for row in parse_stdout(default.stdout)] == [None, "error_result"]
    flipped = invoke(
        runner,
        "exec-check",
        str(rows),
        "--functions",
        LIBRARY,
        "--keep-rejected",
        "-q",
        "--empty-result",
        "fail",
        "--error-result",
        "pass",
    )
    assert [row.get("reason") for row in parse_stdout(flipped.stdout)] == ["empty_result", None]


def test_timeout_and_result_size_flags(runner: CliRunner, tmp_path: Path) -> None:
    rows = write_jsonl(tmp_path / "rows.jsonl", [call_row("loop", "loop_forever"), call_row("long", "long_text", size=500)])
    result = invoke(
        runner,
        "exec-check",
        str(rows),
        "--functions",
        LIBRARY,
        "--exec-timeout",
        "0.5",
        "--max-result-chars",
        "100",
        "--keep-rejected",
    )
    looped, long = parse_stdout(result.stdout)
    assert looped["reason"] == "timeout" and "0.5 s timeout" in looped["reason_detail"]
    assert long["execution_result"][0]["truncated"] is True
    assert result.stderr.strip() == "exec-check: 1 passed, 1 rejected (timeout 1)"


def test_pass_env_lets_a_secret_through(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_TOKEN", "tok-1")
    rows = write_jsonl(tmp_path / "rows.jsonl", [call_row("env", "getenv", name="SERVICE_TOKEN")])
    hidden = invoke(runner, "exec-check", str(rows), "--functions", LIBRARY, "-q")
    assert parse_stdout(hidden.stdout)[0]["execution_result"][0]["result"] is None
    passed = invoke(runner, "exec-check", str(rows), "--functions", LIBRARY, "-q", "--pass-env", "SERVICE_TOKEN")
    assert parse_stdout(passed.stdout)[0]["execution_result"][0]["result"] == "tok-1"


def test_verbose_shows_what_functions_print_on_stderr(runner: CliRunner, tmp_path: Path) -> None:
    rows = write_jsonl(
        tmp_path / "rows.jsonl", [call_row("chatty", "chatty", n=4), call_row("wait", "sleep_then", seconds=0.2, value=1)]
    )
    result = invoke(runner, "exec-check", str(rows), "--functions", LIBRARY, "--workers", "1", "-v")
    assert "function output: CHATTY OUTPUT 4" in result.stderr
    assert "CHATTY" not in result.stdout
    quiet = invoke(runner, "exec-check", str(rows), "--functions", LIBRARY, "--workers", "1")
    assert "CHATTY" not in quiet.stderr + quiet.stdout


class _Api(JsonHandler):
    def do_GET(self) -> None:
        self.send_json(200, {"city": self.path.rsplit("/", 1)[-1], "temperature_c": 21})


@pytest.fixture
def api() -> Iterator[str]:
    with serving(HTTPServer(("127.0.0.1", 0), _Api)) as server:
        yield base_url(server)


def test_functions_may_be_omitted_when_every_tool_is_rest(
    runner: CliRunner, api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEATHER_KEY", "k")
    tool = {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "http": {"url": api + "/weather/{city}", "headers": {"X-Key": "$WEATHER_KEY"}},
    }
    rows = write_jsonl(
        tmp_path / "rows.jsonl",
        [{"id": "w", "query": "q", "tools": [tool], "answers": [{"name": "weather", "arguments": {"city": "Oslo"}}]}],
    )
    result = invoke(runner, "exec-check", str(rows), "--pass-env", "WEATHER_KEY")
    assert result.exit_code == 0, result.stderr
    assert parse_stdout(result.stdout)[0]["execution_result"] == [
        {"name": "weather", "ok": True, "result": {"city": "Oslo", "temperature_c": 21}}
    ]
    monkeypatch.delenv("WEATHER_KEY")
    missing = invoke(runner, "exec-check", str(rows), "--pass-env", "WEATHER_KEY")
    assert missing.exit_code == 2
    assert missing.stderr.startswith(
        "error: the `http` binding of tool `weather` uses `$WEATHER_KEY` in header `X-Key`, which is not set"
    )


def test_exec_check_is_documented(runner: CliRunner) -> None:
    assert invoke(runner, "exec-check", "-h").exit_code == 0
    readme = page_with("### `apigen exec-check`")
    for flag in (
        "--functions",
        "--workers",
        "--exec-timeout",
        "--memory-mb",
        "--max-result-chars",
        "--empty-result",
        "--error-result",
        "--pass-env",
        "--http-timeout",
        "--http-concurrency",
        "--http-retries",
    ):
        assert f"`{flag}" in readme, flag


# --- the real shell pipe ----------------------------------------------------------------


def _apigen(*args: str) -> str:
    return " ".join([f"'{sys.executable}'", "-m", "apigen_cli", *args])


def test_a_real_pipe_from_format_check_keeps_stdout_pure_jsonl(tmp_path: Path) -> None:
    rows = [
        call_row("chatty", "chatty", n=1),
        call_row("loop", "loop_forever"),
        call_row("segfault", "segfault"),
        call_row("exit", "hard_exit"),
        call_row("builtin", "eval", source="1+1"),
        call_row("imported", "system", command="echo pwned"),
        call_row("last", "add", a=40, b=2),
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    rejects = tmp_path / "rejected.jsonl"
    exec_check = _apigen("exec-check", "--functions", LIBRARY, "--exec-timeout", "1", "--rejects", str(rejects))
    pipe = f"{_apigen('format-check', str(source))} | {exec_check}"
    done = subprocess.run(pipe, shell=True, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    kept = [json.loads(line) for line in done.stdout.splitlines()]  # every line is JSON: nothing printed leaked in
    assert [row["id"] for row in kept] == ["chatty", "last"]
    assert "CHATTY" not in done.stdout and "pwned" not in done.stdout
    reasons = {row["id"]: row["reason"] for row in read_jsonl(rejects)}
    assert reasons == {
        "loop": "timeout",
        "segfault": "crashed",
        "exit": "crashed",
        "builtin": "no_implementation",
        "imported": "no_implementation",
    }
    assert done.stderr.strip().splitlines()[-1] == "exec-check: 2 passed, 5 rejected (crashed 2, no_implementation 2, timeout 1)"


def test_the_sample_examples_pass_both_checks_through_the_pipe() -> None:
    pipe = (
        f"{_apigen('format-check', 'sample_data/examples.jsonl', '--strict', '-q')} | "
        f"{_apigen('exec-check', '--functions', 'sample_data/functions', '--strict')}"
    )
    done = subprocess.run(pipe, shell=True, capture_output=True, text=True, timeout=60, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(read_jsonl(PROJECT / "sample_data" / "examples.jsonl"))
    assert done.stderr.strip() == "exec-check: 10 passed, 0 rejected"


def _workers_of(pid: int) -> list[int]:
    """The worker processes a command started (their parent is the command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status and b"worker.py" in command and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc to find the workers")
def test_ctrl_c_stops_the_run_and_its_workers(tmp_path: Path) -> None:
    import signal
    import time

    marks = tmp_path / "running"
    marks.mkdir()
    rows = write_jsonl(tmp_path / "rows.jsonl", [call_row(str(n), "loop_once_marked", folder=str(marks)) for n in range(3)])
    command = [sys.executable, "-m", "apigen_cli", "exec-check", str(rows), "--functions", LIBRARY, "--exec-timeout", "60"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        workers = _workers_of(process.pid)
        assert len(workers) == 2 and sorted(int(mark.name) for mark in marks.iterdir()) == sorted(workers)  # both loop now
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert out == ""
    assert err.strip() == "error: interrupted; every line already written is a complete row"
    assert not [pid for pid in workers if alive(pid)]
