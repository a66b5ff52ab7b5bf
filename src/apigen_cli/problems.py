"""What is wrong with one row: a stable code and a message, as a value or as an exception.

Per-row problems are data, not failures of the run: a check returns a ``Problem``
(or raises ``RowProblem`` from deep inside, when returning is awkward) and the
stage turns it into the row's verdict. Every layer uses these two, so they live
below all of them.
"""

from __future__ import annotations

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
