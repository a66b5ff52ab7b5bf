"""Requests-per-minute and tokens-per-minute limits, for the HTTP chat client.

A limiter admits at most ``limit`` units in any window of 60 seconds. Waiters are
served in arrival order. A token estimate made before a request can be corrected
once the reply says how many tokens it really used.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Ticket:
    """What one acquisition took: ``amount`` units at ``time``."""

    __slots__ = ("time", "amount")

    def __init__(self, time: float, amount: float) -> None:
        self.time = time
        self.amount = amount


class MinuteLimiter:
    """At most ``limit`` units in any ``window`` seconds (60 unless told)."""

    def __init__(
        self, limit: float, *, window: float = 60.0, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if limit <= 0:
            raise ValueError("a limit must be positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._tickets: deque[Ticket] = deque()
        self._used = 0.0
        self._lock: asyncio.Lock | None = None

    @property
    def used(self) -> float:
        self._expire(self._clock())
        return self._used

    def _expire(self, now: float) -> None:
        tickets = self._tickets
        while tickets and tickets[0].time <= now - self.window:
            self._used -= tickets.popleft().amount

    async def acquire(self, amount: float = 1.0) -> Ticket:
        """Wait until ``amount`` fits in the window, then take it.

        A single amount larger than the whole limit is admitted once the window is
        empty, so an oversized request is slowed down, never stuck.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        amount = max(0.0, min(amount, self.limit))
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                if self._used + amount <= self.limit:
                    ticket = Ticket(now, amount)
                    self._tickets.append(ticket)
                    self._used += amount
                    return ticket
                await self._sleep(max(self._wait_for(amount, now), 0.001))

    def _wait_for(self, amount: float, now: float) -> float:
        """Seconds until enough old tickets expire for ``amount`` to fit."""
        excess = self._used + amount - self.limit
        for ticket in self._tickets:
            excess -= ticket.amount
            if excess <= 0:
                return ticket.time + self.window - now
        return self.window

    def adjust(self, ticket: Ticket, actual: float) -> None:
        """Correct an estimate once the real amount is known (ignored once the ticket expired)."""
        if self._clock() - ticket.time < self.window:
            self._used += actual - ticket.amount
            ticket.amount = actual
