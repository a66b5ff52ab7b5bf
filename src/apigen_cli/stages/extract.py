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

from ..problems import may_be_too_deep, too_deep
from ..rows.jsonl import loads

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON|javascript|js)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()
_MAX_START_POSITIONS = 200

NOT_FOUND = object()
MISSING = object()  # a pair without a query (bare calls): the row's own query stands
TOO_DEEP_JSON = object()  # what ``find_json`` returns, when asked, for a value nested past ``MAX_DEPTH``


def find_json(text: str, *, if_too_deep: Any = NOT_FOUND) -> Any:
    """The first JSON value found in ``text``, or ``NOT_FOUND``.

    A value nested deeper than apigen reads (``problems.MAX_DEPTH``) is not used: ``if_too_deep``
    comes back instead (``NOT_FOUND`` unless the caller wants to say why).
    """
    value = _first_json(text)
    if value is not NOT_FOUND and may_be_too_deep(text) and too_deep(value) is not None:
        return if_too_deep
    return value


def _first_json(text: str) -> Any:
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


_SIGNIFICANT = re.compile(r'[\[\]{}"\\\n\r]')
_CLOSERS = {"]": "[", "}": "{"}
_OPENERS = re.compile(r"[\[{]")
#: Characters the search may walk over in all, per character of the text (plus a floor): linear.
_WORK_PER_CHARACTER = 4
_WORK_FLOOR = 1 << 20


def _first_balanced_value(text: str) -> Any:
    """The first non-empty object or array that parses, trying each ``{`` or ``[`` in turn.

    Linear in the text: a scan from one opener finds where its value must end (strings
    and nesting tracked), and records on the way every nested pair it saw close, and
    every opener it saw left open at the end of the text (which no later scan can close
    either), so nested starts rarely need a scan of their own; all the scanning together
    is held to a few passes over the text, and each candidate is parsed once.
    """
    budget = _WORK_PER_CHARACTER * len(text) + _WORK_FLOOR
    known_end: dict[int, int] = {}  # opener -> index after its closer
    never_closes: set[int] = set()
    tried = 0
    skip_before = 0  # inside a whole value that broke orjson's rules: no fragment of it is tried
    for match in _OPENERS.finditer(text):
        start = match.start()
        if start < skip_before or start in never_closes:
            continue
        if tried >= _MAX_START_POSITIONS or budget <= 0:
            break
        tried += 1
        end = known_end.get(start)
        if end is None:
            end, scanned = _scan_value(text, start, known_end, never_closes)
            budget -= scanned
            if end is None:
                continue
        span = text[start:end]
        budget -= len(span)  # parsing costs its length too
        try:
            value = loads(span)
        except (ValueError, RecursionError):
            # The stdlib finds values orjson refuses (NaN, lone surrogates): such a value is
            # skipped whole, since a fragment of it is not what the model meant.
            budget -= len(span)
            try:
                _DECODER.decode(span)
            except (ValueError, RecursionError):
                continue
            skip_before = end
            continue
        if isinstance(value, (dict, list)) and value:
            return value
    return NOT_FOUND


def _scan_value(text: str, start: int, known_end: dict[int, int], never_closes: set[int]) -> tuple[int | None, int]:
    """Where the value opened at ``start`` ends (the index after its closer), or ``None``; and how far the scan went.

    Strings are tracked (a backslash escapes the next character; a raw line break ends
    the attempt, as JSON strings cannot hold one); a closer of the wrong kind ends it too.
    """
    stack = [start]
    in_string = False
    position = start + 1
    while True:
        found = _SIGNIFICANT.search(text, position)
        if found is None:
            if not in_string:  # the text ended with these still open: no start among them can close
                never_closes.update(stack)
            return None, len(text) - start
        index = found.start()
        char = text[index]
        position = index + 1
        if in_string:
            if char == '"':
                in_string = False
            elif char == "\\":
                position = index + 2
            elif char in "\n\r":
                return None, index - start
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            stack.append(index)
        elif char in "]}":
            opener = stack.pop()
            if text[opener] != _CLOSERS[char]:
                return None, index - start
            known_end[opener] = index + 1
            if not stack:
                return index + 1, index + 1 - start
        elif char == "\\":  # outside a string: not JSON
            return None, index - start


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
