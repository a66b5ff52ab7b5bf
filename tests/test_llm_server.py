"""The scripted server's gate (tests/llm_server.py), which the kill tests rely on to hold a run at a known point."""

from __future__ import annotations

import threading

import httpx

from .llm_server import LLMServer


def ask(server: LLMServer, text: str, answers: list[str]) -> threading.Thread:
    """One chat request from a thread of its own (a held one does not return until released)."""

    def post() -> None:
        body = {"model": "test-model", "messages": [{"role": "user", "content": text}]}
        reply = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60)
        answers.append(reply.json()["choices"][0]["message"]["content"])

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def test_a_hold_straight_after_a_release_holds_the_next_request() -> None:
    """release() then hold() take effect in the order called, whenever the server's thread gets to the parked reply.

    The server's event loop is kept busy (at a known point, an Event) across both calls: a release that opened
    the gate on the server's thread would open it after the hold, and the next request would be answered.
    """
    answers: list[str] = []
    with LLMServer() as server:
        server.hold(after=0)
        first = ask(server, "first", answers)
        assert server.wait_parked(1)
        loop_free, loop_busy = threading.Event(), threading.Event()

        def busy() -> None:
            loop_busy.set()
            loop_free.wait(60)

        assert server._loop is not None
        server._loop.call_soon_threadsafe(busy)
        assert loop_busy.wait(60)
        server.release()
        server.hold(after=0)
        loop_free.set()
        first.join(60)
        assert answers == ["first"]  # the parked request was answered
        second = ask(server, "second", answers)
        try:
            assert server.wait_parked(1, seconds=30), answers  # held, as the last call asked
            assert answers == ["first"]
        finally:
            server.release()
            second.join(60)
    assert answers == ["first", "second"]
