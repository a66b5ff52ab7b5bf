"""One retry policy for every call apigen makes over the network: LLM requests and REST calls.

Both retry the same things (transport errors, 408, 429, 5xx, and whatever else a
caller names), honour the server's ``Retry-After`` (seconds, an HTTP date, or
OpenAI's ``retry-after-ms``), back off exponentially with jitter in between, and
stop after a number of attempts or seconds. Only the numbers differ, so they are
parameters of one ``RetryPolicy`` rather than two pieces of code.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tenacity import RetryCallState

Wait = Callable[[RetryCallState], float]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait as the server asks: ``retry-after-ms``, else ``Retry-After`` (seconds or a date).

    ``headers`` must look names up without regard to case, as ``httpx.Headers`` does.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def exponential_backoff(first: float = 0.5, cap: float = 30.0, jitter: float = 0.5) -> Wait:
    """``first``, twice that, four times … up to ``cap`` seconds, plus up to ``jitter`` of it at random.

    tenacity's own helper changed between versions, hence this one.
    """

    def wait(state: RetryCallState) -> float:
        exponent = min(max(0, state.attempt_number - 1), 16)
        delay = min(cap, first * 2.0**exponent)
        return delay * (1 + random.random() * jitter)

    return wait


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed call is tried again, and how long to wait before it.

    ``attempts`` counts the first one; ``max_seconds`` bounds a call with all its
    waits. ``statuses`` are retried besides every 5xx. ``retry_after_cap`` bounds
    how long a server may ask apigen to wait. ``backoff`` is the wait when the
    server asks for none (tests pass ``tenacity.wait_none()``).
    """

    attempts: int = 3
    max_seconds: float = 120.0
    statuses: frozenset[int] = frozenset({408, 429})
    retry_after_cap: float = float("inf")
    backoff: Wait | None = None

    def retryable_status(self, status: int) -> bool:
        return status >= 500 or status in self.statuses

    def wait_seconds(self, state: RetryCallState, retry_after: float | None) -> float:
        """The backoff, or the server's ``Retry-After`` (capped) when that is longer."""
        backoff = float((self.backoff or _DEFAULT_BACKOFF)(state))
        if retry_after is None:
            return backoff
        return max(backoff, min(retry_after, self.retry_after_cap))


_DEFAULT_BACKOFF = exponential_backoff()
