"""`apigen export --format preference`: a verified and a failed attempt of one blueprint, as TRL's preference pairs.

The attempts are the sample store's four conversations, all acting out one task, given one
blueprint id: the real `trajectory-check` keeps one and rejects three (each wrong in its own way),
and the rejects file is where the failed attempts come from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from .conftest import invoke, parse_stdout, read_jsonl, write_jsonl
from .test_export_conversations import STORE, apigen

BLUEPRINT = "bp-cancel-earbuds"


@pytest.fixture(scope="module")
def attempts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with `verified.jsonl`, `failed.jsonl` (trajectory-check's rejects) and `store_tools.jsonl`."""
    folder = tmp_path_factory.mktemp("attempts")
    rows = [
        {**row, "blueprint_id": BLUEPRINT, "attempt": number}
        for number, row in enumerate(read_jsonl(STORE / "conversations.jsonl"), start=1)
    ]
    write_jsonl(folder / "attempts.jsonl", rows)
    checked = apigen(
        "trajectory-check", "attempts.jsonl", "--functions", str(STORE), "-o", "verified.jsonl", "--rejects", "failed.jsonl",
        cwd=folder,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    library = apigen("library", "from-python", str(STORE), "--class", "OnlineStore", "-o", "store_tools.jsonl", cwd=folder)
    assert library.returncode == 0, library.stderr
    return folder


def preference(runner: CliRunner, folder: Path, *args: str, source: str = "verified.jsonl") -> Any:
    return invoke(
        runner,
        "export",
        str(folder / source),
        "--format",
        "preference",
        "--rejects-in",
        str(folder / "failed.jsonl"),
        "--tools",
        str(folder / "store_tools.jsonl"),
        *args,
    )


def test_each_failed_attempt_pairs_with_the_verified_one_from_where_the_agent_parted(runner: CliRunner, attempts: Path) -> None:
    result = preference(runner, attempts)
    assert result.exit_code == 0, result.stderr
    pairs = parse_stdout(result.stdout)
    assert [(pair["rejected_id"], pair["rejected_reason"]) for pair in pairs] == [
        ("store-cancel-wrong-order", "state_mismatch"),
        ("store-cancel-untold", "missing_output"),
        ("store-cancel-made-up-result", "tool_result_mismatch"),
    ]
    [verified] = read_jsonl(attempts / "verified.jsonl")
    failed = {row["id"]: row for row in read_jsonl(attempts / "failed.jsonl")}
    for pair in pairs:
        assert pair["blueprint_id"] == BLUEPRINT and pair["chosen_id"] == "store-cancel-earbuds"
        prompt, chosen, rejected = pair["prompt"], pair["chosen"], pair["rejected"]
        assert chosen[0]["role"] == rejected[0]["role"] == "assistant"  # the pair parts at a turn of the agent's
        assert chosen != rejected
        assert len(prompt) + len(chosen) == len(verified["messages"])
        assert len(prompt) + len(rejected) == len(failed[pair["rejected_id"]]["messages"])
        assert prompt[0] == verified["messages"][0] and prompt[1]["role"] == "user"
        assert len(pair["tools"]) == 14
    wrong_order = pairs[0]
    assert len(wrong_order["prompt"]) == 12  # everything until the agent cancels: the wrong order, in the failed one
    assert wrong_order["chosen"][0]["tool_calls"][0]["function"]["arguments"] == {
        "order_id": "ORD-327821",
        "reason": "no longer needed",
    }
    assert wrong_order["rejected"][0]["tool_calls"][0]["function"]["arguments"]["order_id"] != "ORD-327821"
    made_up = pairs[2]  # parted at a tool message: the pair starts at the call before it, which both made
    assert made_up["chosen"][0] == made_up["rejected"][0] and made_up["chosen"][1] != made_up["rejected"][1]
    assert result.stderr.splitlines()[-1] == "export: 3 pairs written as preference (from 1 verified conversation)"


def test_a_verified_conversation_without_a_failed_attempt_makes_no_pair_and_is_counted(
    runner: CliRunner, attempts: Path, tmp_path: Path
) -> None:
    [verified] = read_jsonl(attempts / "verified.jsonl")
    alone = write_jsonl(tmp_path / "alone.jsonl", [{**verified, "blueprint_id": "bp-other"}])
    result = invoke(
        runner, "export", str(alone), "--format", "preference", "--rejects-in", str(attempts / "failed.jsonl"),
        "--tools", str(attempts / "store_tools.jsonl"),
    )  # fmt: skip
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "export: 0 pairs written as preference; 1 verified conversation without a failed attempt; "
        "3 failed attempts without a verified one"
    )


