"""`apigen simulate`: blueprints acted out by a simulated user and an agent, kept only when verified by state.

Real classes in real worker processes (the sample store), the real CLI; the offline backend's
scripted user and agent here, a scripted OpenAI-compatible server in test_simulate_llm.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.conversations.user_simulator import user_errors
from apigen_cli.llm import offline_conversation

from .conftest import PROJECT, invoke, read_jsonl, write_jsonl
from .doc_pages import run_section_example
from .run_helpers import multi_turn_demo

STORE = PROJECT / "sample_data" / "store"
POLICY = STORE / "policy.md"


@pytest.fixture(scope="module")
def blueprints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Verified blueprints of the sample store, as `apigen blueprint` writes them (positive and negative ones)."""
    folder = tmp_path_factory.mktemp("blueprints")
    runner = CliRunner()
    tools = folder / "store_tools.jsonl"
    made = invoke(runner, "library", "from-python", str(STORE), "--class", "OnlineStore", "-o", str(tools), "-q")
    assert made.exit_code == 0, made.stderr
    path = folder / "blueprints.jsonl"
    result = invoke(
        runner,
        "blueprint", str(tools), "--functions", str(STORE), "--initial-state", str(STORE / "initial_state.json"),
        "--policy", str(POLICY), "-m", "offline", "-n", "12", "--seed", "23", "-O", "offline_error_rate=0.3",
        "--negative-share", "0.2", "-o", str(path), "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(read_jsonl(path)) >= 6
    return path


def simulate(tmp_path: Path, source: Path, *flags: str) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    output, rejects = tmp_path / "conversations.jsonl", tmp_path / "failed.jsonl"
    result = invoke(
        CliRunner(),
        "simulate", str(source), "--functions", str(STORE), "--policy", str(POLICY), "-m", "offline",
        "-o", str(output), "--rejects", str(rejects), *flags,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result, read_jsonl(output), read_jsonl(rejects)


def test_offline_conversations_are_verified_and_every_attempt_is_accounted_for(blueprints: Path, tmp_path: Path) -> None:
    result, kept, failed = simulate(tmp_path, blueprints, "--seed", "1", "-O", "offline_error_rate=0.3")
    source = read_jsonl(blueprints)
    # each blueprint: at most one verified conversation, and every attempt before it in the rejects
    by_blueprint = Counter(row["blueprint_id"] for row in kept)
    assert set(by_blueprint.values()) == {1}
    for row in failed:
        assert row["rejected_by"] in ("simulate", "trajectory_check") and row["reason"] and row["reason_detail"]
        assert row["messages"][0]["role"] == "system"  # the whole conversation travels with its reason
    attempts = Counter(row["blueprint_id"] for row in kept + failed)
    for blueprint in source:
        verified = [row["attempt"] for row in kept if row["blueprint_id"] == blueprint["id"]]
        assert attempts[blueprint["id"]] == (verified[0] if verified else 3)  # tried until verified, or 3 times
    for row in kept:
        assert row["keep_row_after_trajectory_check"] is True
        assert row["models"] == {"agent": "offline", "user": "offline"}
        assert row["simulation"]["ended_by"] in ("user_stop", "stop_tool")
        assert row["tools"] and row["tools"][0]["type"] == "function"
        assert row["instruction"] and row["actions"]  # the blueprint's own fields travel on
    assert f"simulate: {len(kept)} passed, {len(failed)} rejected" in result.stderr
    assert f"blueprints verified: {len(kept)} of {len(source)}" in result.stderr
    assert "user simulator errors:" in result.stderr


def test_simulated_rows_are_what_trajectory_check_reads(blueprints: Path, tmp_path: Path) -> None:
    _result, kept, _failed = simulate(tmp_path, blueprints, "--seed", "2")
    again = invoke(CliRunner(), "trajectory-check", str(tmp_path / "conversations.jsonl"), "--functions", str(STORE), "-q")
    assert again.exit_code == 0, again.stderr
    assert len([json.loads(line) for line in again.stdout.splitlines()]) == len(kept)


def test_the_same_seed_gives_the_same_conversations(blueprints: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _r, kept_1, failed_1 = simulate(first, blueprints, "--seed", "5", "-O", "offline_error_rate=0.5")
    _r, kept_2, failed_2 = simulate(second, blueprints, "--seed", "5", "-O", "offline_error_rate=0.5")

    def shown(rows: list[dict[str, Any]]) -> list[Any]:
        return [(row["id"], row["messages"], row.get("reason")) for row in rows]

    assert shown(kept_1) == shown(kept_2) and shown(failed_1) == shown(failed_2)


def test_every_slip_of_the_scripted_agent_is_caught(blueprints: Path, tmp_path: Path) -> None:
    """At an error rate of 1 every first attempt carries a slip: the check rejects what changes the outcome."""
    rows = [dict(row, outputs=["reference 42"]) for row in read_jsonl(blueprints)]  # an output the agent must tell
    source = write_jsonl(tmp_path / "source.jsonl", rows)
    _result, kept, failed = simulate(tmp_path, source, "--seed", "3", "-O", "offline_error_rate=1", "--attempts", "1")
    reasons = Counter(row["reason"] for row in failed)
    assert reasons["state_mismatch"] >= 2  # a wrong argument, a skipped write, a user that stopped early
    assert reasons["missing_output"] >= 1  # the output never told
    assert all(row["simulation"]["user_errors"] or row["reason"] for row in failed)
    flagged = Counter(error for row in kept + failed for error in row["simulation"]["user_errors"])
    assert flagged["user_invented_detail"] + flagged["user_stopped_early"] >= 1


def test_a_blueprint_that_cannot_be_acted_out_is_rejected_with_its_reason(blueprints: Path, tmp_path: Path) -> None:
    good = read_jsonl(blueprints)[0]
    broken = [
        {k: v for k, v in good.items() if k != "instruction"} | {"id": "no-instruction"},
        {k: v for k, v in good.items() if k != "environment"} | {"id": "no-environment"},
        dict(good, id="rejected-before", rejected_by="blueprint_review", reason="review_rejected"),
    ]
    _result, kept, failed = simulate(tmp_path, write_jsonl(tmp_path / "broken.jsonl", broken))
    assert kept == []
    assert [(row["id"], row["reason"]) for row in failed] == [
        ("no-instruction", "no_instruction"),
        ("no-environment", "no_environment"),
        ("rejected-before", "review_rejected"),
    ]


def test_the_scripted_user_tells_the_instruction_piece_by_piece() -> None:
    instruction = (
        "You are Kenji Watanabe, and your email is kenji@example.net. You want to cancel a pending order. "
        "What you know: order id: ORD-1."
    )
    conversation: list[dict[str, str]] = []
    said = offline_conversation.user({"instruction": instruction, "conversation": conversation}, error_rate=0)
    assert said == "Hi. I want to cancel a pending order."
    answers = []
    for question in ("Who are you?", "Which order?", "Your date of birth?", "Please confirm: shall I go ahead?"):
        conversation += [{"role": "user", "text": said}, {"role": "agent", "text": question}]
        said = offline_conversation.user({"instruction": instruction, "conversation": conversation}, error_rate=0)
        answers.append(said)
    assert answers == [
        "I am Kenji Watanabe, and my email is kenji@example.net.",
        "The details: order id: ORD-1.",
        "I do not know that, sorry.",
        "Yes, please go ahead.",
    ]
    conversation += [{"role": "user", "text": said}, {"role": "agent", "text": "Done."}]
    last = offline_conversation.user({"instruction": instruction, "conversation": conversation}, error_rate=0)
    assert last.endswith("###STOP###")


def test_the_guide_s_example_runs_as_written_and_says_what_the_page_shows(tmp_path: Path) -> None:
    shown, said, _printed = run_section_example("### `apigen simulate`", tmp_path)
    assert [line for line in said if line in shown] == shown, said


def test_the_multi_turn_demo_shows_a_verified_conversation_and_why_other_attempts_failed(tmp_path: Path) -> None:
    done = multi_turn_demo(tmp_path / "mt")
    assert done.returncode == 0, done.stderr
    assert "simulate: 7 passed, 6 rejected (state_mismatch (trajectory_check) 6)" in done.stderr
    conversation = done.stdout.split("--- a verified conversation", 1)[1].split("\n---", 1)[0].splitlines()[1:]
    assert conversation[0].startswith("user: Hi. I want to")
    assert any(line.startswith("tool: ") for line in conversation)
    assert conversation[-1] == "user: No, that is all. Thank you!"
    failed = done.stdout.split("--- why the other attempts failed", 1)[1].split("\n---", 1)[0].splitlines()[1:]
    assert len(failed) == 6 and all(" state_mismatch: " in line for line in failed)
    # `run --multi-turn` closes with APIGen-MT's table
    table = done.stderr.splitlines()
    assert any(line.startswith("blueprints requested") and line.endswith(" 12") for line in table)
    assert any(line.startswith("conversations verified") and line.split()[2] == "7" for line in table)


def test_keep_all_verified_makes_every_attempt_and_keeps_each_distinct_verified_one(blueprints: Path, tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "two.jsonl", [row for row in read_jsonl(blueprints) if row["blueprint_kind"] == "positive"][:2]
    )
    _result, kept, failed = simulate(tmp_path, source, "--seed", "9", "--keep-all-verified", "-O", "offline_error_rate=0")
    # a scripted agent without slips says the same thing at every attempt: one verified conversation, two duplicates
    assert [(row["blueprint_id"], row["attempt"]) for row in kept] == [(row["blueprint_id"], 1) for row in kept]
    assert len(kept) == 2
    assert (
        sorted((row["attempt"], row["reason"]) for row in failed)
        == [(2, "duplicate_conversation")] * 2 + [(3, "duplicate_conversation")] * 2
    )


def test_a_stop_tool_ends_the_conversation_and_it_is_checked_as_it_stands(blueprints: Path, tmp_path: Path) -> None:
    [positive] = [row for row in read_jsonl(blueprints) if row["blueprint_kind"] == "positive"][:1]
    source = write_jsonl(tmp_path / "one.jsonl", [positive])
    stop = positive["actions"][1]["name"]  # a read before the write: the conversation ends before the task is done
    _result, kept, failed = simulate(
        tmp_path, source, "--stop-tools", stop, "--attempts", "1", "-O", "offline_error_rate=0", "--seed", "1"
    )
    assert kept == []
    [row] = failed
    assert (row["simulation"]["ended_by"], row["reason"]) == ("stop_tool", "state_mismatch")
    assert row["messages"][-1]["role"] == "tool"  # the stop tool's call ran, and nothing after it


def test_the_agent_s_tools_may_come_from_a_library_file(blueprints: Path, tmp_path: Path) -> None:
    library = tmp_path / "tools.jsonl"
    entries = read_jsonl(blueprints.parent / "store_tools.jsonl")
    for entry in entries:
        entry["description"] = "EDITED " + entry["description"]
    write_jsonl(library, entries)
    source = write_jsonl(tmp_path / "one.jsonl", read_jsonl(blueprints)[:1])
    _result, kept, _failed = simulate(tmp_path, source, "--tools", str(library), "-O", "offline_error_rate=0", "--seed", "1")
    [row] = kept
    assert all(tool["function"]["description"].startswith("EDITED ") for tool in row["tools"])
    assert {tool["function"]["name"] for tool in row["tools"]} == {entry["name"] for entry in entries}


def test_the_user_simulator_s_errors_are_read_from_the_conversation() -> None:
    instruction = "You want to cancel order ORD-1. Your email is a@example.com."

    def said(*messages: tuple[str, str], stopped: bool = True) -> list[str]:
        rows = [{"role": role, "content": text} for role, text in messages]
        return user_errors(instruction, rows, stopped=stopped, gold_writes=["cancel_order"])

    # told only what the instruction gives, and stopped when the agent asked nothing more
    assert said(("user", "Cancel ORD-1 please, I am a@example.com"), ("assistant", "Done. Anything else?")) == []
    assert said(("user", "Cancel ORD-1, my phone is 555-0199")) == ["user_invented_detail"]
    assert said(("assistant", "Your order is ORD-77?"), ("user", "Yes, ORD-77."), stopped=False) == []  # said back
    assert said(("user", "Cancel ORD-1"), ("assistant", "Which email is it?")) == ["user_stopped_early"]
    assert said(("user", "Cancel ORD-1"), ("assistant", "Which email is it?"), stopped=False) == []


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (
            ["-m", "offline"],
            "error: `simulate` runs the agent's calls on an environment, and neither `--functions` nor `--mcp` names one",
        ),
        (["--functions", str(STORE), "-m", "offline", "--tools", "nope.jsonl"], "error: `--tools nope.jsonl`: "),
        (["--functions", str(PROJECT / "sample_data" / "functions"), "-m", "offline"], "defines no class with public methods"),
        (["--functions", str(STORE), "-m", "offline", "-m", "other"], "error: simulate takes one agent model, and 2 are given"),
    ],
)
def test_a_command_that_cannot_run_says_why_before_any_request(
    blueprints: Path, tmp_path: Path, flags: list[str], said: str
) -> None:
    result = invoke(CliRunner(), "simulate", str(blueprints), "-o", str(tmp_path / "out.jsonl"), *flags)
    assert result.exit_code == 2
    assert said in result.stderr and "\nhint: " in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists()
