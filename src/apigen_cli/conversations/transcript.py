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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..problems import RowProblem, show_value
from ..rows.chat import MAX_CALLS, ToolCall, arguments_object, read_chat

ENVIRONMENT = "environment"
MESSAGES = "messages"
ACTIONS = "actions"
OUTPUTS = "outputs"


@dataclass(frozen=True)
class Transcript:
    """What a conversation row says, read and checked for shape."""

    environment: dict[str, dict[str, Any]]
    calls: list[ToolCall]
    actions: list[dict[str, Any]]
    outputs: list[str] = field(default_factory=list)
    assistant_texts: list[str] = field(default_factory=list)
    tool_messages: dict[str, Any] = field(default_factory=dict)  # call id -> the tool message's content


def read_environment(row: Mapping[str, Any], *, required: bool = True) -> dict[str, dict[str, Any]]:
    """The row's ``environment``: class names to their initial state (each an object).

    ``required=False``: the environment is not the row's to name (an MCP server, which starts in its own
    state), so a row without one reads as none."""
    environment = row.get(ENVIRONMENT)
    if environment is None and not required:
        return {}
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
        arguments = arguments_object(
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


def read_transcript(row: Mapping[str, Any], *, environment_required: bool = True) -> Transcript:
    """The conversation row read whole, or a ``RowProblem`` saying what keeps it from being checked."""
    environment = read_environment(row, required=environment_required)
    actions = read_actions(row)
    outputs = read_outputs(row)
    chat = read_chat(row.get(MESSAGES))
    return Transcript(environment, chat.calls, actions, outputs, chat.assistant_texts, chat.tool_messages)


def told(output: str, texts: list[str]) -> bool:
    """Whether the agent told the user ``output``: in one of its messages, case and commas aside (tau-bench's rule)."""
    wanted = _plain(output)
    return any(wanted in _plain(text) for text in texts)


def missing_outputs(transcript: Transcript) -> list[str]:
    """The expected outputs no assistant message holds."""
    return [output for output in transcript.outputs if not told(output, transcript.assistant_texts)]


def _plain(text: str) -> str:
    return text.lower().replace(",", "")
