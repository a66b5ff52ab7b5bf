"""Test doubles that keep to the real interfaces: a chat service with canned replies."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TypeVar

from apigen_cli.llm.chat import ChatRequest, ChatResult, UsageByModel
from apigen_cli.problems import Problem

T = TypeVar("T")


class CannedChat:
    """Answers requests in order from a queue of replies (text, or a Problem for a failure).

    It records every request it was sent, so tests can look at the prompts.
    When the queue runs dry it answers with ``default`` (or fails the test).
    """

    def __init__(self, replies: Iterable[str | Problem] = (), default: str | None = None) -> None:
        self.replies: deque[str | Problem] = deque(replies)
        self.default = default
        self.requests: list[ChatRequest] = []
        self.usage = UsageByModel()

    def map(self, items: Iterable[tuple[T, ChatRequest]]) -> Iterator[tuple[T, ChatResult]]:
        for item, request in items:
            self.requests.append(request)
            if self.replies:
                reply = self.replies.popleft()
            elif self.default is not None:
                reply = self.default
            else:
                raise AssertionError(f"no canned reply left for request {request.key}")
            result = (
                ChatResult(text=None, error=reply)
                if isinstance(reply, Problem)
                else ChatResult(text=reply, prompt_tokens=10, completion_tokens=5)
            )
            self.usage.add(request.model, result)
            yield item, result

    def close(self) -> None:
        pass
