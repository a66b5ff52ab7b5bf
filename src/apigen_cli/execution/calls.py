"""What a call is and how it ended, and the options of the two ways calls run.

Kept apart from ``executor`` so that the REST caller, the worker pool and the
stages can all speak of outcomes without importing one another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_KEY_VARIABLES
from ..problems import TOO_DEEP, may_be_too_deep, too_deep, too_deep_message, valid_json
from ..redaction import Redactor
from .worker import shorten

if TYPE_CHECKING:
    import httpx
    from tenacity import RetryCallState


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one call: ``result`` when ``ok``, else a stable ``code`` with the error's type and message."""

    ok: bool
    result: Any = None
    code: str = ""
    error_type: str = ""
    message: str = ""
    truncated: bool = False

    @classmethod
    def failure(cls, code: str, error_type: str, message: str) -> Outcome:
        return cls(False, None, code, error_type, message)

    def redacted(self, secrets: Iterable[str] | Redactor) -> Outcome:
        """This outcome with ``secrets`` (and their long pieces) cut out of its result and message."""
        redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
        if not redactor:
            return self
        return replace(self, result=redactor.value(self.result), message=redactor.text(self.message))


def recorded(value: Any, max_chars: int, text: bytes | None = None) -> Outcome:
    """A server's answer (REST, MCP) as a call's outcome, held to the bounds of every value apigen reads.

    Nested past ``MAX_DEPTH`` it fails the call (``too_deep``): no later stage could write it;
    a lone surrogate becomes U+FFFD; then it is cut to ``max_chars``. ``text``, the answer's
    bytes when there are some, spares the depth walk to an answer with few brackets.
    """
    if text is None or may_be_too_deep(text):
        path = too_deep(value)
        if path is not None:
            return Outcome.failure(TOO_DEEP, "TooDeep", f"the result's {too_deep_message(path)}")
    result, truncated = shorten(valid_json(value), max_chars)
    return Outcome(True, result, truncated=truncated)


class Pending:
    """A call handed to the executor; ``outcome`` is set when it has ended."""

    __slots__ = ("call_id", "name", "arguments", "outcome")

    def __init__(self, call_id: int, name: str, arguments: Any) -> None:
        self.call_id = call_id
        self.name = name
        self.arguments = arguments
        self.outcome: Outcome | None = None

    @property
    def what(self) -> str:
        """The call, in words: what a timeout or a crash message names."""
        return f"`{self.name}`"


@dataclass(frozen=True)
class ExecutorOptions:
    """How Python functions run. ``workers=None`` means one per CPU; ``memory_mb=0`` means no limit."""

    workers: int | None = None
    timeout: float = 10.0
    memory_mb: int = 2048
    max_result_chars: int = 4000
    pass_env: tuple[str, ...] = ()
    key_variables: tuple[str, ...] = DEFAULT_KEY_VARIABLES  # where apigen's keys are: their values never come back
    startup_timeout: float = 60.0
    on_output: Callable[[str], None] | None = None  # receives what functions print, line by line


@dataclass(frozen=True)
class HttpOptions:
    """How REST calls are made: per-attempt ``timeout``, calls in flight, retries after the first attempt.

    ``Retry-After`` is honoured up to ``retry_after_cap`` seconds; ``total_seconds`` caps
    one call with all its retries. ``max_reply_bytes`` caps a reply's decoded size
    (past it the row fails, ``reply_too_large``). ``redirects``: ``follow`` (to another
    origin without the headers that took environment values), ``same-origin`` (others
    fail the call) or ``none`` (the redirect itself is the reply). ``wait`` replaces the backoff between retries (tests
    pass ``tenacity.wait_none()``), ``transport`` the network (``httpx.MockTransport``).
    """

    timeout: float = 10.0
    concurrency: int = 8
    retries: int = 2
    retry_after_cap: float = 30.0
    total_seconds: float = 120.0
    max_reply_bytes: int = 4 * 1024 * 1024
    redirects: str = "follow"
    wait: Callable[[RetryCallState], float] | None = None
    transport: httpx.BaseTransport | None = None
