"""Conversation rows as training files: ``messages`` (TRL), ``openai`` and ``sharegpt`` (APIGen-MT-5k's shape).

A conversation row is what ``trajectory-check`` reads and keeps (``rows.chat``): chat
``messages`` with native ``tool_calls`` and ``tool`` messages, its ``environment``, and, once
kept, per-call labels backed by state (``trajectory_check.calls``). Its tools are the row's own
``tools`` when it has them, else those of the environment's API library (``--tools``, as
``library from-python --class`` writes it: the tools of the classes the row's ``environment``
names), which is what the agent was offered. A call to a tool not offered is ``unknown_tool``:
a template would render a call to a tool the prompt never showed.

- ``messages``: the chat as it is, ``arguments`` as objects, call ids of nine letters and
  digits (``export_shared.call_id``), each ``tool`` message with its ``tool_call_id`` and ``name``.
- ``openai``: the same with ``arguments`` as JSON strings and ids ``call_<row>_<n>``.
- ``sharegpt``: ``conversations`` of ``human``/``gpt``/``function_call``/``observation``, the
  leading system message (the policy) as ``system``, ``tools`` a JSON string of JSON Schema
  function definitions, as Salesforce/APIGen-MT-5k and LLaMA-Factory have it. A calling turn
  is one ``function_call`` turn (a list for parallel calls), the results that follow one
  ``observation`` turn (a JSON list of them for parallel calls). The turns must alternate and
  end on the agent's turn (LLaMA-Factory drops a conversation otherwise): the turns after the
  agent's last are left out and said, a conversation that does not alternate is ``not_alternating``.

Each record carries ``call_labels``: per call, in order, its trajectory-check label (``ok``,
``changed_state``, ``change_kept``) and ``turn``, the index of the message (or ShareGPT turn)
that made it, so that a trainer can mask the turns whose calls did not survive.

``per_turn`` writes one sample per assistant turn, the conversation before it as the prompt
(how xLAM's training code reads multi-turn data): ``messages`` as TRL's conversational
prompt-completion (``prompt``, ``completion``), ``openai`` as the conversation up to the turn
with every earlier assistant message at ``weight: 0``, ``sharegpt`` as the turns up to it
(train with LLaMA-Factory's ``mask_history``). Each sample names its ``turn`` and carries the
labels of its own calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..problems import RowProblem, show_value
from ..rows.chat import Chat, read_chat
from ..rows.records import ID, MESSAGES, TOOLS, Row, tools_of
from ..schema.dialects import Note, to_json_schema
from .export_shared import WriteOptions, call_id

Records = Iterator[dict[str, Any]]
CALL_LABELS = "call_labels"
TURN = "turn"
LABELS_FROM = ("trajectory_check", "calls")  # where trajectory-check leaves its per-call labels
ENVIRONMENT = "environment"
AGENT_TURNS = ("gpt", "function_call")
OTHER_TURNS = ("human", "observation")


@dataclass(frozen=True)
class Conversation:
    """A conversation row read for export: its chat, its tools as JSON Schema functions, its labels if checked."""

    id: Any
    chat: Chat
    tools: list[dict[str, Any]]
    labels: list[dict[str, Any]] | None

    @property
    def where(self) -> str:
        return f"row `{self.id}`"

    def labelled(self, turns: list[int]) -> dict[str, Any]:
        """``call_labels``, each label with the turn that made its call; nothing when the row has no labels."""
        if self.labels is None:
            return {}
        return {CALL_LABELS: [{**label, TURN: turn} for label, turn in zip(self.labels, turns, strict=True)]}


def read_conversation(row: Row, options: WriteOptions, notes: list[Note], *, offered_only: bool = True) -> Conversation:
    """The row read for export; with ``offered_only``, a call to a tool it was not offered is ``unknown_tool``."""
    chat = read_chat(row.get(MESSAGES))
    tools = []
    for position, tool in enumerate(_offered_tools(row, options), start=1):
        converted = to_json_schema(tool, position=position)
        notes.extend(converted.notes)
        tools.append(converted.tool)
    offered = {tool["name"] for tool in tools}
    for call in chat.calls if offered_only else []:
        if call.name not in offered:
            raise RowProblem(
                "unknown_tool",
                f"message {call.message + 1} calls `{call.name}`, which is not among the row's {len(offered)} tools",
            )
    return Conversation(row.get(ID), chat, tools, _labels(row, len(chat.calls)))


def _offered_tools(row: Row, options: WriteOptions) -> list[Any]:
    if TOOLS in row or options.library is None:
        tools = tools_of(row)
        if not isinstance(tools, list):
            raise RowProblem("invalid_tools", "`tools` should be a list of tool definitions")
        return tools
    environment = row.get(ENVIRONMENT)
    return options.library.tools_for(environment if isinstance(environment, dict) else {})


def _labels(row: Row, calls: int) -> list[dict[str, Any]] | None:
    check = row.get(LABELS_FROM[0])
    labels = check.get(LABELS_FROM[1]) if isinstance(check, dict) else None
    if labels is None:
        return None
    if not isinstance(labels, list) or len(labels) != calls or not all(isinstance(label, dict) for label in labels):
        raise RowProblem(
            "invalid_call_labels",
            f"`trajectory_check.calls` should hold one label per call ({calls}), not {show_value(labels)}",
        )
    return labels


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


# --- messages and openai -------------------------------------------------------------------------


@dataclass(frozen=True)
class _ChatLayout:
    """How one chat format writes a call's id and arguments, a calling turn and a tool message."""

    call_id: Callable[[int, int], str]
    arguments: Callable[[dict[str, Any], WriteOptions], Any]
    calling_turn: Callable[[str, list[dict[str, Any]]], dict[str, Any]]
    tool_message: Callable[[str, str, str], dict[str, Any]]


