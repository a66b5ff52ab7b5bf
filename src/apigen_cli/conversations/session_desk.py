"""One thread that owns the executor, for conversations that run in threads of their own.

The executor's worker pool is driven by one ``selectors`` loop and is not safe to share
between threads. Conversations run side by side, each in its thread, each waiting on its
own LLM replies; when one needs its environment, it hands the desk a session and waits for
the outcome while the desk keeps every worker busy with the sessions of all of them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Protocol

from ..execution.executor import Executor
from ..execution.sessions import SessionOutcome, SessionPending, SessionRequest

_PUMP_SECONDS = 1.0  # the longest the desk waits on the workers before looking for new sessions (a hand-over wakes it)


class Desk(Protocol):
    """What a conversation asks of its environment, from any thread: ``SessionDesk`` over the worker pool,
    ``McpEnvironment`` over fresh MCP servers."""

    def submit(self, request: SessionRequest) -> Future[SessionOutcome]: ...

    def run(self, request: SessionRequest) -> SessionOutcome: ...


class SessionDesk:
    """Runs sessions for any thread on an executor only its own thread touches; a ``SessionRunner``."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._inbox: queue.SimpleQueue[tuple[SessionRequest, Future[SessionOutcome]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="apigen-session-desk", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, request: SessionRequest) -> Future[SessionOutcome]:
        """Hand a session over; its future holds the outcome (or the error that kept it from running)."""
        future: Future[SessionOutcome] = Future()
        if self._closed:
            future.set_exception(RuntimeError("the session desk is closed"))
            return future
        self._inbox.put((request, future))
        self.executor.wake()
        return future

    def run(self, request: SessionRequest) -> SessionOutcome:
        """One session, start to end."""
        return self.submit(request).result()

    def run_sessions(self, requests: Iterable[SessionRequest]) -> Iterator[SessionOutcome]:
        """Sessions run in parallel, their outcomes in request order (what ``trajectory_check`` asks of an executor)."""
        futures = [self.submit(request) for request in requests]
        for future in futures:
            yield future.result()

    def close(self) -> None:
        """Stop serving (sessions still running end with an error); the executor itself is closed by its owner."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put(None)
        self.executor.wake()
        self._thread.join()

    def _serve(self) -> None:
        running: list[tuple[SessionPending, Future[SessionOutcome]]] = []
        while True:
            for item in self._arrivals(wait=not running):
                if item is None:
                    self._fail_all(running)
                    return
                request, future = item
                try:
                    running.append((self.executor.submit_session(request), future))
                except Exception as error:  # the library cannot load: the conversation says so
                    future.set_exception(error)
            if not running:
                continue
            try:
                self.executor.pump(_PUMP_SECONDS)
            except Exception as error:  # the pool itself failed: every waiting conversation hears it
                self._fail_all(running, error)
                running = []
                continue
            still = []
            for pending, future in running:
                if pending.outcome is not None:
                    future.set_result(pending.outcome)
                else:
                    still.append((pending, future))
            running = still

    def _arrivals(self, *, wait: bool) -> list[tuple[SessionRequest, Future[SessionOutcome]] | None]:
        """What was handed over since the last look; with ``wait``, at least one thing (the desk is idle)."""
        items = [self._inbox.get()] if wait else []
        while True:
            try:
                items.append(self._inbox.get_nowait())
            except queue.Empty:
                return items

    @staticmethod
    def _fail_all(running: list[tuple[SessionPending, Future[SessionOutcome]]], error: BaseException | None = None) -> None:
        for _pending, future in running:
            if not future.done():
                future.set_exception(error or RuntimeError("the session desk was closed while the session ran"))
