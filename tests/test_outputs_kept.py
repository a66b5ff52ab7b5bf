"""No command destroys what it cannot replace: a file is replaced only when the command ends well.

For every command that writes a file, an earlier file at its path survives a failure before
the first row (a refused key, a first line that is not JSON, an unwritable folder), rows
written before a later failure or an interrupt are kept as `FILE.partial` under the name the
error gives, and a command that ends well replaces the file. `apigen run` writes its resumable
files in place, as rows come: it empties an earlier file only on its first row.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from .conftest import invoke, read_jsonl, write_jsonl
from .llm_server import LLMServer, Received, Reply
from .run_helpers import APIS, FUNCTIONS, SAMPLE, generate_args, held_apigen, run_args, saved_state, wait_until
from .scripted_model import is_judge, pipeline_handler

EARLIER = b'{"id": "earlier", "note": "a row an earlier command wrote, perhaps paid for"}\n'
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather now in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def executed_row(n: int) -> dict[str, Any]:
    """A row that passed exec-check: what semantic-check sends to its judge."""
    return {
        "id": f"r{n}",
        "query": "What's the weather in Oslo?",
        "tools": TOOLS,
        "answers": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
        "execution_result": [{"name": "get_weather", "ok": True, "result": {"temp_c": 18}}],
        "keep_row_after_execution_check": True,
    }


def earlier_files(folder: Path, *names: str) -> list[Path]:
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(EARLIER)
    return paths


def leftovers(folder: Path) -> list[str]:
    """Temporaries and partials a command left beside its files."""
    return sorted(path.name for path in folder.iterdir() if ".part-" in path.name or ".partial" in path.name)


def assert_left_as_they_were(*paths: Path) -> None:
    for path in paths:
        assert path.read_bytes() == EARLIER, path


@pytest.fixture
def refusing_server() -> Iterator[LLMServer]:
    """An endpoint that refuses the key: every chat request is a 401."""
    with LLMServer(handler=lambda _request: Reply.error(401, "invalid api key")) as server:
        yield server


@pytest.fixture
def bad_first_line(tmp_path: Path) -> Path:
    source = tmp_path / "input.jsonl"
    source.write_text("this is not JSON\n" + json.dumps(executed_row(1)) + "\n")
    return source


# --- a failure before the first row leaves every file as it was ---------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["format-check"],
        ["exec-check", "--functions", FUNCTIONS],
        ["dedup"],
        ["negatives", "--rate", "0.5"],
        ["semantic-check", "-J", "offline"],
    ],
    ids=lambda command: command[0],
)
def test_a_stage_whose_first_line_is_not_json_leaves_its_files(
    runner: CliRunner, tmp_path: Path, bad_first_line: Path, command: list[str]
) -> None:
    out, rejects = earlier_files(tmp_path, "out.jsonl", "rejects.jsonl")
    takes_rejects = command[0] != "negatives"
    args = [*command, str(bad_first_line), "-o", str(out), *(["--rejects", str(rejects)] if takes_rejects else [])]
    result = invoke(runner, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: line 1 of `{bad_first_line}` is not valid JSON")
    assert "kept in" not in result.stderr  # nothing was written, so nothing is kept
    assert_left_as_they_were(out, rejects)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["openai", "xlam"])
def test_an_export_whose_first_line_is_not_json_leaves_its_file(
    runner: CliRunner, tmp_path: Path, bad_first_line: Path, fmt: str
) -> None:
    [out] = earlier_files(tmp_path, "train.json")
    result = invoke(runner, "export", str(bad_first_line), "--format", fmt, "-o", str(out))
    assert result.exit_code == 2 and result.stderr.startswith(f"error: line 1 of `{bad_first_line}` is not valid JSON")
    assert_left_as_they_were(out)
    assert leftovers(tmp_path) == []


def test_generate_with_a_refused_key_leaves_its_files(runner: CliRunner, tmp_path: Path, refusing_server: LLMServer) -> None:
    out, rejects = earlier_files(tmp_path, "generated.jsonl", "failed.jsonl")
    result = invoke(runner, *generate_args(server=refusing_server, count=6, out=out, rejects=rejects))
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "401" in result.stderr.splitlines()[0]
    assert_left_as_they_were(out, rejects)
    assert leftovers(tmp_path) == []


def test_semantic_check_with_a_refused_key_leaves_its_files(
    runner: CliRunner, tmp_path: Path, refusing_server: LLMServer
) -> None:
    source = write_jsonl(tmp_path / "executed.jsonl", [executed_row(n) for n in range(5)])
    out, rejects = earlier_files(tmp_path, "dataset.jsonl", "judged_out.jsonl")
    result = invoke(
        runner, "semantic-check", str(source), "--base-url", refusing_server.url, "-J", "test-model",
        "-o", str(out), "--rejects", str(rejects),
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "401" in result.stderr.splitlines()[0]
    assert_left_as_they_were(out, rejects)
    assert leftovers(tmp_path) == []


def test_run_overwrite_with_a_refused_key_leaves_its_files(runner: CliRunner, tmp_path: Path, refusing_server: LLMServer) -> None:
    out, rejects = earlier_files(tmp_path, "dataset.jsonl", "rejects.jsonl")
    report = tmp_path / "report.json"
    report.write_bytes(EARLIER)
    args = run_args("--overwrite", server=refusing_server, count=6, out=out, rejects=rejects, report=report)
    result = invoke(runner, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and "401" in result.stderr.splitlines()[0]
    assert_left_as_they_were(out, rejects)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "command",
    [
        ["library", "from-python", "absent_module_dir/", "-o", "OUT"],
        ["library", "from-openapi", "absent_spec.yaml", "-o", "OUT"],
        ["library", "from-toolbench", "absent_tools/", "-o", "OUT"],
        ["library", "merge", APIS, "absent.jsonl", "-o", "OUT"],
        ["library", "from-mcp", "-o", "OUT", "--timeout", "10", "--", "false"],  # a server that exits at once
    ],
    ids=lambda command: command[1],
)
def test_library_commands_that_fail_leave_their_files(runner: CliRunner, tmp_path: Path, command: list[str]) -> None:
    [out] = earlier_files(tmp_path, "apis.jsonl")
    failed = invoke(runner, *(str(out) if word == "OUT" else word for word in command))
    assert failed.exit_code == 2 and failed.stderr.startswith("error:")
    assert_left_as_they_were(out)
    assert leftovers(tmp_path) == []


def test_merge_that_fails_leaves_its_files(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects, report = earlier_files(tmp_path, "merged.jsonl", "merged_rejects.jsonl", "report.json")
    shard = write_jsonl(tmp_path / "shard-0.jsonl", [executed_row(1)])  # no run state beside it: not a shard
    args = ["merge", str(out), str(shard), "--rejects", str(rejects), "--report", str(report), "--overwrite"]
    result = invoke(runner, *args)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: `{shard}` has no run state beside it")
    assert_left_as_they_were(out, rejects, report)
    assert leftovers(tmp_path) == []


def test_report_that_fails_leaves_its_page_and_card(runner: CliRunner, tmp_path: Path) -> None:
    html, card = earlier_files(tmp_path, "report.html", "README.md")
    result = invoke(runner, "report", APIS, "--html", str(html), "--card", str(card))  # an API library, not rows
    assert result.exit_code == 2 and result.stderr.startswith("error:")
    assert_left_as_they_were(html, card)
    assert leftovers(tmp_path) == []


# --- a file that cannot be written is an error before any request --------------------------------


@pytest.mark.parametrize("command", ["generate", "run"])
def test_an_unwritable_output_is_an_error_before_any_request(runner: CliRunner, tmp_path: Path, command: str) -> None:
    (tmp_path / "a_file").write_text("not a folder\n")
    out = tmp_path / "a_file" / "out.jsonl"
    with LLMServer(handler=pipeline_handler) as server:
        make_args = generate_args if command == "generate" else run_args
        result = invoke(runner, *make_args(server=server, count=6, out=out))
        assert server.chat_requests() == []
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: `--output` cannot write `{out}`: `{tmp_path / 'a_file'}` is not a folder")


def test_an_unwritable_keep_file_is_an_error_before_any_call(runner: CliRunner, tmp_path: Path) -> None:
    keep = tmp_path / "folder"
    keep.mkdir()
    result = invoke(runner, "library", "check", APIS, "--functions", FUNCTIONS, "--keep", str(keep))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: `--keep` cannot write `{keep}`: it is a folder")
    assert "check:" not in result.stderr  # no API was called


# --- a failure after rows were written keeps them, and says where --------------------------------


def test_rows_written_before_a_bad_line_are_kept_as_partial(runner: CliRunner, tmp_path: Path) -> None:
    good = (SAMPLE / "rows.jsonl").read_text().splitlines()[:2]
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join([*good, "{not json"]) + "\n")
    (tmp_path / "checked.jsonl.partial").write_bytes(EARLIER)  # an earlier partial is never replaced
    [out] = earlier_files(tmp_path, "checked.jsonl")
    result = invoke(runner, "format-check", str(source), "-o", str(out))
    assert result.exit_code == 2
    partial = tmp_path / "checked.jsonl.partial-2"
    assert result.stderr.splitlines()[0].endswith(
        f"(2 rows were written before it); what was written is kept in `{partial}` (2 rows); `{out}` is left as it was"
    )
    assert_left_as_they_were(out, tmp_path / "checked.jsonl.partial")
    assert [row["id"] for row in read_jsonl(partial)] == [json.loads(line)["id"] for line in good]


def test_exec_check_that_could_run_no_call_replaces_nothing(runner: CliRunner, tmp_path: Path) -> None:
    """The stage ran to its end, but its result is an error (exit 2): the files are not replaced."""
    source = tmp_path / "checked.jsonl"
    assert invoke(runner, "format-check", str(SAMPLE / "rows.jsonl"), "-o", str(source)).exit_code == 0
    out, rejects = earlier_files(tmp_path, "executed.jsonl", "failed.jsonl")
    result = invoke(runner, "exec-check", str(source), "-o", str(out), "--rejects", str(rejects))  # no --functions
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("error:") and f"what was written is kept in `{rejects}.partial` (" in first
    assert_left_as_they_were(out, rejects)
    assert all(row["reason"] == "no_implementation" for row in read_jsonl(f"{rejects}.partial"))


# --- a command that ends well replaces the file ---------------------------------------------------


def test_a_command_that_ends_well_replaces_its_files(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects = earlier_files(tmp_path, "checked.jsonl", "rejected.jsonl")
    os.chmod(out, 0o640)
    result = invoke(runner, "format-check", str(SAMPLE / "rows.jsonl"), "-o", str(out), "--rejects", str(rejects))
    assert result.exit_code == 0, result.stderr
    assert EARLIER not in out.read_bytes() and read_jsonl(out)
    assert rejects.read_bytes() != EARLIER  # replaced, empty or not: the command ended
    assert os.stat(out).st_mode & 0o777 == 0o640  # the earlier file's permissions
    assert leftovers(tmp_path) == []


def test_generate_that_ends_well_replaces_its_file_through_a_link(runner: CliRunner, tmp_path: Path) -> None:
    [real] = earlier_files(tmp_path, "real.jsonl")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    with LLMServer(handler=pipeline_handler) as server:
        result = invoke(runner, *generate_args(server=server, count=6, seed=1, out=link))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and len(read_jsonl(real)) == 6
    assert leftovers(tmp_path) == []


def test_run_overwrite_that_ends_well_empties_both_earlier_files(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects = earlier_files(tmp_path, "dataset.jsonl", "rejects.jsonl")
    result = invoke(runner, *run_args("--overwrite", count=6, seed=1, out=out, rejects=rejects))
    assert result.exit_code == 0, result.stderr
    assert EARLIER not in out.read_bytes() and read_jsonl(out)
    assert EARLIER not in rejects.read_bytes()  # emptied with the output on the first row, rejects or not
    assert leftovers(tmp_path) == []


# --- an interrupt keeps what was written, under the name the message gives --------------------------


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _main_thread_waits(process: subprocess.Popen[bytes]) -> bool:
    """The child's main thread is asleep on a lock (a held request).

    Ctrl-C then lands there, not as a thread enters a lock, where CPython may turn it
    into "cannot release un-acquired lock".
    """
    return Path(f"/proc/{process.pid}/task/{process.pid}/wchan").read_text().startswith("futex")


def _state_has_a_finished_request(path: Path) -> bool:
    return path.exists() and bool(saved_state(path)["requests_done"] >= 1)  # a save never leaves half a state


def _stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGINT) -> str:
    """Send ``how`` and return what the child said on stderr, once it exits with 130."""
    process.send_signal(how)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    return err.decode().strip()


def _kept_message(partial: Path | str, rows: int, out: Path) -> str:
    return (
        "error: interrupted; every line already written is a complete row; "
        f"what was written is kept in `{partial}` ({rows} rows); `{out}` is left as it was"
    )


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_stage_keeps_its_rows_as_partial(tmp_path: Path, how: signal.Signals) -> None:
    """format-check reads a pipe the test holds open: it is stopped while it routes 1,000 rows or waits for more."""
    out, rejects = earlier_files(tmp_path, "checked.jsonl", "rejected.jsonl")
    row = (SAMPLE / "rows.jsonl").read_text().splitlines()[0]
    with held_apigen(["format-check", "-", "-o", str(out), "--rejects", str(rejects)], stdin=subprocess.PIPE) as process:
        assert process.stdin is not None
        process.stdin.write((row + "\n").encode() * 1000)
        process.stdin.flush()
        temporary = tmp_path / f"checked.jsonl.part-{process.pid}"
        wait_until(process, lambda: _lines(temporary) > 0, "rows in the temporary file")  # 1,000 rows: 489 or more come
        err = _stop(process, how)
    partial = Path(f"{out}.partial")
    kept = read_jsonl(partial)  # every line a whole row
    assert err == _kept_message(partial, len(kept), out)
    assert 0 < len(kept) <= 1000
    assert_left_as_they_were(out, rejects)  # the rejects got no row: nothing of them to keep
    assert leftovers(tmp_path) == ["checked.jsonl.partial"]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc to see the child wait")
def test_an_interrupted_generate_keeps_the_paid_rows(tmp_path: Path) -> None:
    """The server answers the first 60 requests and holds the rest: generate is stopped while it waits."""
    answered = threading.Semaphore(60)

    def answer_then_hold(request: Received) -> Reply:
        return pipeline_handler(request) if answered.acquire(blocking=False) else Reply.slow(3600)

    [out] = earlier_files(tmp_path, "generated.jsonl")
    with LLMServer(handler=answer_then_hold) as server:
        args = generate_args("--pairs-per-prompt", "10", server=server, count=2000, seed=1, concurrency=4, out=out)
        with held_apigen(args) as process:
            temporary = tmp_path / f"generated.jsonl.part-{process.pid}"
            wait_until(process, lambda: _lines(temporary) > 0, "rows in the temporary file")  # ~600 rows come
            # the 60 answered and the 4 held (--concurrency 4) are all it sends
            wait_until(process, lambda: server.count >= 64 and _main_thread_waits(process), "waiting on the held requests")
            err = _stop(process)
    partial = Path(f"{out}.partial")
    kept = read_jsonl(partial)
    assert err.splitlines()[-1] == _kept_message(partial, len(kept), out)
    assert 0 < len(kept) <= 600 and all(row["query"] for row in kept)
    assert_left_as_they_were(out)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc to see the child wait")
def test_an_interrupted_run_keeps_its_rows_in_place(tmp_path: Path) -> None:
    """`apigen run` writes in place and resumes: an interrupt leaves the rows in the output itself."""
    judged = threading.Semaphore(24)  # of 60 rows: the rows of the first requests, whatever order the judge's come in

    def answer_then_hold(request: Received) -> Reply:  # every generation request, the first 24 judge requests
        return pipeline_handler(request) if not is_judge(request) or judged.acquire(blocking=False) else Reply.slow(3600)

    out = tmp_path / "dataset.jsonl"
    state = Path(f"{out}.apigen-run.json")
    with (
        LLMServer(handler=answer_then_hold) as server,
        held_apigen(run_args(server=server, count=60, seed=1, concurrency=1, out=out)) as process,
    ):
        wait_until(process, lambda: _state_has_a_finished_request(state), "a checkpoint")
        wait_until(process, lambda: _main_thread_waits(process), "waiting on the held requests")
        err = _stop(process)
    assert err.splitlines()[-3:] == [
        "error: interrupted; every line already written is a complete row",
        "",
        "hint: run the same command again: it carries on where it stopped",
    ]
    saved = saved_state(state)
    assert saved["requests_done"] >= 1 and out.stat().st_size >= saved["output_bytes"] > 0
    assert leftovers(tmp_path) == []


def test_a_page_written_to_a_device_is_written_as_it_is(runner: CliRunner, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset.jsonl"
    assert invoke(runner, *run_args(count=6, seed=1, out=dataset)).exit_code == 0
    result = invoke(runner, "report", str(dataset), "--card", os.devnull)
    assert result.exit_code == 0, result.stderr
    assert f"report: wrote `{os.devnull}`" in result.stderr
