"""Per-minute limits, on a simulated clock: no test waits a real minute."""

from __future__ import annotations

import asyncio

import pytest

from apigen_cli.llm.ratelimit import MinuteLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_requests_per_minute_wait_for_the_oldest_to_leave_the_window() -> None:
    clock = FakeClock()
    limiter = MinuteLimiter(3, clock=clock, sleep=clock.sleep)

    async def scenario() -> list[float]:
        times = []
        for _ in range(7):
            await limiter.acquire(1)
            times.append(clock.now - 1000.0)
            clock.now += 1.0  # one second between requests
        return times

    times = run(scenario())
    assert times == [0.0, 1.0, 2.0, 60.0, 61.0, 62.0, 120.0]
    assert limiter.used <= 3


def test_an_amount_larger_than_the_limit_waits_for_an_empty_window_instead_of_forever() -> None:
    clock = FakeClock()
    limiter = MinuteLimiter(100, clock=clock, sleep=clock.sleep)

    async def scenario() -> None:
        await limiter.acquire(30)
        await limiter.acquire(500)

    run(scenario())
    assert clock.now - 1000.0 == pytest.approx(60.0)


def test_a_token_estimate_is_corrected_by_the_real_count() -> None:
    clock = FakeClock()
    limiter = MinuteLimiter(1000, clock=clock, sleep=clock.sleep)

    async def scenario() -> None:
        ticket = await limiter.acquire(900)  # estimated generously
        limiter.adjust(ticket, 200)  # the reply used far less
        await limiter.acquire(700)  # fits at once thanks to the correction

    run(scenario())
    assert clock.slept == []
    assert limiter.used == 900


def test_waiters_are_served_in_arrival_order() -> None:
    clock = FakeClock()
    limiter = MinuteLimiter(1, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def one(index: int) -> None:
        await limiter.acquire(1)
        order.append(index)

    async def scenario() -> None:
        await asyncio.gather(*(one(index) for index in range(5)))

    run(scenario())
    assert order == [0, 1, 2, 3, 4]
    assert clock.now - 1000.0 == pytest.approx(240.0)


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MinuteLimiter(0)
