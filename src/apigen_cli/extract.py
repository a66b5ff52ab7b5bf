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

from .io import loads

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON|javascript|js)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()
_MAX_START_POSITIONS = 200

NOT_FOUND = object()


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
            value, _end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            position = start + 1
            continue
        if isinstance(value, (dict, list)) and value:
            return value
        position = start + 1
    return NOT_FOUND
