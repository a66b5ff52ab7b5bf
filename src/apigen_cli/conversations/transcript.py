"""A conversation row read for checking: its environment, its calls in order, what the agent told the user.

A conversation row (what ``trajectory-check`` reads, and ``simulate`` will write) holds:

- ``environment``: ``{"ClassName": {initial state...}, ...}``, the classes to make and their state;
- ``messages``: the chat in OpenAI's format: ``system``, ``user``, ``assistant`` (with optional
  ``tool_calls``, each ``{"id", "type": "function", "function": {"name", "arguments"}}`` whose
  ``arguments`` is an object or a JSON string) and ``tool`` (``tool_call_id`` and ``content``);
- ``actions``: the gold calls, ``[{"name", "arguments"}]``, in order;
- ``outputs`` (optional): strings the agent must tell the user.

Reading is strict and fails closed: anything that keeps the check from being sure what the
conversation did (a call whose arguments are not an object, a tool message answering no call,
a row with no environment) is a ``RowProblem`` with its own code, never a pass. Nothing here
runs user code: replaying the calls is the executor's job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..problems import RowProblem, show_value

ENVIRONMENT = "environment"
MESSAGES = "messages"
ACTIONS = "actions"
OUTPUTS = "outputs"
ROLES = ("system", "user", "assistant", "tool")
MAX_CALLS = 1_000  # a conversation with more tool calls than this is refused, not replayed


@dataclass(frozen=True)
class ToolCall:
    """One call the agent made: where it stands among the messages, its id, name and arguments."""

    message: int  # the index of the assistant message that made it
    call_id: str | None
    name: str
    arguments: dict[str, Any]

    def action(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Transcript:
    """What a conversation row says, read and checked for shape."""

    environment: dict[str, dict[str, Any]]
    calls: list[ToolCall]
    actions: list[dict[str, Any]]
    outputs: list[str] = field(default_factory=list)
    assistant_texts: list[str] = field(default_factory=list)
    tool_messages: dict[str, Any] = field(default_factory=dict)  # call id -> the tool message's content


def read_environment(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The row's ``environment``: class names to their initial state (each an object)."""
    environment = row.get(ENVIRONMENT)
    if environment is None:
        raise RowProblem("no_environment", "the row has no `environment` (class names to their initial state)")
    if not isinstance(environment, dict) or not environment:
        raise RowProblem(
            "invalid_environment", f"`environment` should be an object of class names, not {show_value(environment)}"
        )
    for name, config in environment.items():
        if not isinstance(config, dict):
            raise RowProblem(
                "invalid_environment", f"`environment.{name}` should be an object (its initial state), not {show_value(config)}"
            )
    return environment


def read_actions(row: Mapping[str, Any], field_name: str = ACTIONS) -> list[dict[str, Any]]:
    """The gold calls: a list of ``{"name", "arguments"}`` (``arguments`` an object; absent means none)."""
    actions = row.get(field_name)
    if actions is None:
        raise RowProblem("no_actions", f"the row has no `{field_name}` (the gold calls, which the check replays)")
    if not isinstance(actions, list):
        raise RowProblem("invalid_actions", f"`{field_name}` should be a list of calls, not {show_value(actions)}")
    if len(actions) > MAX_CALLS:
        raise RowProblem("invalid_actions", f"`{field_name}` holds {len(actions)} calls, more than the {MAX_CALLS} a row may")
    read = []
    for position, action in enumerate(actions, start=1):
        if not isinstance(action, dict) or not isinstance(action.get("name"), str) or not action["name"]:
            raise RowProblem(
                "invalid_actions", f"`{field_name}` call {position} should be an object with a `name`, not {show_value(action)}"
            )
        arguments = _arguments(
            action.get("arguments", {}), f"`{field_name}` call {position} `{action['name']}`", "invalid_actions"
        )
        read.append({"name": action["name"], "arguments": arguments})
    return read


def read_outputs(row: Mapping[str, Any]) -> list[str]:
    outputs = row.get(OUTPUTS, [])
    if outputs is None:
        return []
    if not isinstance(outputs, list) or not all(isinstance(output, str) for output in outputs):
        raise RowProblem("invalid_outputs", f"`outputs` should be a list of strings, not {show_value(outputs)}")
    return outputs


def read_transcript(row: Mapping[str, Any]) -> Transcript:
    """The conversation row read whole, or a ``RowProblem`` saying what keeps it from being checked."""
    environment = read_environment(row)
    actions = read_actions(row)
    outputs = read_outputs(row)
    messages = row.get(MESSAGES)
    if not isinstance(messages, list) or not messages:
        raise RowProblem(
            "invalid_messages", f"`messages` should be a non-empty list of chat messages, not {show_value(messages)}"
        )
    calls: list[ToolCall] = []
    texts: list[str] = []
    answered: dict[str, Any] = {}
    for index, message in enumerate(messages):
        where = f"message {index + 1}"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RowProblem("invalid_messages", f"{where} should be a chat message with a role of {', '.join(ROLES)}")
        role, content = message["role"], message.get("content")
        if content is not None and not isinstance(content, str) and role != "tool":
            raise RowProblem("invalid_messages", f"{where}: `content` should be text, not {show_value(content)}")
        if role == "assistant":
            if content:
                texts.append(content)
            calls.extend(_tool_calls(message, index, where))
            if len(calls) > MAX_CALLS:
                raise RowProblem("invalid_messages", f"the conversation makes more than {MAX_CALLS} tool calls")
        elif role == "tool":
            call_id = message.get("tool_call_id")
            known = {call.call_id for call in calls}
            if not isinstance(call_id, str) or call_id not in known:
                raise RowProblem(
                    "invalid_messages",
                    f"{where} is a tool message answering no earlier call (`tool_call_id` {show_value(call_id)})",
                )
            if call_id in answered:
                raise RowProblem("invalid_messages", f"{where} answers the call `{call_id}` a second time")
            answered[call_id] = content
    return Transcript(environment, calls, actions, outputs, texts, answered)


def _tool_calls(message: Mapping[str, Any], index: int, where: str) -> list[ToolCall]:
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise RowProblem("invalid_messages", f"{where}: `tool_calls` should be a list, not {show_value(tool_calls)}")
    read = []
    for number, call in enumerate(tool_calls, start=1):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise RowProblem("invalid_tool_call", f"{where}, tool call {number}: no `function` with a `name`")
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise RowProblem(
                "invalid_tool_call", f"{where}, tool call {number}: `id` should be a string, not {show_value(call_id)}"
            )
        arguments = _arguments(
            function.get("arguments", {}), f"{where}, tool call {number} `{function['name']}`", "invalid_tool_call"
        )
        read.append(ToolCall(index, call_id, function["name"], arguments))
    return read


def _arguments(value: Any, where: str, code: str) -> dict[str, Any]:
    """Arguments as an object: given as one, as a JSON string of one, or absent (none)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise RowProblem(code, f"{where}: `arguments` is a string that is not JSON: {show_value(value)}") from None
    if not isinstance(value, dict):
        raise RowProblem(code, f"{where}: `arguments` should be an object, not {show_value(value)}")
    return value


def told(output: str, texts: list[str]) -> bool:
    """Whether the agent told the user ``output``: in one of its messages, case and commas aside (tau-bench's rule)."""
    wanted = _plain(output)
    return any(wanted in _plain(text) for text in texts)


def missing_outputs(transcript: Transcript) -> list[str]:
    """The expected outputs no assistant message holds."""
    return [output for output in transcript.outputs if not told(output, transcript.assistant_texts)]


def _plain(text: str) -> str:
    return text.lower().replace(",", "")
