"""What is wrong with one row: a stable code and a message, as a value or as an exception.

Per-row problems are data, not failures of the run: a check returns a ``Problem``
(or raises ``RowProblem`` from deep inside, when returning is awkward) and the
stage turns it into the row's verdict. Every layer uses these two, so they live
below all of them.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import orjson


class Problem(NamedTuple):
    """Why a value or a row fails a check: a stable ``code`` and a human ``message``."""

    code: str
    message: str


class RowProblem(Exception):
    """A defect of one row (a call, a tool definition), raised inside a check and turned into that row's verdict."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(code, message)


def show_value(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a value for messages."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the bounds every value apigen reads is held to ------------------------------------

#: Levels of nesting a value apigen reads may have (a row, a model's reply, a tool's result),
#: counted from its root. Far past any real API's, and far enough below the limits of the
#: encoders and checks that come later (orjson writes at most 254) that no stage meets them.
MAX_DEPTH = 100
TOO_DEEP = "too_deep"
TOO_DEEP_TEXT = f"nested deeper than {MAX_DEPTH} levels, the most apigen reads"
_CONTAINERS = (dict, list)


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where ``value`` nests deeper than ``limit`` levels (a path such as ``answers[0].arguments``), or ``None``.

    Walks with a stack of its own, never recursion, so a value of any depth is measured.
    """
    if type(value) not in _CONTAINERS:
        return None
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            return (path if len(path) <= 60 else path[:60] + "…") or "the value"
        items = node.items() if type(node) is dict else enumerate(node)
        for key, item in items:
            if type(item) in _CONTAINERS:
                step = f"[{key}]" if type(node) is list else (f".{key}" if path else str(key))
                stack.append((item, depth + 1, path + step))
    return None


def may_be_too_deep(text: str | bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON ``text`` could nest deeper than ``limit``: it holds more brackets than that (C speed).

    Most rows and replies hold fewer brackets in all than the limit, and need no walk.
    """
    if isinstance(text, str):
        return text.count("[") + text.count("{") > limit
    return text.count(b"[") + text.count(b"{") > limit


def too_deep_message(path: str) -> str:
    return f"`{path}` is {TOO_DEEP_TEXT}"


_SURROGATES = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def valid_json(value: Any) -> Any:
    """``value`` as it is when it is valid UTF-8 JSON (orjson says so, at C speed), else through ``valid_text``."""
    if isinstance(value, str):
        return _SURROGATES.sub(REPLACEMENT, value)
    try:
        orjson.dumps(value)
    except TypeError:
        return valid_text(value)
    return value


def valid_text(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings and keys replaced by U+FFFD, so that it is valid UTF-8.

    Python strings may hold surrogates that no UTF-8 file can (``os.fsdecode`` of a file
    name that is not UTF-8 gives ``"\\udcff"``). Containers come back copied: call it where a
    value was refused for its text, not on every value. Iterative, as ``too_deep`` is.
    """
    if isinstance(value, str):
        return _SURROGATES.sub(REPLACEMENT, value)
    if not isinstance(value, (dict, list)):
        return value
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]  # (parent, key in parent, node)
    while stack:
        parent, place, node = stack.pop()
        if isinstance(node, dict):
            fresh = {_SURROGATES.sub(REPLACEMENT, key) if isinstance(key, str) else key: item for key, item in node.items()}
            parent[place] = fresh
            stack.extend((fresh, key, item) for key, item in fresh.items() if isinstance(item, (dict, list, str)))
        elif isinstance(node, list):
            fresh_list = list(node)
            parent[place] = fresh_list
            stack.extend(
                (fresh_list, index, item) for index, item in enumerate(fresh_list) if isinstance(item, (dict, list, str))
            )
        else:
            parent[place] = _SURROGATES.sub(REPLACEMENT, node)
    return root[0]
