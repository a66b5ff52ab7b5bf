"""An MCP server as a multi-turn environment: a fresh server process for every session.

A stateful server (a todo store, a database) keeps what one conversation wrote; a server
shared between conversations would let the second see the first's writes, and the gold's
replay see the conversation's. So each session (the gold's replay, a conversation's calls)
starts its own server over stdio, makes its calls in order on it and closes it, with the
containment of every MCP server apigen starts (``mcp.McpCaller``: the environment allowlist
and ``--pass-env``, keys cut from what comes back, its own process group under a
subreaper, the per-call timeout). The server is always closed, whatever ended the session.

The state is read only where the server offers a way: a tool named as the state tool
(``--state-tool NAME``, called with no arguments) is called before the first call and after
each one, and its answer, made canonical and bounded as a class's state is, is the state
(``{SERVER: value}``); the session then says which calls changed it, and its final digest.
Without one, the outcome's ``final_state`` and ``final_digest`` are ``None``: the state
cannot be read, and the trajectory check judges by outputs (``verdict``).

Sessions run side by side on a pool of threads, at most ``sessions_at_once`` servers alive
at once; each offers what the trajectory check and simulate ask of an executor:
``submit_session``/``poll``/``wait``/``run_sessions`` and ``submit``/``run``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ..environments.state import Diff, StateError, canonical, canonical_json, diff_canonical
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
        self._live: set[_Session] = set()

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
            with self._lock:
                self._running[pending.call_id] = (pending, self.submit(request))
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

    # sessions, as simulate's desk

    def submit(self, request: SessionRequest) -> Future[SessionOutcome]:
        if self._closed:
            future: Future[SessionOutcome] = Future()
            future.set_exception(RuntimeError("the MCP environment is closed"))
            return future
        return self._pool.submit(self._session, request)

    def run(self, request: SessionRequest) -> SessionOutcome:
        return self.submit(request).result()

    def close(self) -> None:
        """End the sessions running (a call in flight, even a hung one, ends with an error and each server is
        closed by its session) and drop those not started; returns when every server is gone."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        with self._lock:
            live = list(self._live)
        for session in live:
            session.caller.stop_soon()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # one session

    def _session(self, request: SessionRequest) -> SessionOutcome:
        session = _Session(self.options, self._mcp, request, self._closing)
        with self._lock:
            self._live.add(session)
        try:
            return session.run()
        except Exception as error:  # apigen's own failure: this session says so, never the run
            return session.ended(Problem("crashed", f"the MCP session failed: {type(error).__name__}: {error}"))
        finally:
            with self._lock:
                self._live.discard(session)


class _Session:
    """One session: a server started, the calls made in order (the state read around each), the server closed."""

    def __init__(
        self, options: McpEnvironmentOptions, mcp: McpOptions, request: SessionRequest, closing: threading.Event
    ) -> None:
        self.options = options
        self.request = request
        self.closing = closing
        self.caller = McpCaller(mcp)
        self.calls: list[SessionCall] = []
        self.initial: dict[str, Any] | None = None
        self.started = time.monotonic()

    def run(self) -> SessionOutcome:
        if self.closing.is_set():
            return self.ended(_CLOSED)
        try:
            self.caller.start()
        except FunctionsError as error:
            return self.ended(Problem("environment_load_error", error.message))
        try:
            return self._calls()
        finally:
            self.caller.close()

    def _calls(self) -> SessionOutcome:
        before, problem = self._state()
        if problem is not None:
            return self.ended(problem)
        self.initial = before
        for number, call in enumerate(self.request.calls, start=1):
            if self.closing.is_set():  # the environment closed while the server started, or between two calls
                return self.ended(_CLOSED)
            name = str(call.get("name"))
            arguments = call.get("arguments", {})
            if not isinstance(arguments, Mapping):
                outcome = Outcome.failure("invalid_arguments", "TypeError", f"the arguments of `{name}` are not an object")
                self.calls.append(SessionCall(name, arguments, outcome, False))
                continue
            began = time.monotonic()
            outcome = self._call(name, dict(arguments), self.options.mcp.max_result_chars)
            seconds = time.monotonic() - began
            if outcome.code in _ENDS_SESSION:
                self.calls.append(SessionCall(name, arguments, outcome, None, seconds=seconds))
                return self.ended(Problem(outcome.code, f"`{name}` (call {number} of the session): {outcome.message}"))
            after, problem = self._state()
            if problem is not None:
                self.calls.append(SessionCall(name, arguments, outcome, None, seconds=seconds))
                return self.ended(problem)
            changed: bool | None = None
            changes = Diff()
            if before is not None and after is not None:
                changed = canonical_json(before) != canonical_json(after)
                changes = diff_canonical(before, after, CHANGES_PER_CALL) if changed else Diff()
            self.calls.append(SessionCall(name, arguments, outcome, changed, changes, seconds))
            before = after
        digest = None if before is None else _digest(before)
        return self.ended(None, before, digest)

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

    def ended(
        self, problem: Problem | None, final: dict[str, Any] | None = None, final_digest: str | None = None
    ) -> SessionOutcome:
        return SessionOutcome(
            key=self.request.key,
            problem=problem,
            initial_state=self.initial,
            final_state=final,
            final_digest=final_digest,
            calls=tuple(self.calls),
            seconds=time.monotonic() - self.started,
        )


def _digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(state)).hexdigest()
