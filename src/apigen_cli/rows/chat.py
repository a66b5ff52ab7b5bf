"""A chat ``messages`` list in OpenAI's format, read strictly: the roles, the texts, the calls with object arguments.

Conversation rows hold their chat this way: ``system``, ``user``, ``assistant`` (with optional
``tool_calls``, each ``{"id", "type": "function", "function": {"name", "arguments"}}`` whose
``arguments`` is an object or a JSON string) and ``tool`` (``tool_call_id`` and ``content``).
``trajectory-check`` replays what it reads here, and ``export`` writes it for trainers, so both
read it by one rule. Reading fails closed: anything that keeps a reader from being sure what
the conversation did (a call whose arguments are not an object, a tool message answering no
call) is a ``RowProblem`` with its own code, never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..problems import MAX_DEPTH, TOO_DEEP, RowProblem, show_value, too_deep

ROLES = ("system", "user", "assistant", "tool")
MAX_CALLS = 1_000  # a conversation with more tool calls than this is refused, not replayed
#: Arguments sit 7 levels down a conversation row (``messages[i].tool_calls[j].function.arguments``):
#: deeper ones, written back as objects (``export``), would make a row apigen refuses to read.
MAX_ARGUMENTS_DEPTH = MAX_DEPTH - 8
ARGUMENTS_TOO_DEEP_TEXT = f"nested deeper than {MAX_ARGUMENTS_DEPTH} levels, the most a call's arguments may be"


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
class Chat:
    """A ``messages`` list read and checked for shape."""

    messages: list[dict[str, Any]]
    calls: list[ToolCall]
    assistant_texts: list[str]
    tool_messages: dict[str, Any]  # call id -> the tool message's content

    def calls_of(self, index: int) -> list[ToolCall]:
        """The calls the message at ``index`` made."""
        return [call for call in self.calls if call.message == index]


def read_chat(messages: Any) -> Chat:
    """``messages`` read whole, or a ``RowProblem`` (``invalid_messages``, ``invalid_tool_call``) saying what is wrong."""
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
            calls.extend(tool_calls_of(message, index, where))
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
    return Chat(messages, calls, texts, answered)


def tool_calls_of(message: Mapping[str, Any], index: int, where: str) -> list[ToolCall]:
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
        arguments = arguments_object(
            function.get("arguments", {}), f"{where}, tool call {number} `{function['name']}`", "invalid_tool_call"
        )
        read.append(ToolCall(index, call_id, function["name"], arguments))
    return read


def arguments_object(value: Any, where: str, code: str) -> dict[str, Any]:
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
    deep = too_deep(value, MAX_ARGUMENTS_DEPTH)  # a JSON string hid its depth from the row's own check
    if deep is not None:
        raise RowProblem(TOO_DEEP, f"{where}: `arguments` are {ARGUMENTS_TOO_DEEP_TEXT} (at `{deep}`)")
    return value
