"""An MCP server as a multi-turn environment: a fresh server process for every session.

A stateful server (a todo store, a database) keeps what one conversation wrote; a server
shared between conversations would let the second see the first's writes, and the gold's
replay see the conversation's. So each session (the gold's replay, a conversation) starts
its own server over stdio, makes its calls in order on it and closes it, with the
containment of every MCP server apigen starts (``mcp.McpCaller``: the environment allowlist
and ``--pass-env``, keys cut from what comes back, its own process group under a
subreaper, the per-call timeout). The server is always closed, whatever ended the session.

The state is read only where the server offers a way: a tool named as the state tool
(``--state-tool NAME``, called with no arguments) is called before the first call and after
each one (the labels say which calls changed it), and its answer, made canonical and bounded
as a class's state is, is the state (``{SERVER: value}``); the last one read is the final
state. Without one, the outcome's ``final_state`` and ``final_digest`` are ``None``: the state
cannot be read, and the trajectory check judges by outputs (``verdict``).

Two ways to run a session. Live (``open``, simulate's conversations, as ``live.LiveSessions``
does for Python classes): the server is kept for the whole conversation, each step of the
agent sends only its new calls, and the conversation's thread makes them. Whole
(``submit_session``/``poll``/``wait``/``run_sessions`` for the trajectory check,
``start_whole`` for simulate's gold): every call at once, on a pool of threads, at most
``sessions_at_once`` of these servers alive at once. ``close`` ends them all.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ..environments.state import Diff, StateError, canonical, canonical_json, diff_canonical, json_digest
from ..errors import ConfigError, FunctionsError
from ..problems import Problem
from .calls import Outcome, Pending
from .mcp import McpCaller, McpOptions, McpServer
from .sessions import SessionCall, SessionOutcome, SessionPending, SessionRequest
from .worker import CHANGES_PER_CALL, shorten

STATE_CHARS = 2_000_000  # the most of a state tool's answer read: a state is compared whole, never cut
_ENDS_SESSION = frozenset(
    {"timeout", "mcp_server_exited", "reply_too_large", "mcp_error"}
)  # the server's state is unknown after these
_CLOSED = Problem("interrupted", "the MCP environment was closed (the run ended) before the session did")
_CALL_GRACE = 5.0  # beyond the call's own timeout, before a call the loop never answered is given up


@dataclass(frozen=True)
class McpEnvironmentOptions:
    """The server (stdio), how its calls are bounded, the state tool (or none), and servers alive at once."""

    mcp: McpOptions
    state_tool: str | None = None
    sessions_at_once: int = 2

    @property
    def server(self) -> McpServer:
        return self.mcp.servers[0]


def environment_server(servers: tuple[McpServer, ...]) -> McpServer:
    """The one server started over stdio that is the environment; ``ConfigError`` for any other number or an URL."""
    if len(servers) != 1:
        raise ConfigError(
            f"an MCP environment is one server, and {len(servers)} are given",
            hint="pass one `--mcp COMMAND` (the server every conversation gets a fresh process of)",
        )
    server = servers[0]
    if server.url is not None:
        raise ConfigError(
            f"`--mcp-url {server.name}={server.shown}` cannot be an environment: a server reached over HTTP is shared, "
            "so one conversation would see another's writes",
            hint="pass `--mcp COMMAND`, which starts a fresh server over stdio for every conversation",
        )
    return server


class McpEnvironment:
    """Sessions, each on a fresh process of one MCP server; see the module's docstring."""

    def __init__(self, options: McpEnvironmentOptions) -> None:
        self.options = options
        # One session per server: a server that exits is not started again within a session.
        self._mcp = replace(options.mcp, max_restarts=0, concurrency=1, max_result_chars=STATE_CHARS)
        self._pool = ThreadPoolExecutor(max(1, options.sessions_at_once), thread_name_prefix="apigen-mcp-environment")
        self._running: dict[int, tuple[SessionPending, Future[SessionOutcome]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        self._closing = threading.Event()  # set by `close`: sessions running end at once, their servers with them
        self._live: set[McpLiveSession] = set()

    # what the commands ask before the first row

    def list_tools(self) -> list[dict[str, Any]]:
        """The server's tools (``tools/list``), from one process started for it; ``FunctionsError`` when it cannot
        start, or when the state tool is not one of them."""
        caller = McpCaller(self._mcp)
        caller.start()
        try:
            tools = caller.list_tools(self.options.server.name)
        finally:
            caller.close()
        state_tool = self.options.state_tool
        if state_tool is not None and state_tool not in {tool.get("name") for tool in tools}:
            raise FunctionsError(
                f"the MCP server `{self.options.server.name}` has no tool `{state_tool}` to read its state",
                hint="pass `--state-tool` one of its tools (`apigen library from-mcp COMMAND` lists them), or leave it out",
            )
        return tools

    # sessions, as the trajectory check's SessionPool

    def submit_session(self, request: SessionRequest) -> SessionPending:
        pending = SessionPending(next(self._ids), request)
        if pending.outcome is None:  # a call without a name ends it before it starts
            future = self.submit(request)
            with self._lock:
                self._running[pending.call_id] = (pending, future)
        return pending

    def poll(self) -> None:
        """Give every session that has ended its outcome."""
        with self._lock:
            done = [(pending, future) for pending, future in self._running.values() if future.done()]
            for pending, _future in done:
                del self._running[pending.call_id]
        for pending, future in done:
            pending.outcome = future.result()

    def wait(self, pendings: Iterable[SessionPending]) -> None:
        """Until each of ``pendings`` has ended."""
        for pending in pendings:
            with self._lock:
                running = self._running.pop(pending.call_id, None)
            if running is not None:
                pending.outcome = running[1].result()

    def run_sessions(self, requests: Iterable[SessionRequest]) -> Iterator[SessionOutcome]:
        futures = [self.submit(request) for request in requests]
        for future in futures:
            yield future.result()

    # sessions, as simulate's live environment

    def open(self, key: Any, environment: Any, *, defaults: bool = False) -> McpLiveSession:
        """A live session on a server of its own (started with its first calls), kept until it ends or is closed.

        ``environment`` and ``defaults`` are the row's, and not loaded: the server starts in its own state."""
        return self._session(SessionRequest(key, environment, (), defaults))

    def start_whole(self, request: SessionRequest) -> McpLiveSession:
        """A session with all its calls, run on the pool while the caller does other things; ``end`` reads its outcome."""
        session = self._session(request)
        session._whole = self.submit(request, session)
        return session

    def submit(self, request: SessionRequest, session: McpLiveSession | None = None) -> Future[SessionOutcome]:
        """A session run whole on the pool, at most ``sessions_at_once`` servers alive at once."""
        if self._closed:
            future: Future[SessionOutcome] = Future()
            future.set_exception(RuntimeError("the MCP environment is closed"))
            return future
        return self._pool.submit((session or self._session(request)).whole)

    def run(self, request: SessionRequest) -> SessionOutcome:
        """One session, start to end."""
        return self.submit(request).result()

    def close(self) -> None:
        """End the sessions running (a call in flight, even a hung one, ends with an error) and their servers, and
        drop those not started; returns when every server is gone."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            self._closing.set()
            live = list(self._live)
        for session in live:
            session._stopped.set()
            session.caller.stop_soon()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for session in live:
            session.caller.close()  # a conversation's, whose thread may be elsewhere: bounded, and its own close is then a no-op

    def _session(self, request: SessionRequest) -> McpLiveSession:
        session = McpLiveSession(self, request)
        with self._lock:
            if self._closed:
                session._stopped.set()
            self._live.add(session)
        return session

    def _forget(self, session: McpLiveSession) -> None:
        with self._lock:
            self._live.discard(session)


class McpLiveSession:
    """One session on a server of its own: ``run`` its calls step by step (the state read around each), ``end``
    for the outcome, ``close`` in any case (the server is stopped, whatever state it is in).

    The server starts with the first ``run`` or ``end`` (``McpEnvironment.open`` returns at once); a session that
    cannot start, or a call that ends it, sets ``outcome`` with the problem, and no call is sent after that.
    """

    def __init__(self, owner: McpEnvironment, request: SessionRequest) -> None:
        self.owner = owner
        self.options = owner.options
        self.request = request
        self.caller = McpCaller(owner._mcp)
        self.calls: list[SessionCall] = []
        self.initial: dict[str, Any] | None = None
        self.state: dict[str, Any] | None = None  # after the last call
        self.started = time.monotonic()
        self.outcome: SessionOutcome | None = None
        self._opened = False
        self._whole: Future[SessionOutcome] | None = None  # `start_whole`'s run on the pool
        self._stopped = threading.Event()  # `close`d: no server is started, no call sent

    def __enter__(self) -> McpLiveSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, calls: Sequence[Mapping[str, Any]]) -> tuple[SessionCall, ...]:
        """Make ``calls`` after the earlier ones; the calls made (fewer when the session ended in them: ``outcome`` says why)."""
        first = len(self.calls)
        if self._open():
            for call in calls:
                if self.outcome is not None:
                    break
                self._one(call)
        return tuple(self.calls[first:])

    def end(self) -> SessionOutcome:
        """The outcome, with the state after the last call when a state tool reads it; the server is stopped."""
        if self._whole is not None:
            return self._whole.result()
        outcome = self._end()
        self.close()
        return outcome

    def _end(self) -> SessionOutcome:
        if self._open() and self.outcome is None:
            self._finish(None, self.state, None if self.state is None else json_digest(canonical_json(self.state)))
        assert self.outcome is not None
        return self.outcome

    def close(self) -> None:
        """Stop the server (and what it started); a call in flight, even a hung one, ends with an error."""
        self._stopped.set()
        self.caller.stop_soon()
        if self._whole is not None:
            with contextlib.suppress(Exception):
                self._whole.result()
        self.caller.close()
        self.owner._forget(self)

    def whole(self) -> SessionOutcome:
        """Every call of the request, then the end (a session the pool runs from start to end)."""
        try:
            self.run(self.request.calls)
            return self._end()
        except Exception as error:  # apigen's own failure: this session says so, never the run
            return self._finish(Problem("crashed", f"the MCP session failed: {type(error).__name__}: {error}"))
        finally:
            self.caller.close()
            self.owner._forget(self)

    def _open(self) -> bool:
        """Start the server and read the state before any call, once; whether the session can take calls."""
        if not self._opened:
            self._opened = True
            if self._closed():
                self._finish(_CLOSED)
                return False
            try:
                self.caller.start()
            except FunctionsError as error:
                self._finish(Problem("environment_load_error", error.message))
                return False
            if self._closed():  # closed while the server started (its stop may have come before the loop was there)
                self._finish(_CLOSED)
                return False
            self.initial, problem = self._state()
            self.state = self.initial
            if problem is not None:
                self._finish(problem)
        return self.outcome is None

    def _one(self, call: Mapping[str, Any]) -> None:
        number = len(self.calls) + 1
        if self._closed():  # the session or the environment closed while the server started, or between two calls
            self._finish(_CLOSED)
            return
        name = str(call.get("name"))
        arguments = call.get("arguments", {})
        if not isinstance(arguments, Mapping):
            outcome = Outcome.failure("invalid_arguments", "TypeError", f"the arguments of `{name}` are not an object")
            self.calls.append(SessionCall(name, arguments, outcome, False))
            return
        began = time.monotonic()
        outcome = self._call(name, dict(arguments), self.options.mcp.max_result_chars)
        seconds = time.monotonic() - began
        if outcome.code in _ENDS_SESSION:
            self.calls.append(SessionCall(name, arguments, outcome, None, seconds=seconds))
            self._finish(Problem(outcome.code, f"`{name}` (call {number} of the session): {outcome.message}"))
            return
        before = self.state
        after, problem = self._state()
        if problem is not None:
            self.calls.append(SessionCall(name, arguments, outcome, None, seconds=seconds))
            self._finish(problem)
            return
        changed: bool | None = None
        changes = Diff()
        if before is not None and after is not None:
            changed = canonical_json(before) != canonical_json(after)
            changes = diff_canonical(before, after, CHANGES_PER_CALL) if changed else Diff()
        self.calls.append(SessionCall(name, arguments, outcome, changed, changes, seconds))
        self.state = after

    def _closed(self) -> bool:
        return self._stopped.is_set() or self.owner._closing.is_set()

    def _call(self, tool: str, arguments: dict[str, Any], max_chars: int) -> Outcome:
        """One ``tools/call``, its result cut to ``max_chars`` (the caller reads whole answers, for the state)."""
        pending = Pending(0, tool, arguments)
        done = threading.Event()
        self.caller.submit(pending, self.options.server.name, tool, done.set)
        if not done.wait(self.options.mcp.timeout + _CALL_GRACE) or pending.outcome is None:
            return Outcome.failure("timeout", "Timeout", f"`{tool}` got no answer from the MCP session")
        outcome = pending.outcome
        if outcome.ok:
            result, truncated = shorten(outcome.result, max_chars)
            return replace(outcome, result=result, truncated=truncated)
        return replace(outcome, message=shorten(outcome.message, max_chars)[0])

    def _state(self) -> tuple[dict[str, Any] | None, Problem | None]:
        """The server's state by its state tool, canonical (``None`` when it has none), or why it could not be read."""
        tool = self.options.state_tool
        if tool is None:
            return None, None
        outcome = self._call(tool, {}, STATE_CHARS)
        if not outcome.ok or outcome.truncated:
            why = outcome.message if not outcome.ok else f"its answer is longer than {STATE_CHARS} characters"
            return None, Problem("state_read_error", f"the state tool `{tool}` could not read the state: {why}")
        value = outcome.result
        if isinstance(value, str):  # a text answer holding JSON is read as the value it writes
            with contextlib.suppress(ValueError, RecursionError):
                value = json.loads(value)
        try:
            return {self.options.server.name: canonical(value, root=self.options.server.name)}, None
        except StateError as error:
            return None, Problem("state_read_error", f"the state tool `{tool}` answered a state apigen cannot compare: {error}")

    def _finish(
        self, problem: Problem | None, final: dict[str, Any] | None = None, final_digest: str | None = None
    ) -> SessionOutcome:
        if self.outcome is None:
            self.outcome = SessionOutcome(
                key=self.request.key,
                problem=problem,
                initial_state=self.initial,
                final_state=final,
                final_digest=final_digest,
                calls=tuple(self.calls),
                seconds=time.monotonic() - self.started,
            )
        return self.outcome