MESSAGES_LAYOUT = _ChatLayout(
    call_id=call_id,
    arguments=lambda arguments, options: json.dumps(arguments, ensure_ascii=False) if options.string_arguments else arguments,
    calling_turn=lambda text, calls: {"role": "assistant", "content": text, "tool_calls": calls},
    tool_message=lambda identifier, name, text: {"role": "tool", "tool_call_id": identifier, "name": name, "content": text},
)
_OPENAI = _ChatLayout(
    call_id=lambda row, number: f"call_{row}_{number}",
    arguments=lambda arguments, options: json.dumps(arguments, ensure_ascii=False),
    calling_turn=lambda text, calls: {"role": "assistant", **({"content": text} if text else {}), "tool_calls": calls},
    tool_message=lambda identifier, name, text: {"role": "tool", "tool_call_id": identifier, "content": text},
)


def chat_messages(
    conversation: Conversation, index: int, options: WriteOptions, notes: list[Note], layout: _ChatLayout
) -> tuple[list[dict[str, Any]], list[int]]:
    """The messages in ``layout``, and for each call the index of the message that made it."""
    source = conversation.chat.messages
    written: list[dict[str, Any]] = []
    if options.system is not None:
        if source[0].get("role") == "system":
            notes.append(
                Note("`--system` for conversations that open with their own system message (theirs is kept)", conversation.where)
            )
        else:
            written.append({"role": "system", "content": options.system})
    renamed: dict[str, tuple[str, str]] = {}  # the row's call id -> the written id and the call's name
    turns: list[int] = []
    for position, message in enumerate(source):
        role, text = message["role"], _content_text(message.get("content"))
        calls = conversation.chat.calls_of(position) if role == "assistant" else []
        if calls:
            tool_calls = []
            for call in calls:
                identifier = layout.call_id(index, len(turns))
                if call.call_id is not None:
                    renamed[call.call_id] = (identifier, call.name)
                turns.append(len(written))
                function = {"name": call.name, "arguments": layout.arguments(call.arguments, options)}
                tool_calls.append({"id": identifier, "type": "function", "function": function})
            written.append(layout.calling_turn(text, tool_calls))
        elif role == "tool":
            identifier, name = renamed[message["tool_call_id"]]
            written.append(layout.tool_message(identifier, name, text))
        else:
            written.append({"role": role, "content": text})
    return written, turns


def _chat_records(row: Row, index: int, options: WriteOptions, notes: list[Note], layout: _ChatLayout) -> Records:
    """The conversation's record, or its per-turn samples (made one at a time: a long chat gives many, each long)."""
    conversation = read_conversation(row, options, notes)
    messages, turns = chat_messages(conversation, index, options, notes, layout)
    tools = [{"type": "function", "function": tool} for tool in conversation.tools]
    head = {} if conversation.id is None else {ID: conversation.id}
    if not options.per_turn:
        return iter([{**head, "messages": messages, "tools": tools, **conversation.labelled(turns)}])
    return _chat_samples(conversation, messages, turns, tools, head, layout)


