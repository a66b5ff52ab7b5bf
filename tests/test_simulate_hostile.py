"""`apigen simulate` against what goes wrong: an agent that calls tools forever, a user that never stops, a
runaway reply, a tool that returns 100 MB, a class that hangs, an environment that crashes.

Each ends its conversation with its reason code, in the rejects with the whole conversation, and
never the run: the blueprint after it is still acted out and verified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from .conftest import invoke, read_jsonl, write_jsonl
from .hostile import run_cli
from .llm_server import LLMServer, Received, Reply, completion
from .scripted_conversation import _USER_RULES

WORKSHOP = '''
import os
import time


class Workshop:
    """A workshop's notes, and tools that misbehave."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def load_state(self, config: dict) -> None:
        self.notes = list(config.get("notes", []))

    def add_note(self, text: str) -> int:
        """Add a note; returns how many there are."""
        self.notes.append(text)
        return len(self.notes)

    def get_flood(self) -> str:
        """Returns 100 MB."""
        return "x" * 100_000_000

    def get_stuck(self) -> None:
        """Never returns."""
        while True:
            time.sleep(1)

    def get_crash(self) -> None:
        """Ends its process."""
        os._exit(3)
'''


@pytest.fixture
def workshop(tmp_path: Path) -> Path:
    path = tmp_path / "workshop.py"
    path.write_text(WORKSHOP)
    return path


def blueprint(row_id: str, *reads: str) -> dict[str, Any]:
    return {
        "id": row_id,
        "instruction": "You want a note added to the workshop. What you know: the note says hello.",
        "environment": {"Workshop": {"notes": []}},
        "actions": [*({"name": name, "arguments": {}} for name in reads), {"name": "add_note", "arguments": {"text": "hello"}}],
        "outputs": [],
    }


def simulate(tmp_path: Path, functions: Path, rows: list[dict[str, Any]], *flags: str) -> tuple[Any, list[Any], list[Any]]:
    source = write_jsonl(tmp_path / "blueprints.jsonl", rows)
    output, rejects = tmp_path / "conversations.jsonl", tmp_path / "failed.jsonl"
    result = invoke(
        CliRunner(),
        "simulate", str(source), "--functions", str(functions), "-o", str(output), "--rejects", str(rejects),
        "--seed", "1", "-O", "offline_error_rate=0", "--attempts", "1", *flags,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result, read_jsonl(output), read_jsonl(rejects)


def test_a_tool_returning_100_mb_is_shortened_and_the_conversation_goes_on(workshop: Path, tmp_path: Path) -> None:
    _result, kept, failed = simulate(tmp_path, workshop, [blueprint("flood", "get_flood")], "-m", "offline")
    assert failed == []
    [row] = kept
    [flood] = [message for message in row["messages"] if message["role"] == "tool"][:1]
    assert len(flood["content"]) < 10_000  # the worker's shortened result, not 100 MB
    assert row["keep_row_after_trajectory_check"] is True


def test_a_class_that_hangs_or_crashes_ends_its_conversation_not_the_run(workshop: Path, tmp_path: Path) -> None:
    rows = [blueprint("stuck", "get_stuck"), blueprint("crash", "get_crash"), blueprint("fine")]
    _result, kept, failed = simulate(tmp_path, workshop, rows, "-m", "offline", "--exec-timeout", "1")
    assert [(row["blueprint_id"], row["rejected_by"], row["reason"]) for row in failed] == [
        ("stuck", "simulate", "timeout"),
        ("crash", "simulate", "crashed"),
    ]
    assert "`get_stuck`" in failed[0]["reason_detail"] and "`get_crash`" in failed[1]["reason_detail"]
    assert [row["blueprint_id"] for row in kept] == ["fine"]
    # the conversation up to the call that hung is kept, the call's failure as its tool message
    call, said = failed[0]["messages"][-2:]
    assert call["tool_calls"][0]["function"]["name"] == "get_stuck"
    assert said["role"] == "tool" and "did not return within the 1 s timeout" in said["content"]


def scripted(*, user: str, agent: dict[str, Any]) -> Any:
    """A server whose user always says ``user`` and whose agent always answers the message ``agent``."""

    def handle(request: Received) -> Reply:
        body = request.json
        if str(body["messages"][0].get("content", "")).startswith(_USER_RULES):
            return Reply.chat(user)
        answer = completion(agent.get("content") or "", str(body["model"]), 11, 7)
        answer["choices"][0]["message"].update(agent)
        return Reply(body=answer)

    return handle


AGENT_CALLS = {
    "content": None,
    "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "add_note", "arguments": orjson.dumps({"text": "again"}).decode()}}
    ],
}


@pytest.mark.parametrize(
    ("user", "agent", "flags", "reason"),
    [
        ("Please add a note that says hello.", AGENT_CALLS, ["--max-tool-calls", "4"], "tool_call_limit"),
        ("Tell me more.", {"content": "Sure, what else?"}, ["--max-turns", "3"], "turn_limit"),
        ("Hello.", {"content": "blah " * 5_000}, ["--max-reply-chars", "1000"], "reply_too_long"),
        ("Hello.", {"content": "Hi."}, ["--max-seconds", "0"], "time_limit"),
    ],
)
def test_a_conversation_that_reaches_a_bound_ends_with_its_reason(
    workshop: Path, tmp_path: Path, user: str, agent: dict[str, Any], flags: list[str], reason: str
) -> None:
    with LLMServer(handler=scripted(user=user, agent=agent)) as server:
        _result, kept, failed = simulate(
            tmp_path, workshop, [blueprint("one")], "--base-url", server.url, "-m", "agent", "--user-model", "user", *flags
        )
    assert kept == []
    [row] = failed
    assert (row["rejected_by"], row["reason"], row["simulation"]["ended_by"]) == ("simulate", reason, reason)
    assert row["messages"][0]["role"] == "system"
    if reason == "tool_call_limit":
        assert sum(len(message.get("tool_calls") or ()) for message in row["messages"]) == 5  # 4 run, the 5th ended it
        assert sum(1 for message in row["messages"] if message["role"] == "tool") == 4
    if reason == "turn_limit":
        assert sum(1 for message in row["messages"] if message["role"] == "user") == 3


def _agent_calling_add_note_with(arguments_json: str) -> Any:
    """A server whose agent calls ``add_note`` with ``arguments_json`` written into its reply as it is (any depth)."""

    def handle(request: Received) -> Reply:
        body = request.json
        if str(body["messages"][0].get("content", "")).startswith(_USER_RULES):
            return Reply.chat("Please add a note that says hello.")
        answer = completion("", str(body["model"]), 11, 7)
        answer["choices"][0]["message"]["tool_calls"] = "CALLS"
        call = '[{"id": "c", "type": "function", "function": {"name": "add_note", "arguments": ' + arguments_json + "}}]"
        return Reply(body=orjson.dumps(answer).decode().replace('"CALLS"', call).encode())

    return handle


def _the_one_failed(handler: Any, workshop: Path, tmp_path: Path) -> dict[str, Any]:
    """Simulate one blueprint against ``handler``'s agent and user; the conversation must fail: its row."""
    with LLMServer(handler=handler) as server:
        _result, kept, failed = simulate(
            tmp_path, workshop, [blueprint("one")], "--base-url", server.url, "-m", "agent", "--user-model", "user"
        )
    assert kept == []
    [row] = failed
    return dict(row)


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (_nested(150), "the reply's `tool_calls` are nested deeper than 100 levels"),
        (
            _nested(300),
            "the reply's `tool_calls` are nested deeper than 100 levels",
        ),  # past what orjson writes: it crashed the run
        (
            orjson.dumps('{"text": "hello", "b": ' + _nested(300) + "}").decode(),  # a JSON string, read when the call is made
            "the agent's call `add_note` has arguments nested deeper than 92 levels",
        ),
    ],
    ids=["object-150", "object-300", "string-300"],
)
def test_an_agent_call_nested_too_deep_ends_its_conversation_not_the_run(
    workshop: Path, tmp_path: Path, arguments: str, said: str
) -> None:
    row = _the_one_failed(_agent_calling_add_note_with(arguments), workshop, tmp_path)
    assert (row["rejected_by"], row["reason"]) == ("simulate", "too_deep"), row["reason_detail"]
    assert said in row["reason_detail"]


def test_a_users_long_message_is_read_for_invented_details_in_linear_time(workshop: Path, tmp_path: Path) -> None:
    """The scan for details the user invented backtracked over every start of a long word: a message of 800,000
    letters took about an hour (100,000 took 35 s). Now it takes as long as reading the message: well within the
    deadline, after which ``run_cli`` kills the process and the test fails."""
    source = write_jsonl(tmp_path / "blueprints.jsonl", [blueprint("long")])
    said = "a" * 400_000 + " " + "b-" * 200_000 + " ###STOP###"
    with LLMServer(handler=scripted(user=said, agent={"content": "Hi, how can I help?"})) as server:
        ran = run_cli(
            "simulate", str(source), "--functions", str(workshop), "--base-url", server.url, "-m", "agent",
            "--user-model", "user", "--max-reply-chars", "2000000", "--attempts", "1", "--seed", "1",
            "-o", str(tmp_path / "conversations.jsonl"), "--rejects", str(tmp_path / "failed.jsonl"),
            deadline=120,
        )  # fmt: skip
    assert not ran.killed and ran.exit_code == 0, ran.stderr
    [row] = read_jsonl(tmp_path / "failed.jsonl")
    assert row["simulation"]["ended_by"] == "user_stop"


def _agent_naming_a_call(name: Any) -> Any:
    """An agent that first calls a tool named ``name`` (any JSON value), then adds the note and says so; a user that asks, then stops."""

    def handle(request: Received) -> Reply:
        body = request.json
        if str(body["messages"][0].get("content", "")).startswith(_USER_RULES):
            done = any(message.get("content") == "The note is added." for message in body["messages"])
            return Reply.chat("###STOP###" if done else "Please add a note that says hello.")
        answer = completion("", str(body["model"]), 11, 7)
        results = sum(1 for message in body["messages"] if message["role"] == "tool")
        if results < 2:
            called, arguments = (name, {}) if results == 0 else ("add_note", {"text": "hello"})
            function = {"name": called, "arguments": orjson.dumps(arguments).decode()}
            answer["choices"][0]["message"].update(
                content=None, tool_calls=[{"id": f"c{results}", "type": "function", "function": function}]
            )
        else:
            answer["choices"][0]["message"]["content"] = "The note is added."
        return Reply(body=answer)

    return handle


@pytest.mark.parametrize("name", [{"x": 1}, 5, ["add_note"]])
def test_a_call_whose_name_is_no_string_is_never_written_as_one(workshop: Path, tmp_path: Path, name: Any) -> None:
    """The row keeps what the model said: a name that was an object is not turned into the text of one (`{'x': 1}`),
    which a verified conversation would have handed to a trainer as a call the model made."""
    row = _the_one_failed(_agent_naming_a_call(name), workshop, tmp_path)
    assert (row["rejected_by"], row["reason"]) == ("trajectory_check", "invalid_tool_call"), row["reason_detail"]
    [odd] = [call for message in row["messages"] for call in message.get("tool_calls") or ()][:1]
    assert odd["function"]["name"] == ""
