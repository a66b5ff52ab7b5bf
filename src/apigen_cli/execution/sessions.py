"""Sessions: a sequence of calls on fresh instances of a row's environment, in one worker.

A ``SessionRequest`` names the environment (``{"ClassName": {config}}``) and the calls
to make in order; its ``SessionOutcome`` says how it went: the initial and final
states (canonical, per class name), the final digest, and per call its result or
error, whether it changed the state and the changes it made. A session that cannot
start, whose worker crashes or whose call times out has a ``problem``: that session
ends with its reason, never the run.

How the worker runs one (a fork per session, so nothing passes from one to the
next) is told in ``worker.run_session``; the frames it sends are read here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..environments.state import Change, Diff
from ..problems import Problem
from .calls import Outcome


@dataclass(frozen=True)
class SessionRequest:
    """One session to run: ``calls`` are ``{"name", "arguments"}`` objects, run in order on fresh instances."""

    key: Any
    environment: Any
    calls: Sequence[Mapping[str, Any]] = ()
    defaults: bool = False  # the classes made with no arguments, nothing loaded: their own default state


@dataclass(frozen=True)
class SessionCall:
    """One call of a session: its ``outcome`` (the result, shortened as a function's is, or the error),
    and what it did to the state.

    ``changed`` is whether the state's digest after the call differs from before
    (``None`` when the state after it could not be read, or the call ended the session);
    ``changes`` is the diff, at most ``worker.CHANGES_PER_CALL`` entries with their values
    shortened (``changes.omitted`` counts the rest).
    """

    name: str
    arguments: Any
    outcome: Outcome
    changed: bool | None = False
    changes: Diff = field(default_factory=Diff)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome.ok


@dataclass(frozen=True)
class SessionOutcome:
    """How a session went; ``problem`` is set when it could not start or did not end normally.

    After a problem, ``calls`` holds the calls that ran (the last one is the call that
    crashed or timed out, when one did) and ``final_state`` is ``None``.
    """

    key: Any
    problem: Problem | None
    initial_state: dict[str, Any] | None
    final_state: dict[str, Any] | None
    final_digest: str | None
    calls: tuple[SessionCall, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.problem is None


class SessionPending:
    """A session handed to the pool: it takes the worker's frames one by one until it has its outcome."""

    __slots__ = ("call_id", "request", "calls", "initial_state", "outcome", "started", "_done_calls", "_seconds")

    def __init__(self, call_id: int, request: SessionRequest) -> None:
        self.call_id = call_id
        self.request = request
        self.calls: list[tuple[str, Any]] = []
        self.initial_state: dict[str, Any] | None = None
        self.outcome: SessionOutcome | None = None
        self.started = time.monotonic()
        self._done_calls: list[SessionCall] = []
        self._seconds = 0.0
        self.add_calls(request.calls)

    def add_calls(self, calls: Sequence[Mapping[str, Any]]) -> None:
        """More calls to run after those asked so far (a live session's next step); a call without a name ends the session."""
        for call in calls:
            name = call.get("name") if isinstance(call, Mapping) else None
            if not isinstance(name, str):
                number = len(self.calls) + 1
                self._finish(Problem("invalid_call", f"call {number} of the session is not an object with a string `name`"))
                return
            self.calls.append((name, call.get("arguments", {})))

    @property
    def done_calls(self) -> tuple[SessionCall, ...]:
        """The calls that have ended so far, in order."""
        return tuple(self._done_calls)

    @property
    def what(self) -> str:
        """The step that is running, in words: what a timeout or a crash message names."""
        index = len(self._done_calls)
        if self.initial_state is None:
            return "loading the environment"
        if index < len(self.calls):
            return f"`{self.calls[index][0]}` (call {index + 1} of the session)"
        return "reading the final state"

    @property
    def seconds(self) -> float:
        return self._seconds

    def frame(self) -> dict[str, Any]:
        """What the worker is sent."""
        frame = {
            "session": self.call_id,
            "environment": self.request.environment,
            "calls": [[name, arguments] for name, arguments in self.calls],
        }
        if self.request.defaults:
            frame["defaults"] = True
        return frame

    def take(self, message: list[Any]) -> bool:
        """One frame of the worker's (``worker.run_session``); whether the session has ended."""
        kind = message[1]
        if kind == "start":
            _sid, _kind, problem, initial = message
            if problem is not None:
                self._finish(Problem(*problem))
                return True
            self.initial_state = initial
            return False
        if kind == "call":
            _sid, _kind, code, payload, truncated, seconds, changed, changes, omitted = message
            name, arguments = self.calls[len(self._done_calls)]
            diff = Diff([Change(*change) for change in changes], omitted)
            if code is None:
                outcome = Outcome(True, payload, truncated=truncated)
            else:
                outcome = Outcome.failure(code, payload.get("type", ""), payload.get("message", ""))
            self._done_calls.append(SessionCall(name, arguments, outcome, changed, diff, seconds))
            return False
        if kind == "end":
            _sid, _kind, problem, final, final_digest, seconds = message
            self._seconds = float(seconds)
            if problem is not None:
                self._finish(Problem(*problem))
            else:
                self._finish(None, final, final_digest)
            return True
        # "ended": the session's process died, or failed in apigen's own code
        _sid, _kind, code, error_type, text, seconds = message
        self._seconds = float(seconds)
        self.fail(Outcome.failure(code, error_type, f"{self.what} ended its session: {text}"))
        return True

    def fail(self, outcome: Outcome) -> None:
        """End the session with a failure of its worker (a timeout, a crash); the running call is recorded as failed."""
        index = len(self._done_calls)
        if self.initial_state is not None and index < len(self.calls):
            name, arguments = self.calls[index]
            self._done_calls.append(SessionCall(name, arguments, outcome, changed=None))
        if not self._seconds:
            self._seconds = time.monotonic() - self.started
        self._finish(Problem(outcome.code, outcome.message))

    def _finish(self, problem: Problem | None, final: dict[str, Any] | None = None, final_digest: str | None = None) -> None:
        self.outcome = SessionOutcome(
            key=self.request.key,
            problem=problem,
            initial_state=self.initial_state,
            final_state=final,
            final_digest=final_digest,
            calls=tuple(self._done_calls),
            seconds=self._seconds,
        )


class LiveRun(Protocol):
    """One live session, as a conversation drives it: ``run`` its calls step by step, ``end`` for the final state,
    ``close`` in any case (``live.LiveSession`` on Python classes, ``mcp_environment.McpLiveSession`` on a server)."""

    @property
    def outcome(self) -> SessionOutcome | None: ...

    def run(self, calls: Sequence[Mapping[str, Any]]) -> tuple[SessionCall, ...]: ...

    def end(self) -> SessionOutcome: ...

    def close(self) -> None: ...

    def __enter__(self) -> LiveRun: ...

    def __exit__(self, *exc_info: object) -> None: ...


class LiveEnvironment(Protocol):
    """What simulate asks of its environment, from any thread: a live session per conversation (``open``), a session
    run whole while the caller does other things (``start_whole``: the gold's), sessions run whole (the check's), and
    ``close``, which ends every session at once, a call in flight too."""

    def open(self, key: Any, environment: Any, *, defaults: bool = False) -> LiveRun: ...

    def start_whole(self, request: SessionRequest) -> LiveRun: ...

    def run_sessions(self, requests: Iterable[SessionRequest]) -> Iterator[SessionOutcome]: ...

    def close(self) -> None: ...
