"""Running calls: Python functions in the worker pool, tools with an ``http`` binding over REST.

This is the one door to user code and remote tools. ``exec_check`` hands it calls
and gets back an ``Outcome`` for each; the verdict policy lives there, not here.
How Python functions run (and why in processes of our own) is told in ``pool``.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import FunctionsError
from .calls import ExecutorOptions, HttpOptions, Outcome, Pending
from .environment import HandOutEnvironment
from .pool import POLL_BATCH, POLL_INTERVAL, FunctionsInfo, WorkerPool
from .sessions import SessionOutcome, SessionPending, SessionRequest

if TYPE_CHECKING:
    from .mcp import McpCaller, McpOptions
    from .rest import HttpCaller


# --- the executor ---------------------------------------------------------------------


class Executor:
    """Runs calls: Python functions from ``functions`` in worker processes, tools with an
    ``http`` binding over HTTP, tools with an ``mcp`` binding through MCP sessions
    (``mcp.py``). Use as a context manager, or call ``start``/``close``.

        with Executor("lib.py", ExecutorOptions(timeout=2)) as executor:
            outcome = executor.run("add", {"a": 1, "b": 2})

    Sessions run calls on instances of the library's classes (``run_sessions``)::

        request = SessionRequest("row-1", {"Store": {"orders": {}}}, [{"name": "list_orders", "arguments": {}}])
        for outcome in executor.run_sessions([request]):
            print(outcome.final_digest, [call.changed for call in outcome.calls])
    """

    def __init__(
        self,
        functions: str | os.PathLike[str] | None = None,
        options: ExecutorOptions | None = None,
        http: HttpOptions | None = None,
        mcp: McpOptions | None = None,
    ) -> None:
        self.options = options or ExecutorOptions()
        self.functions = None if functions is None else os.fspath(functions)
        self._http_options = http
        self._http: HttpCaller | None = None
        self._mcp_options = mcp
        self._mcp: McpCaller | None = None
        self._pool = WorkerPool(self.functions, self.options)
        self._next_id = 0
        self._started = False

    @property
    def functions_info(self) -> FunctionsInfo | None:
        return self._pool.functions_info

    def start(self) -> Executor:
        """Start the workers; raises ``FunctionsError`` when the library cannot be loaded."""
        if not self._started:
            self._started = True
            try:
                self._pool.start()
                if self._mcp_options is not None and self._mcp_options.servers:
                    from .mcp import McpCaller

                    self._mcp = McpCaller(self._mcp_options)
                    self._mcp.start()
            except BaseException:
                self.close()
                raise
        return self

    def __enter__(self) -> Executor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._mcp is not None:
            self._mcp.close()
            self._mcp = None

    def submit(self, name: str, arguments: dict[str, Any], http: Any = None, mcp: Any = None) -> Pending:
        """Start a call and return at once; ``http``/``mcp`` is the tool's binding when it has one.

        Raises ``ConfigError`` when an HTTP binding needs an environment variable that is not set.
        """
        self._next_id += 1
        pending = Pending(self._next_id, name, arguments)
        if mcp is not None:
            self._submit_mcp(pending, name, mcp)
            return pending
        if http is not None:
            self._submit_http(pending, name, http)
            return pending
        library = self._pool.functions_info
        if library is None:
            if self.functions is None:
                message = f"`{name}` has no `http` binding, and no Python library was given (`--functions`)"
                pending.outcome = Outcome.failure("no_implementation", "NoImplementation", message)
                return pending
            self.start()
            library = self._pool.functions_info
            assert library is not None
        if name not in library.functions:
            pending.outcome = Outcome.failure("no_implementation", "NoImplementation", library.explain_missing(name))
            return pending
        self._pool.submit(pending)
        return pending

    def _submit_http(self, pending: Pending, name: str, spec: Any) -> None:
        from .rest import BindingError, HttpCaller, build_request, parse_binding

        try:
            # A binding comes with the rows: environment variables go into requests only with --pass-env.
            request = build_request(parse_binding(spec, name), pending.arguments, HandOutEnvironment(self.options.pass_env))
        except BindingError as error:
            pending.outcome = Outcome.failure(error.problem.code, error.error_type, error.problem.message)
            return
        # A server may echo more than the request held: what --pass-env hands out and apigen's keys are cut too.
        request = replace(request, secrets=(*request.secrets, *self._pool.redactor.secrets))
        if self._http is None:
            self._http = HttpCaller(self._http_options or HttpOptions(), self.options.max_result_chars)
        self._http.submit(request, pending, self._pool.wake)

    def why_not_executable(self, name: str, http: Any = None, mcp: Any = None) -> str | None:
        """``None`` when a call of ``name`` (with these bindings) has something to run it, else why not.

        Asked before a run spends tokens: an API nothing can execute would only give
        rows that exec-check rejects as ``no_implementation``. Call after ``start``.
        """
        if mcp is not None:
            from .mcp import McpBindingError, parse_binding

            try:
                server, _tool = parse_binding(mcp, name)
            except McpBindingError as error:
                return error.message
            if self._mcp is None or not self._mcp.has_server(server):
                return f"it is bound to the MCP server `{server}`, which is not given (`--mcp {server}=COMMAND`)"
            return None
        if http is not None:
            return None
        info = self._pool.functions_info
        if info is None:
            return "it has no `http` or `mcp` binding, and no `--functions` are given"
        if name not in info.functions:
            return info.explain_missing(name)
        return None

    def _submit_mcp(self, pending: Pending, name: str, spec: Any) -> None:
        from .mcp import McpBindingError, parse_binding

        try:
            server, tool = parse_binding(spec, name)
        except McpBindingError as error:
            pending.outcome = Outcome.failure(error.code, "InvalidBinding", error.message)
            return
        if self._mcp is None or not self._mcp.has_server(server):
            message = (
                f"`{name}` is bound to the MCP server `{server}`, which was not given on the command line "
                f"(a row only names a server; say how to reach it with `--mcp {server}=COMMAND` or `--mcp-url {server}=URL`)"
            )
            pending.outcome = Outcome.failure("mcp_server_unknown", "McpServerUnknown", message)
            return
        self._mcp.submit(pending, server, tool, self._pool.wake)

    def poll(self) -> None:
        """Make progress without waiting: send queued calls, collect finished ones.

        Cheap to call for every row: it does real work only when enough calls are
        queued for a batch, or a millisecond has passed since it last did.
        """
        pool = self._pool
        if len(pool.queue) >= POLL_BATCH or time.monotonic() - pool.last_pump >= POLL_INTERVAL:
            pool.pump(0)

    def pump(self, timeout: float) -> None:
        """Make progress, waiting up to ``timeout`` seconds for a result (``wake`` cuts the wait short)."""
        self._pool.pump(timeout)

    def wake(self) -> None:
        """Callable from any thread: end a ``pump`` that is waiting, so that work just handed over is sent."""
        self._pool.wake()

    def wait(self, pendings: Iterable[Pending | SessionPending]) -> None:
        """Block until every call (or session) in ``pendings`` has its outcome."""
        for pending in pendings:
            while pending.outcome is None:
                self._pool.pump(1.0)

    def run(self, name: str, arguments: dict[str, Any], http: Any = None, mcp: Any = None) -> Outcome:
        """One call, start to end."""
        pending = self.submit(name, arguments, http, mcp)
        self.wait([pending])
        assert pending.outcome is not None
        return pending.outcome

    # sessions

    def submit_session(self, request: SessionRequest) -> SessionPending:
        """Start a session and return at once; its ``outcome`` is set when it has ended.

        Raises ``FunctionsError`` when no library was given or it cannot be loaded.
        """
        if self.functions is None:
            raise FunctionsError(
                "sessions need the library that defines the environment's classes, and none was given",
                hint="pass the file or folder of classes with `--functions`",
            )
        self.start()
        self._next_id += 1
        pending = SessionPending(self._next_id, request)
        if pending.outcome is None:
            self._pool.submit(pending)
        return pending

    def run_sessions(self, requests: Iterable[SessionRequest], window: int = 256) -> Iterator[SessionOutcome]:
        """Run sessions across the workers, in parallel; outcomes come out in request order.

        Each session gets fresh instances in one worker, keeps them for all its calls,
        in order, and nothing passes from one session to the next (the worker forks a
        process per session). At most ``window`` sessions are in flight, so memory
        stays flat however many are asked for.
        """
        flight: deque[SessionPending] = deque()
        for request in requests:
            flight.append(self.submit_session(request))
            self.poll()
            while flight and flight[0].outcome is not None:
                yield _ended(flight.popleft())
            while len(flight) >= max(1, window):
                head = flight.popleft()
                self.wait([head])
                yield _ended(head)
        while flight:
            head = flight.popleft()
            self.wait([head])
            yield _ended(head)


def _ended(pending: SessionPending) -> SessionOutcome:
    assert pending.outcome is not None
    return pending.outcome