def test_attempts_whose_users_parted_before_the_agent_spoke_make_no_pair(
    runner: CliRunner, attempts: Path, tmp_path: Path
) -> None:
    failed = read_jsonl(attempts / "failed.jsonl")
    failed[0]["messages"][1] = {"role": "user", "content": "Cancel my order, the earbuds one."}
    write_jsonl(tmp_path / "failed.jsonl", failed)
    result = invoke(
        runner, "export", str(attempts / "verified.jsonl"), "--format", "preference", "--rejects-in", str(tmp_path / "failed.jsonl"),
        "--tools", str(attempts / "store_tools.jsonl"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(parse_stdout(result.stdout)) == 2
    assert result.stderr.splitlines()[-1].endswith("1 pair could not be made (no_shared_prompt 1)")


def test_the_chosen_side_must_be_verified_and_name_its_blueprint(runner: CliRunner, attempts: Path, tmp_path: Path) -> None:
    unverified = preference(runner, attempts, source="failed.jsonl")  # rejected rows only: nothing to choose
    assert unverified.exit_code == 0 and unverified.stdout == ""
    assert "3 rejected rows left out" in unverified.stderr.splitlines()[-1]
    [verified] = read_jsonl(attempts / "verified.jsonl")
    nameless = write_jsonl(
        tmp_path / "nameless.jsonl", [{key: value for key, value in verified.items() if key != "blueprint_id"}]
    )
    result = invoke(
        runner, "export", str(nameless), "--format", "preference", "--rejects-in", str(attempts / "failed.jsonl"),
        "--tools", str(attempts / "store_tools.jsonl"),
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    assert (
        result.stderr.splitlines()[0]
        == f"error: row 1 of `{nameless}` names no `blueprint_id`: a pair is two attempts of one blueprint"
    )
    raw = write_jsonl(tmp_path / "raw.jsonl", read_jsonl(attempts / "attempts.jsonl"))
    refused = invoke(
        runner, "export", str(raw), "--format", "preference", "--rejects-in", str(attempts / "failed.jsonl"),
        "--tools", str(attempts / "store_tools.jsonl"),
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "has not passed the checks: it has no `keep_row_after_trajectory_check: true`" in refused.stderr.splitlines()[0]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ((), "error: `--format preference` pairs verified conversations with failed attempts, and no `--rejects-in` names them"),
        (("--rejects-in", "x.jsonl", "--per-turn"), "error: `--per-turn` does not apply to `--format preference`"),
        (("--rejects-in", "x.jsonl", "--unverified"), "error: `--unverified` does not apply to `--format preference`"),
    ],
)
def test_preference_takes_its_own_flags(runner: CliRunner, attempts: Path, flags: tuple[str, ...], message: str) -> None:
    result = invoke(runner, "export", str(attempts / "verified.jsonl"), "--format", "preference", *flags)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[0] == message


def test_rejects_in_belongs_to_preference(runner: CliRunner, attempts: Path) -> None:
    result = invoke(
        runner, "export", str(attempts / "verified.jsonl"), "--format", "messages", "--rejects-in", str(attempts / "failed.jsonl")
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: `--rejects-in` does not apply to `--format messages`"


def test_a_bad_line_in_the_rejects_file_is_named(runner: CliRunner, attempts: Path, tmp_path: Path) -> None:
    bad = tmp_path / "failed.jsonl"
    bad.write_text((attempts / "failed.jsonl").read_text() + "{not json\n")
    result = invoke(
        runner, "export", str(attempts / "verified.jsonl"), "--format", "preference", "--rejects-in", str(bad),
        "--tools", str(attempts / "store_tools.jsonl"),
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[0].startswith(f"error: line 4 of `{bad}` is not valid JSON")


def test_the_rejects_file_must_be_a_file_that_can_be_read_twice(runner: CliRunner, attempts: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "failed.fifo"
    os.mkfifo(fifo)  # nothing writes to it: opening it to read would wait forever
    result = invoke(
        runner, "export", str(attempts / "verified.jsonl"), "--format", "preference", "--rejects-in", str(fifo),
        "--tools", str(attempts / "store_tools.jsonl"),
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"error: `--rejects-in` should name a file, and `{fifo}` is not a regular file"
    missing = invoke(
        runner, "export", str(attempts / "verified.jsonl"), "--format", "preference", "--rejects-in", str(tmp_path / "none.jsonl")
    )
    assert missing.exit_code == 2
    assert missing.stderr.splitlines()[0].startswith(f"error: cannot read `{tmp_path / 'none.jsonl'}`")