def _chat_samples(
    conversation: Conversation,
    messages: list[dict[str, Any]],
    turns: list[int],
    tools: list[dict[str, Any]],
    head: dict[str, Any],
    layout: _ChatLayout,
) -> Records:
    for turn, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if layout is MESSAGES_LAYOUT:
            body: dict[str, Any] = {"prompt": messages[:turn], "completion": [message]}
        else:
            earlier = [{**item, "weight": 0} if item["role"] == "assistant" else item for item in messages[:turn]]
            body = {"messages": [*earlier, {**message, "weight": 1}]}
        yield {**head, TURN: turn, **body, "tools": tools, **_labels_of_turn(conversation, turns, turn)}


def _labels_of_turn(conversation: Conversation, turns: list[int], turn: int) -> dict[str, Any]:
    labelled = conversation.labelled(turns)
    if not labelled:
        return {}
    return {CALL_LABELS: [label for label in labelled[CALL_LABELS] if label[TURN] == turn]}


def messages_records(row: Row, index: int, options: WriteOptions, notes: list[Note]) -> Records:
    return _chat_records(row, index, options, notes, MESSAGES_LAYOUT)


def openai_records(row: Row, index: int, options: WriteOptions, notes: list[Note]) -> Records:
    return _chat_records(row, index, options, notes, _OPENAI)


# --- sharegpt --------------------------------------------------------------------------------------


def sharegpt_records(row: Row, index: int, options: WriteOptions, notes: list[Note]) -> Records:
    conversation = read_conversation(row, options, notes)
    system, turns, call_turns = _sharegpt_turns(conversation, notes)
    head: dict[str, Any] = {} if conversation.id is None else {ID: conversation.id}
    tail: dict[str, Any] = {"tools": json.dumps(conversation.tools, ensure_ascii=False)}
    if system is not None:
        tail["system"] = system
    if not options.per_turn:
        return iter([{**head, "conversations": turns, **tail, **conversation.labelled(call_turns)}])
    return (
        {**head, TURN: turn, "conversations": turns[: turn + 1], **tail, **_labels_of_turn(conversation, call_turns, turn)}
        for turn in range(1, len(turns), 2)
    )


def _sharegpt_turns(conversation: Conversation, notes: list[Note]) -> tuple[str | None, list[dict[str, str]], list[int]]:
    """The system message, the turns, and for each call the turn that made it."""
    messages = conversation.chat.messages
    system = _content_text(messages[0].get("content")) if messages[0]["role"] == "system" else None
    turns: list[dict[str, str]] = []
    call_turns: list[int] = []
    results: list[str] = []
    for position in range(1 if system is not None else 0, len(messages)):
        message = messages[position]
        role, text = message["role"], _content_text(message.get("content"))
        if role != "tool" and results:
            turns.append(_observation(results))
            results = []
        if role == "system":
            raise RowProblem("not_alternating", f"message {position + 1} is a system message inside the conversation")
        if role == "user":
            turns.append({"from": "human", "value": text})
        elif role == "tool":
            results.append(text)
        elif calls := conversation.chat.calls_of(position):
            if text:
                notes.append(
                    Note(
                        "the text of an assistant turn that calls (a `function_call` turn holds the calls only)",
                        conversation.where,
                    )
                )
            value: Any = calls[0].action() if len(calls) == 1 else [call.action() for call in calls]
            call_turns += [len(turns)] * len(calls)
            turns.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
        else:
            turns.append({"from": "gpt", "value": text})
    if results:
        turns.append(_observation(results))
    closing = 0
    while turns and turns[-1]["from"] in OTHER_TURNS:
        turns.pop()
        closing += 1
    if closing:
        notes.append(
            Note("turns after the agent's last (LLaMA-Factory drops a conversation that ends on another's)", conversation.where)
        )
    _check_alternation(turns)
    return system, turns, call_turns


def _observation(results: list[str]) -> dict[str, str]:
    return {"from": "observation", "value": results[0] if len(results) == 1 else json.dumps(results, ensure_ascii=False)}


def _check_alternation(turns: list[dict[str, str]]) -> None:
    if not turns:
        raise RowProblem("not_alternating", "the conversation has no turn of the agent's")
    for number, turn in enumerate(turns, start=1):
        wanted = OTHER_TURNS if number % 2 else AGENT_TURNS
        if turn["from"] not in wanted:
            raise RowProblem(
                "not_alternating",
                f"turn {number} is `{turn['from']}` where ShareGPT wants `{wanted[0]}` or `{wanted[1]}` "
                "(LLaMA-Factory drops a conversation whose turns do not alternate)",
            )


#: a conversation's records: read and checked when the writer returns, made as they are asked for
ConversationWriter = Callable[[Row, int, WriteOptions, list[Note]], Records]

WRITERS: dict[str, ConversationWriter] = {
    "messages": messages_records,
    "openai": openai_records,
    "sharegpt": sharegpt_records,
}
