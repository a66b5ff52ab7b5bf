"""Reading conversation rows for trajectory-check: strict, failing closed, each defect with its own code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apigen_cli.conversations.transcript import missing_outputs, read_transcript, told
from apigen_cli.problems import RowProblem

ENVIRONMENT: dict[str, Any] = {"OnlineStore": {"orders": {}}}


def conversation(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "environment": ENVIRONMENT,
        "messages": [
            {"role": "system", "content": "Follow the policy."},
            {"role": "user", "content": "Cancel order #17, please."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "#17"}'}},
                    {"id": "c2", "type": "function", "function": {"name": "get_user", "arguments": {"user_id": "u1"}}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"status": "pending"}'},
            {"role": "tool", "tool_call_id": "c2", "content": "u1"},
            {"role": "assistant", "content": "Order #17 is pending. Shall I cancel it, for a refund of $1,250?"},
            {"role": "user", "content": "Yes."},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c3", "function": {"name": "cancel_order", "arguments": {"order_id": "#17"}}}],
            },
        ],
        "actions": [{"name": "cancel_order", "arguments": {"order_id": "#17"}}],
        "outputs": ["$1250"],
    }
    return row | fields


def test_a_conversation_is_read_into_its_calls_texts_and_tool_messages() -> None:
    transcript = read_transcript(conversation())
    assert [(call.message, call.call_id, call.name, call.arguments) for call in transcript.calls] == [
        (2, "c1", "get_order", {"order_id": "#17"}),  # arguments given as a JSON string
        (2, "c2", "get_user", {"user_id": "u1"}),  # and as an object
        (7, "c3", "cancel_order", {"order_id": "#17"}),
    ]
    assert transcript.tool_messages == {"c1": '{"status": "pending"}', "c2": "u1"}
    assert transcript.actions == [{"name": "cancel_order", "arguments": {"order_id": "#17"}}]
    assert transcript.environment == ENVIRONMENT
    assert missing_outputs(transcript) == []  # "$1,250" told, commas aside


def test_outputs_are_found_case_and_commas_aside_as_tau_bench_compares() -> None:
    assert told("Total: 1250", ["your TOTAL: 1,250 dollars"])
    assert not told("1250", ["one thousand two hundred"])
    assert missing_outputs(read_transcript(conversation(outputs=["#18"]))) == ["#18"]


BAD_ROWS = [
    ({"environment": None}, "no_environment"),
    ({"environment": []}, "invalid_environment"),
    ({"environment": {"OnlineStore": "big"}}, "invalid_environment"),
    ({"actions": None}, "no_actions"),
    ({"actions": {"name": "x"}}, "invalid_actions"),
    ({"actions": [{"arguments": {}}]}, "invalid_actions"),
    ({"actions": [{"name": "x", "arguments": "[1]"}]}, "invalid_actions"),
    ({"outputs": "1250"}, "invalid_outputs"),
    ({"messages": []}, "invalid_messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "invalid_messages"),
    ({"messages": [{"role": "user", "content": {"text": "hi"}}]}, "invalid_messages"),
    ({"messages": [{"role": "tool", "tool_call_id": "c9", "content": "x"}]}, "invalid_messages"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]}, "invalid_tool_call"),
    (
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}]}]},
        "invalid_tool_call",
    ),
    (
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "[1, 2]"}}]}]},
        "invalid_tool_call",
    ),
]


@pytest.mark.parametrize(("fields", "code"), BAD_ROWS, ids=[json.dumps(fields)[:60] for fields, _ in BAD_ROWS])
def test_what_keeps_the_check_from_being_sure_is_a_named_problem(fields: dict[str, Any], code: str) -> None:
    with pytest.raises(RowProblem) as raised:
        read_transcript(conversation(**fields))
    assert raised.value.problem.code == code


def test_a_tool_message_answering_a_call_twice_is_refused() -> None:
    messages = conversation()["messages"] + [{"role": "tool", "tool_call_id": "c1", "content": "again"}]
    with pytest.raises(RowProblem, match="a second time"):
        read_transcript(conversation(messages=messages))
