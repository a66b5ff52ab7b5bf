"""Finding the JSON in what a model wrote, without ever evaluating it.

Models wrap their JSON in code fences, put a sentence before it, or add a
remark after it. The reference implementation loses such rows; apigen tries,
in order: the whole text, each fenced block (```json or plain ```), then the
first balanced JSON value that parses, starting at each ``{`` or ``[``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..rows.jsonl import loads

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON|javascript|js)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()
_MAX_START_POSITIONS = 200

NOT_FOUND = object()
MISSING = object()  # a pair without a query (bare calls): the row's own query stands


def find_json(text: str) -> Any:
    """The first JSON value found in ``text``, or ``NOT_FOUND``."""
    stripped = text.strip()
    if not stripped:
        return NOT_FOUND
    try:
        return loads(stripped)
    except (ValueError, RecursionError):
        pass
    for match in _FENCE.finditer(text):
        block = match.group(1).strip()
        if block:
            try:
                return loads(block)
            except (ValueError, RecursionError):
                continue
    return _first_balanced_value(text)


def _first_balanced_value(text: str) -> Any:
    tried = 0
    position = 0
    while tried < _MAX_START_POSITIONS:
        starts = [index for index in (text.find("{", position), text.find("[", position)) if index >= 0]
        if not starts:
            break
        start = min(starts)
        tried += 1
        try:
            _value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            position = start + 1
            continue
        try:
            # The stdlib only finds where the value ends; orjson parses it, so that the rules are
            # those of everywhere else (no NaN, no lone surrogates). A whole value that breaks
            # them is skipped whole: a fragment of it is not what the model meant.
            value = loads(text[start:end])
        except (ValueError, RecursionError):
            position = end
            continue
        if isinstance(value, (dict, list)) and value:
            return value
        position = start + 1
    return NOT_FOUND


def pairs_of(parsed: Any) -> list[tuple[Any, Any]] | None:
    """Read the shapes models answer in: pairs, one pair, a wrapped list, or bare calls."""
    if isinstance(parsed, dict):
        if "query" in parsed or "answers" in parsed:
            return [(parsed.get("query", MISSING), parsed.get("answers", MISSING))]
        if "name" in parsed and ("arguments" in parsed or "parameters" not in parsed):
            return [(MISSING, [parsed])]
        if isinstance(parsed.get("tool_calls"), list):
            return [(MISSING, parsed["tool_calls"])]
        lists = [value for value in parsed.values() if isinstance(value, list)]
        if len(lists) == 1:  # {"pairs": [...]}, as JSON-object mode makes models write
            return pairs_of(lists[0])
        return None
    if isinstance(parsed, list) and parsed:
        if all(isinstance(item, dict) and ("query" in item or "answers" in item) for item in parsed):
            return [(item.get("query", MISSING), item.get("answers", MISSING)) for item in parsed]
        if all(isinstance(item, dict) and "name" in item for item in parsed):
            return [(MISSING, parsed)]
    return None


def parse_pairs(text: str) -> list[tuple[Any, Any]] | None:
    """The ``(query, answers)`` pairs a model's text holds, or ``None`` when it holds none."""
    parsed = find_json(text)
    return None if parsed is NOT_FOUND else pairs_of(parsed)
