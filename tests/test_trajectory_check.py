"""`apigen trajectory-check`: conversations verified against the real state of their environment, end to end.

Real classes in real worker processes: the sample store (its conversations in
sample_data/store/conversations.jsonl, each row saying in `note` what the check must find),
a BFCL-style file system whose nodes point at their parent, and classes that hang or crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.conversations.trajectory_check import trajectory_check
from apigen_cli.execution.calls import ExecutorOptions
from apigen_cli.execution.executor import Executor

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl

STORE = PROJECT / "sample_data" / "store"
CONVERSATIONS = STORE / "conversations.jsonl"
FIXTURES = PROJECT / "tests" / "fixtures" / "environments"


def call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}],
    }


def files_row(row_id: str, *made: tuple[str, dict[str, Any]], gold: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Make a folder `reports` in `work`, with a file `q1.txt` in it."}
    ]
    messages += [call(f"c{n}", name, **arguments) for n, (name, arguments) in enumerate(made)]
    messages.append({"role": "assistant", "content": "Done: work/reports/q1.txt exists."})
    return {
        "id": row_id,
        "environment": {"TinyFileSystem": {"root": "/", "contents": {"work": {"notes.txt": "hello"}}}},
        "messages": messages,
        "actions": [{"name": name, "arguments": arguments} for name, arguments in gold],
        "outputs": ["q1.txt"],
    }


GOLD_FILES = [
    ("cd", {"folder": "work"}),
    ("mkdir", {"dir_name": "reports"}),
    ("cd", {"folder": "reports"}),
    ("touch", {"file_name": "q1.txt"}),
]


def test_the_sample_store_conversations_are_judged_as_their_notes_say(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects = tmp_path / "verified.jsonl", tmp_path / "failed.jsonl"
    result = invoke(
        runner, "trajectory-check", str(CONVERSATIONS), "--functions", str(STORE), "-o", str(out), "--rejects", str(rejects)
    )
    assert result.exit_code == 0, result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == "trajectory-check: 1 passed, 3 rejected (state_mismatch 1, missing_output 1, tool_result_mismatch 1)"
    )
    [kept] = read_jsonl(out)
    assert kept["id"] == "store-cancel-earbuds" and kept["keep_row_after_trajectory_check"] is True
    assert kept["trajectory_check"]["calls"] == [
        {"name": "find_user_by_email", "ok": True, "changed_state": False, "change_kept": False},
        {"name": "get_order_details", "ok": True, "changed_state": False, "change_kept": False},
        {"name": "cancel_pending_order", "ok": True, "changed_state": True, "change_kept": True},
    ]
    for row in read_jsonl(rejects):
        assert row["rejected_by"] == "trajectory_check" and row["keep_row_after_trajectory_check"] is False
        assert row["note"].startswith(f"rejected, {row['reason']}:"), row["id"]
    mismatch = next(row for row in read_jsonl(rejects) if row["reason"] == "state_mismatch")
    assert 'OnlineStore.orders["ORD-321060"]["status"]: "pending" -> "cancelled"' in mismatch["reason_detail"]


def test_a_file_system_with_parent_pointers_is_compared_by_state(runner: CliRunner, tmp_path: Path) -> None:
    right = files_row("right", *GOLD_FILES, gold=GOLD_FILES)
    # the same end state by another path: a check by state, not by matching calls, keeps it
    detour = files_row("detour", ("mkdir", {"dir_name": "tmp"}), ("cd", {"folder": "work"}), *GOLD_FILES[1:], gold=GOLD_FILES)
    detour["actions"].insert(0, {"name": "mkdir", "arguments": {"dir_name": "tmp"}})
    wrong = files_row("wrong", ("cd", {"folder": "work"}), ("touch", {"file_name": "q1.txt"}), gold=GOLD_FILES)
    source = write_jsonl(tmp_path / "rows.jsonl", [right, detour, wrong])
    result = invoke(runner, "trajectory-check", str(source), "--functions", str(FIXTURES / "env_files.py"), "--keep-rejected")
    assert result.exit_code == 0, result.stderr
    rows = {row["id"]: row for row in parse_stdout(result.stdout)}
    assert rows["right"]["keep_row_after_trajectory_check"] and rows["detour"]["keep_row_after_trajectory_check"]
    assert rows["wrong"]["reason"] == "state_mismatch"
    assert 'TinyFileSystem.root.contents["work"].contents["reports"]: removed' in rows["wrong"]["reason_detail"]


def test_a_hanging_or_crashing_tool_ends_its_conversation_not_the_run(runner: CliRunner, tmp_path: Path) -> None:
    def saboteur(row_id: str, method: str) -> dict[str, Any]:
        return {
            "id": row_id,
            "environment": {"Saboteur": {}},
            "messages": [{"role": "user", "content": "go"}, call("c1", method)],
            "actions": [],
        }

    rows = [saboteur("hangs", "hang"), saboteur("dies", "hard_exit"), files_row("fine", *GOLD_FILES, gold=GOLD_FILES)]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    library = tmp_path / "library"
    library.mkdir()
    for name in ("env_files.py", "env_misc.py"):
        (library / name).write_text((FIXTURES / name).read_text())
    result = invoke(
        runner, "trajectory-check", str(source), "--functions", str(library), "--exec-timeout", "2", "--keep-rejected"
    )
    assert result.exit_code == 0, result.stderr
    reasons = {row["id"]: row.get("reason") for row in parse_stdout(result.stdout)}
    assert reasons == {"hangs": "timeout", "dies": "crashed", "fine": None}


def test_what_keeps_the_check_from_running_rejects_the_row_never_passes_it(runner: CliRunner, tmp_path: Path) -> None:
    unknown = files_row("unknown", *GOLD_FILES, gold=GOLD_FILES) | {"environment": {"NoSuchClass": {}}}
    failing_gold = files_row("bad-gold", *GOLD_FILES, gold=[("cd", {"folder": "nowhere"})])
    unreadable = files_row("unreadable", *GOLD_FILES, gold=GOLD_FILES) | {"messages": "hi"}
    source = write_jsonl(tmp_path / "rows.jsonl", [unknown, failing_gold, unreadable])
    result = invoke(runner, "trajectory-check", str(source), "--functions", str(FIXTURES / "env_files.py"), "--keep-rejected")
    assert result.exit_code == 0, result.stderr
    reasons = {row["id"]: row.get("reason") for row in parse_stdout(result.stdout)}
    assert reasons == {"unknown": "gold_replay_error", "bad-gold": "gold_action_error", "unreadable": "invalid_messages"}


def test_without_functions_it_refuses_to_start(runner: CliRunner) -> None:
    result = invoke(runner, "trajectory-check", str(CONVERSATIONS))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        "error: `trajectory-check` replays each conversation on an environment, and neither `--functions` nor `--mcp` names one"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_the_python_api_gives_the_same_verdicts_on_one_worker_or_two(workers: int) -> None:
    rows = read_jsonl(CONVERSATIONS) * 3
    with Executor(str(STORE), ExecutorOptions(workers=workers)) as executor:
        checked = list(trajectory_check(rows, executor, in_flight=4))
    assert [row.get("reason") for row in checked] == [None, "state_mismatch", "missing_output", "tool_result_mismatch"] * 3


def test_a_slow_conversation_does_not_hold_back_the_start_of_the_next_ones(tmp_path: Path) -> None:
    """Row 2 waits on a file that appears only once row 1 is out.

    In windows of four, row 1 would wait for row 2 (the window's slowest), which would wait for
    the file: a deadlock that only the call's timeout would end (rejecting row 2). As a stream,
    the oldest row goes out when it is done, and the next is read and started in its place.
    """
    gate = tmp_path / "open"

    def row(number: int, path: str) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Go through."}, call("c1", "pass_when", path=path)]
        gold = [{"name": "pass_when", "arguments": {"path": path}}]
        return {"id": f"row-{number}", "environment": {"Gate": {}}, "messages": messages, "actions": gold}

    always = str(tmp_path)  # a path that exists: the call goes through at once
    rows = [row(1, always), row(2, str(gate)), *(row(number, always) for number in range(3, 9))]
    read: list[str] = []

    def source() -> Any:
        for each in rows:
            read.append(each["id"])
            yield each

    with Executor(str(FIXTURES / "env_misc.py"), ExecutorOptions(workers=2, timeout=20)) as executor:
        stream = trajectory_check(source(), executor, in_flight=4)
        first = next(stream)
        assert first["id"] == "row-1" and first["keep_row_after_trajectory_check"] is True
        assert read == ["row-1", "row-2", "row-3", "row-4"]  # at most four held; row 5 is read when row 1 is taken
        gate.touch()
        rest = list(stream)
    assert [each["id"] for each in rest] == [f"row-{number}" for number in range(2, 9)]  # input order
    assert all(each.get("keep_row_after_trajectory_check") for each in rest), [each.get("reason") for each in rest]
