"""The verdict on a conversation, from replays made by hand: outcome first, failing closed."""

from __future__ import annotations

from typing import Any

from apigen_cli.conversations.transcript import read_transcript
from apigen_cli.conversations.verdict import Replay, ReplayedCall, gold_outputs_problem, judge, said_the_same
from apigen_cli.problems import Problem

from .test_transcript import conversation

GOLD = Replay(None, [ReplayedCall("cancel_order", True, {"status": "cancelled"}, changed=True)], {"s": 1}, "abc")


def played(*calls: ReplayedCall, digest: str = "abc") -> Replay:
    return Replay(None, list(calls), {"s": 1}, digest)


CALLS = (
    ReplayedCall("get_order", True, {"status": "pending"}),
    ReplayedCall("get_user", True, "u1"),
    ReplayedCall("cancel_order", True, {"status": "cancelled"}, changed=True, changed_paths=('Store.orders["#17"].status',)),
)


def verdict(
    row: dict[str, Any] | None = None, gold: Replay = GOLD, replay: Replay | None = None, diff: tuple[str, ...] = ()
) -> Any:
    return judge(read_transcript(row or conversation()), gold, replay or played(*CALLS), diff)


def test_a_conversation_that_ends_in_the_gold_state_and_tells_the_outputs_is_kept_with_labels() -> None:
    result = verdict()
    assert result.problem is None
    assert result.labels == [
        {"name": "get_order", "ok": True, "changed_state": False, "change_kept": False},
        {"name": "get_user", "ok": True, "changed_state": False, "change_kept": False},
        {"name": "cancel_order", "ok": True, "changed_state": True, "change_kept": True},
    ]


def test_another_final_state_is_a_state_mismatch_naming_the_difference() -> None:
    result = verdict(replay=played(*CALLS, digest="xyz"), diff=('Store.orders["#17"].status: "pending" -> "cancelled"',))
    assert result.problem is not None and result.problem.code == "state_mismatch"
    assert 'Store.orders["#17"].status: "pending" -> "cancelled"' in result.problem.message


def test_the_ground_truth_must_itself_replay_without_error() -> None:
    failing = Replay(None, [ReplayedCall("cancel_order", False, error="order #17 is not pending")], {"s": 1}, "abc")
    result = verdict(gold=failing)
    assert result.problem == Problem("gold_action_error", "gold action 1 `cancel_order` failed: order #17 is not pending")
    broken = Replay(Problem("environment_load_error", "OnlineStore.load_state raised KeyError: 'orders'"))
    assert verdict(gold=broken).problem.code == "gold_replay_error"


def test_a_replay_that_could_not_run_rejects_with_its_own_reason() -> None:
    crashed = Replay(Problem("crash", "the worker died (signal 9) during call 2 `get_user`"))
    assert verdict(replay=crashed).problem == crashed.problem


def test_an_expected_output_not_told_is_missing_output() -> None:
    result = verdict(conversation(outputs=["#18", "$1250"]))
    assert result.problem == Problem("missing_output", "no assistant message tells the user `#18`")


def test_a_tool_message_that_says_another_thing_than_the_environment_is_a_mismatch() -> None:
    lying = (ReplayedCall("get_order", True, {"status": "shipped"}), *CALLS[1:])
    result = verdict(replay=played(*lying))
    assert result.problem is not None and result.problem.code == "tool_result_mismatch"
    assert result.problem.message.startswith("call 1 `get_order`: its tool message says")


def test_an_error_call_is_no_failure_and_its_message_must_hold_the_error() -> None:
    assert said_the_same("Error: order #17 not found", ReplayedCall("get_order", False, error="Order #17 not found"))
    assert not said_the_same("ok", ReplayedCall("get_order", False, error="order #17 not found"))
    assert said_the_same('{"total": 25}', ReplayedCall("f", True, {"total": 25.0}))  # numbers by value
    assert not said_the_same('{"total": true}', ReplayedCall("f", True, {"total": 1}))


def test_a_change_undone_or_redone_later_is_not_kept() -> None:
    first = ReplayedCall("set_address", True, None, changed=True, changed_paths=('Store.users["u1"].address',))
    second = ReplayedCall("set_address", True, None, changed=True, changed_paths=('Store.users["u1"]',))
    labels = verdict(conversation(messages=[{"role": "user", "content": "hi"}], outputs=[]), replay=played(first, second)).labels
    assert [label["change_kept"] for label in labels] == [False, True]


def test_a_gold_action_that_raises_in_the_conversation_says_it_raises() -> None:
    # a string result and an error read alike in a message unless it says which the call gave
    wanted = ReplayedCall("tick", True, "done", arguments={"id": 1})
    raised = ReplayedCall("tick", False, error="no todo 1", arguments={"id": 1})
    problem = gold_outputs_problem(Replay(None, [wanted], state_readable=False), Replay(None, [raised], state_readable=False))
    assert problem is not None and problem.code == "gold_output_mismatch"
    assert '`tick` returns "done" on the gold\'s replay, but raises "no todo 1" as call 1' in problem.message, problem.message
