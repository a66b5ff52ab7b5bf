"""What a stage asks of an LLM and what it gets back, whatever answers it.

Stages (``generate``, ``semantic_check``) build ``ChatRequest``s and hand them to
a ``ChatService``: the HTTP client for OpenAI-compatible endpoints, the offline
backend, or a test double. A service answers lazily and in input order, with at
most its concurrency limit of requests in flight, so a stage can stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

from ..problems import Problem

T = TypeVar("T")

OFFLINE_MODEL = "offline"


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make.

    ``key`` names the row it is for (logs, cache keys' provenance); ``model`` is one of
    the configured models (``"offline"`` for the built-in backend); ``response_schema``
    is the JSON Schema sent when JSON mode is ``schema``. ``offline_task`` describes the
    same request in structured form for the offline backend, which has no language
    model to read the messages: ``{"task": "generate", "tools": [...], "style": "simple",
    "pairs": 3, "seed": 17}`` or ``{"task": "judge", "tools": [...], "query": ..., "answers":
    [...], "execution_result": [...]}``. ``options`` are provider parameters for this
    request only (``{"temperature": 0}`` for a judge), over the run's settings.

    ``tools`` (OpenAI's ``[{"type": "function", "function": {...}}]``) are sent as the chat
    API's ``tools`` parameter, for an agent that answers with native ``tool_calls``; the
    reply's ``text`` is then the assistant message as JSON, ``{"content", "tool_calls"}``
    (``TOOL_REPLY``), so that the cache, the log and the offline backend keep it as text.
    A server that refuses ``tools`` answers the error ``tools_refused`` (``TOOLS_REFUSED``).
    """

    key: str
    model: str
    messages: list[dict[str, Any]]
    response_schema: dict[str, Any] | None = None
    offline_task: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ChatResult:
    """The outcome of one request: ``text`` on success, else ``error`` (code ``llm_error``).

    ``finish_reason`` is the provider's (``stop``, ``length``, ...) when it gave one:
    a reply cut by the token budget (``cut_off``) that cannot be read is then named
    as such (``reply_cut_off``) by the stage, not taken for a model that wrote nonsense.
    """

    text: str | None
    error: Problem | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    latency: float = 0.0
    cached: bool = False
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @property
    def cut_off(self) -> bool:
        """The reply ended because it reached ``max_tokens``."""
        return self.finish_reason == "length"


@dataclass(frozen=True)
class Tokens:
    """The tokens some requests cost this run: a reply from the cache, or the offline backend's, costs none."""

    prompt: int = 0
    completion: int = 0

    @classmethod
    def of(cls, result: ChatResult) -> Tokens:
        return cls(result.prompt_tokens, result.completion_tokens)

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.prompt + other.prompt, self.completion + other.completion)

    def as_usage(self) -> dict[str, int]:
        """As a row records it (OpenAI's names)."""
        return {"prompt_tokens": self.prompt, "completion_tokens": self.completion}


#: The error code of a request whose ``tools`` the server refused (the caller steps down to a prompt).
TOOLS_REFUSED = "tools_refused"


def tool_reply(content: str | None, tool_calls: list[dict[str, Any]]) -> str:
    """The text of a reply to a request with ``tools``: the assistant message as JSON."""
    return orjson.dumps({"content": content, "tool_calls": tool_calls}).decode()


#: A reply cut by the token budget that could not be read (raise ``--max-tokens``/``--judge-max-tokens``).
CUT_OFF = "reply_cut_off"


def cut_off_problem(result: ChatResult, flag: str, budget: int | None) -> Problem:
    """Why a reply that reached its token budget could not be used; ``flag`` is the setting that raises it."""
    spent = f" after {result.completion_tokens} tokens" if result.completion_tokens else ""
    limit = f"`{flag} {budget}`" if budget else "the provider's token limit"
    return Problem(CUT_OFF, f"the reply was cut off{spent} by {limit} before it was complete; raise `{flag}`")


@dataclass
class ModelUsage:
    """What one model cost over a run: for the stage summary and the report."""

    requests: int = 0
    failures: int = 0
    retries: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, result: ChatResult) -> None:
        self.requests += 1
        self.failures += 0 if result.ok else 1
        self.retries += max(0, result.attempts - 1)
        self.cached += 1 if result.cached else 0
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens


@dataclass
class UsageByModel:
    models: dict[str, ModelUsage] = field(default_factory=dict)

    def add(self, model: str, result: ChatResult) -> None:
        self.models.setdefault(model, ModelUsage()).add(result)


@dataclass
class LLMProgress:
    """Live counters for a progress display, read from any thread.

    ``rows_done``, ``cached``, ``failures`` and the token counts move as results come
    out of ``map``; ``in_flight``, ``requests`` and ``retries`` move as the
    background loop sends requests.
    """

    rows_done: int = 0
    in_flight: int = 0
    requests: int = 0
    retries: int = 0
    cached: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatService(Protocol):
    """Anything that answers chat requests: HTTP client, offline backend, test double."""

    usage: UsageByModel

    def map(self, items: Iterable[tuple[T, ChatRequest]]) -> Iterator[tuple[T, ChatResult]]:
        """Answer each ``(item, request)``; yield ``(item, result)`` in input order, lazily."""
        ...

    def close(self) -> None: ...


def map_optional(
    chat: ChatService, items: Iterable[tuple[T, ChatRequest | None]]
) -> Iterator[tuple[tuple[T, ChatRequest | None], ChatResult | None]]:
    """Like ``chat.map``, but items without a request pass through in their place, answered ``None``.

    A stage can then keep rows it does not send (rejected earlier, say) in input
    order without a second buffer: each rides along with the next real request.
    """
    waiting: list[T] = []

    def real() -> Iterator[tuple[tuple[list[T], T, ChatRequest], ChatRequest]]:
        for item, request in items:
            if request is None:
                waiting.append(item)
            else:
                yield (list(waiting), item, request), request
                waiting.clear()

    for (before, item, request), result in chat.map(real()):
        for skipped in before:
            yield (skipped, None), None
        yield (item, request), result
    for skipped in waiting:
        yield (skipped, None), None
