"""What a call's result says about the call: did it fail although nothing flagged it?

Tools do not always say that they failed: an MCP server may answer
``Database error: no such table`` as plain text with ``isError`` false, a REST API
may answer 200 with ``{"error": "..."}``, a Python function may return the text of
the exception it caught. Such a result is *error-shaped*; exec-check fails the call
(``error_result``) and the offline judge rejects the row. One rule serves both, so
it lives here, below the execution and the LLM layers.

The rule (also stated in the README, "What counts as an error result"):

- an object with a non-empty ``error``, ``errors``, ``error_message``, ``errorMessage``
  or ``exception`` (a text, a list, an object or ``true``; a number is a count, not
  an error), or ``"status": "error"`` (fail/failed/failure), or ``"success": false``;
- a text that holds such an object as JSON;
- with the built-in text rule on (``--no-error-shaped`` turns it off): a text whose
  first line starts with ``Traceback (most recent call last)``, or with the word
  error/exception/failed/failure/fatal/unable/cannot/"could not" and has a ``:`` on that
  line, or with up to two words and then a word ending in ``error``/``exception``
  and a ``:`` (``Database error:``, ``sqlite3.OperationalError:``, ``Error 404:``),
  unless what follows the ``:`` is only a number, ``none`` or ``null``
  (``Error count: 0`` is data);
- a text in which one of the user's ``--error-pattern`` regular expressions finds a
  match (``re.search``; anchor it with ``^``; ``(?i)`` ignores case).

Only the first ``SCAN_CHARS`` characters of a text are read, so a huge result costs
no more than a small one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..config import compile_patterns

SCAN_CHARS = 4096

ERROR_KEYS = ("error", "errors", "error_message", "errorMessage", "exception")
_ERROR_STATUSES = frozenset(("error", "fail", "failed", "failure"))

# After the colon: a bare number, none or null is a value (`Error count: 0`), not an error message.
_NOT_A_VALUE = r"(?![ \t]*(?:[-+]?[\d.,]+%?|none|null|n/a)[ \t]*(?:[,;\r\n]|\Z))"
BUILT_IN_TEXT_RULE = re.compile(
    r"\A\s*(?:"
    r"traceback[ \t]+\(most[ \t]+recent[ \t]+call[ \t]+last\)"
    r"|(?:error|exception|failed|failure|fatal|unable|cannot|could[ \t]+not)\b[^\n:]{0,200}:" + _NOT_A_VALUE + r""
    r"|(?!(?:no|zero|without)\b)(?:[\w'-]+[ \t]+){0,2}[\w.]*(?:error|exception)(?:[ \t]+\d{3})?[ \t]*:" + _NOT_A_VALUE + r""
    r")",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ErrorShapes:
    """Which rules make a result error-shaped: the built-in text rule (``built_in``) and the user's ``patterns``."""

    built_in: bool = True
    patterns: tuple[str, ...] = ()
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", compile_patterns(self.patterns))

    def why_error(self, value: Any) -> str | None:
        """``None`` when ``value`` does not look like an error, else which rule it meets (a few words)."""
        if isinstance(value, dict):
            return _object_error(value)
        if not isinstance(value, str):
            return None
        head = value[:SCAN_CHARS]
        stripped = head.lstrip()
        if stripped.startswith("{") and len(value) <= SCAN_CHARS:
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = None
            found = _object_error(parsed) if isinstance(parsed, dict) else None
            if found is not None:
                return found
        if self.built_in and BUILT_IN_TEXT_RULE.match(head):
            return "its text reads as an error (the built-in rule; `--no-error-shaped` turns it off)"
        for pattern in self._compiled:
            if pattern.search(head):
                return f"its text matches `--error-pattern {pattern.pattern}`"
        return None


def _object_error(value: dict[str, Any]) -> str | None:
    for key in ERROR_KEYS:
        found = value.get(key)
        if found is True or (isinstance(found, str) and found.strip()) or (isinstance(found, (list, dict)) and found):
            return f"it has a non-empty `{key}`"
    status = value.get("status")
    if isinstance(status, str) and status.strip().lower() in _ERROR_STATUSES:
        return f'its `status` is "{status.strip()}"'
    if value.get("success") is False:
        return "its `success` is false"
    return None


def is_empty_result(value: Any) -> bool:
    """``None``, ``""``, ``[]`` or ``{}``: the call answered nothing."""
    return value is None or value == "" or value == [] or value == {}
