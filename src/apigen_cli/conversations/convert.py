"""Conversations from elsewhere as trajectory-check rows: BFCL's multi-turn entries and tau-bench's results.

BFCL writes its multi-turn ground truth (and a model's decoded calls) as Python call syntax,
``cd(folder='document')``; ``parse_call`` reads one with ``ast`` and takes each argument with
``ast.literal_eval``, so nothing in the text ever runs. tau-bench's results already hold what a
row needs: the task's gold actions (``kwargs``) and outputs, and the conversation (``traj``) in
OpenAI's chat format; its database is the environment's state.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..rows.records import Row

MAX_CALL_CHARS = 100_000  # a call longer than this is refused before it is parsed


def parse_call(text: str) -> dict[str, Any]:
    """``cd(folder='document')`` -> ``{"name": "cd", "arguments": {"folder": "document"}}``; ``ValueError`` naming the call
    when it is not one call with keyword arguments whose values are literals."""
    shown = text if len(text) <= 80 else text[:79] + "…"
    if len(text) > MAX_CALL_CHARS:
        raise ValueError(f"the call `{shown}` is longer than {MAX_CALL_CHARS} characters")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise ValueError(f"the call `{shown}` is not Python call syntax ({type(error).__name__})") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
        raise ValueError(f"`{shown}` is not a call of a named function")
    if node.args or any(keyword.arg is None for keyword in node.keywords):
        raise ValueError(f"the call `{shown}` passes arguments by position: give each by name")
    name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        try:
            arguments[str(keyword.arg)] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise ValueError(f"the argument `{keyword.arg}` of `{shown}` is not a literal value") from None
    return {"name": name, "arguments": arguments}


def bfcl_multi_turn_row(
    entry: Mapping[str, Any], ground_truth: Sequence[Sequence[str]], calls: Sequence[Sequence[str]] | None = None
) -> Row:
    """A row of a BFCL multi-turn entry (``question``, ``initial_config``, ``involved_classes``) and its ground truth.

    ``calls`` are what a model called, per turn, as BFCL decodes them; without them the ground
    truth is the conversation too (a check of the ground truth itself on the real state).
    """
    played = ground_truth if calls is None else calls
    config = entry.get("initial_config") or {}
    messages: list[dict[str, Any]] = []
    for turn, asked in enumerate(entry["question"]):
        messages += [dict(message) for message in asked]
        made = [parse_call(text) for text in (played[turn] if turn < len(played) else [])]
        if made:
            tool_calls = [
                {
                    "id": f"t{turn}-{number}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
                }
                for number, call in enumerate(made)
            ]
            messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
    return {
        "id": entry["id"],
        "environment": {name: dict(config.get(name, {})) for name in entry["involved_classes"]},
        "messages": messages,
        "actions": [parse_call(text) for turn in ground_truth for text in turn],
    }


def tau_bench_row(result: Mapping[str, Any], database: Mapping[str, Any]) -> Row:
    """A row of one tau-bench result (``task_id``, ``trial``, ``traj``, ``info.task``), on ``database``: class name to state."""
    task = result["info"]["task"]
    return {
        "id": f"tau-{result['task_id']}-{result.get('trial', 0)}",
        "environment": dict(database),
        "instruction": task.get("instruction"),
        "messages": list(result["traj"]),
        "actions": [{"name": action["name"], "arguments": action["kwargs"]} for action in task["actions"]],
        "outputs": list(task.get("outputs") or []),
    }
