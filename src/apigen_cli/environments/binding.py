"""Calling user code with a JSON arguments object: the arguments checked before the call, a failure in words.

One rule for every call of user code, so that a function of a library and a tool of
an environment refuse the same arguments with the same message. Pure (the standard
library), as the worker loads it beside the user's code.
"""

from __future__ import annotations

import inspect
import os
import traceback
from collections.abc import Callable
from typing import Any

_NAMED_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class Binding:
    """Keyword-only argument binding for one callable, checked before the call.

    The fast path compares names with the signature's; when something is off,
    ``inspect.Signature.bind`` words the problem as Python would.
    """

    __slots__ = ("function", "names", "required", "open", "positional_only", "signature", "is_async")

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.is_async = inspect.iscoroutinefunction(inspect.unwrap(function))
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            signature = None
        self.signature = signature
        parameters = list(signature.parameters.values()) if signature is not None else []
        self.names = frozenset(p.name for p in parameters if p.kind in _NAMED_KINDS)
        self.required = frozenset(p.name for p in parameters if p.kind in _NAMED_KINDS and p.default is p.empty)
        self.open = signature is None or any(p.kind == p.VAR_KEYWORD for p in parameters)
        self.positional_only = frozenset(p.name for p in parameters if p.kind == p.POSITIONAL_ONLY and p.default is p.empty)

    def problem(self, arguments: dict[str, Any]) -> str | None:
        """Why ``arguments`` cannot be passed by keyword, in Python's words; ``None`` when they can."""
        keys = arguments.keys()
        if self.positional_only or not self.required <= keys or (not self.open and not keys <= self.names):
            if self.signature is None:
                return None
            try:
                self.signature.bind(**arguments)
            except TypeError as error:
                return str(error)
            if self.positional_only:
                return "it takes positional-only parameters ({}), which a call cannot name".format(
                    ", ".join(sorted(self.positional_only))
                )
        return None

    def call(self, arguments: dict[str, Any]) -> Any:
        """Call with ``arguments`` by keyword; a coroutine is run to its end."""
        value = self.function(**arguments)
        if self.is_async or inspect.isawaitable(value):
            value = _await(value)
        return value


def _await(value: Any) -> Any:
    import asyncio

    async def wait() -> Any:
        return await value

    return asyncio.run(wait())


def type_name(error: BaseException) -> str:
    """``ValueError`` for builtins, ``module.Class`` for the library's own exceptions."""
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def safe_text(error: BaseException) -> str:
    """``str(error)``, even when the exception's own ``__str__`` fails."""
    for describe in (str, repr):
        try:
            return describe(error)
        except Exception:
            continue
    return ""


def exception_text(error: BaseException) -> str:
    """The exception's message, and the line of user code that raised it.

    The traceback's first frame is where the error was caught, and frames of this
    file are the call's plumbing: the line named is the user's.
    """
    text = safe_text(error) or type(error).__name__
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)[1:] if frame.filename != __file__]
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return text[:2000]
