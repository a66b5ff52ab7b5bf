"""MCP servers as tools: ``tools/list`` and ``tools/call`` through sessions apigen opens itself.

A tool (in any dialect; for OpenAI-wrapped tools, beside ``function`` or inside it)
may carry a binding that names a server and the tool's name there::

    "mcp": {"server": "units", "tool": "convert_length"}

The binding never says how to start the server: which servers may run is the
user's decision on the command line (``--mcp NAME=COMMAND`` for a server spoken
to over stdio, ``--mcp-url NAME=URL`` for streamable HTTP). A row whose binding
names a server that was not given is rejected (``mcp_server_unknown``).

The official ``mcp`` SDK is asynchronous; the executor is a ``selectors`` loop.
So one background thread runs an asyncio loop that holds one session per server,
opened at start and reused for every call. Calls are handed to that loop, at
most ``concurrency`` in flight per server, each bounded by ``timeout``; the
outcome is set on the ``Pending`` and the executor is woken, as for HTTP calls.

Servers started over stdio get the same environment as Python workers
(the variables that are never secret, and those ``--pass-env`` names), their own
process group (the SDK kills the whole group on close), a subreaper above them that
ends what they started when they end, even in a session of their own
(``descendants.contain``), and their stderr goes to
a pipe of which apigen keeps the last 64 KB (``output_tail.py``), to explain a server
that would not start or died.
Replies of servers over HTTP are capped in decoded size (``mcp_http.py``), as REST replies are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from ..config import DEFAULT_KEY_VARIABLES
from ..errors import ConfigError, FunctionsError
from ..redaction import Redactor
from ..replies import TOO_LARGE, ReplyTooLarge, UnsupportedEncoding
from .calls import Outcome, Pending, recorded
from .descendants import contained
from .environment import secrets_to_cut, worker_environment
from .isolation import hide_this_process
from .output_tail import Tail
from .worker import shorten

if TYPE_CHECKING:
    from mcp import Client

    from .mcp_http import BoundedReplies

BINDING_KEYS = ("server", "tool")
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_STDERR_TAIL = 2000
_CLOSE_SECONDS = 15.0  # the SDK's own shutdown waits are bounded (about 6 s per server)


@dataclass(frozen=True)
class McpServer:
    """A server the user allowed: started with ``command`` over stdio, or reached at ``url``."""

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None

    @property
    def shown(self) -> str:
        """The command or URL for messages on stderr (a URL without user, password or query)."""
        if self.url is None:
            return shlex.join(self.command)
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def parse_server(text: str, flag: str) -> McpServer:
    """``NAME=COMMAND`` or a bare ``COMMAND`` (for ``--mcp``), ``NAME=URL`` (for ``--mcp-url``); raises ``ConfigError``.

    A bare command's server is named as ``library from-mcp`` names it: after the
    script or program it runs (``python sample_data/mcp_server.py`` → ``mcp_server``).
    """
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if flag == "--mcp" and (not sep or any(character.isspace() or character in "/\\" for character in name)):
        command = _split(text, text, flag)
        if not command:
            raise ConfigError(f"`{flag}` is given an empty command", hint="e.g. `--mcp units='python sample_data/mcp_server.py'`")
        return McpServer(default_server_name(command), command=command)
    if not sep or not name or not value:
        example = "units='python sample_data/mcp_server.py'" if flag == "--mcp" else "units=http://127.0.0.1:8000/mcp"
        what = "NAME=COMMAND" if flag == "--mcp" else "NAME=URL"
        raise ConfigError(f"`{flag} {text}` should be {what}", hint=f"e.g. `{flag} {example}`")
    check_server_name(name, flag)
    if flag == "--mcp-url":
        return McpServer(name, url=check_url(value, flag))
    return McpServer(name, command=_split(value, text, flag))


def _split(command: str, given: str, flag: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(command))
    except ValueError as error:
        raise ConfigError(f"`{flag} {given}`: the command cannot be split into words: {error}", hint="check the quotes") from None


_LAUNCHERS = ("python", "python3", "node", "npx", "uv", "uvx", "bunx", "deno", "env")


def default_server_name(command: Sequence[str]) -> str:
    """A server's name when none is given: the stem of the script or program it runs (``mcp_server``), else ``mcp``."""
    words = list(command)
    for word in [*(word for word in words[1:] if not word.startswith("-")), *words[:1]]:
        stem = _NOT_A_NAME.sub("_", PurePath(word).stem).strip("_.-")
        if stem and stem not in _LAUNCHERS and not stem.startswith("python"):
            return stem[:64]
    return "mcp"


def check_server_name(name: str, flag: str) -> str:
    if not _SERVER_NAME.match(name):
        raise ConfigError(
            f"`{flag}`: `{name}` is not a usable MCP server name",
            hint="use up to 64 letters, digits, `_`, `-` or `.` (the name the rows' `mcp` bindings use)",
        )
    return name


def check_url(url: str, flag: str) -> str:
    if not url.lower().startswith(("http://", "https://")):
        raise ConfigError(
            f"`{flag}`: `{url}` should start with http:// or https://", hint=f"e.g. `{flag} http://127.0.0.1:8000/mcp`"
        )
    return url


def unique_servers(servers: Sequence[McpServer]) -> tuple[McpServer, ...]:
    """The servers, each name once; raises ``ConfigError`` for a name given twice."""
    seen: dict[str, McpServer] = {}
    for server in servers:
        if server.name in seen:
            raise ConfigError(
                f"the MCP server name `{server.name}` is given twice", hint="give each `--mcp`/`--mcp-url` its own NAME"
            )
        seen[server.name] = server
    return tuple(seen.values())


@dataclass(frozen=True)
class McpOptions:
    """How MCP calls are made: per-call ``timeout``, calls in flight per server, time to open a session.

    A session that breaks (the server exited) is opened anew for the next calls, at most
    ``max_restarts`` times per server: a crash costs the calls in flight, not the run, and
    a server that dies on every call cannot make the run start it forever.
    """

    servers: tuple[McpServer, ...] = ()
    timeout: float = 10.0
    concurrency: int = 8
    startup_timeout: float = 30.0
    max_result_chars: int = 4000
    pass_env: tuple[str, ...] = ()
    key_variables: tuple[str, ...] = DEFAULT_KEY_VARIABLES  # where apigen's keys are: their values never come back
    max_restarts: int = 3  # new sessions after one breaks, per server and run
    max_reply_bytes: int = 4 * 1024 * 1024  # decoded, per reply of a server over HTTP: a gzip bomb stops here


class McpBindingError(Exception):
    """A binding that cannot be used: ``code`` and ``message`` go into the call's outcome."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_binding(spec: Any, tool: str) -> tuple[str, str]:
    """The ``(server, tool)`` a tool's ``mcp`` binding names; raises ``McpBindingError``."""
    if not isinstance(spec, dict):
        raise McpBindingError("invalid_tool_definition", f"tool `{tool}`: `mcp` should be an object with a `server`")
    unknown = sorted(set(spec) - set(BINDING_KEYS))
    if unknown:
        names = ", ".join(f"`{key}`" for key in unknown)
        raise McpBindingError(
            "invalid_tool_definition",
            f"tool `{tool}`: `mcp` has unknown key(s) {names} (known: server, tool; a binding never says how to start a server)",
        )
    server = spec.get("server")
    if not isinstance(server, str) or not server.strip():
        raise McpBindingError("invalid_tool_definition", f"tool `{tool}`: `mcp.server` should name a server")
    remote = spec.get("tool", tool)
    if not isinstance(remote, str) or not remote:
        raise McpBindingError("invalid_tool_definition", f"tool `{tool}`: `mcp.tool` should be the tool's name on the server")
    return server.strip(), remote


# --- results --------------------------------------------------------------------------


def _content_text(item: Any) -> str:
    """One content item of a result: text as it is, anything else described in a few words."""
    kind = getattr(item, "type", "content")
    if kind == "text":
        return str(getattr(item, "text", ""))
    if kind in ("image", "audio"):
        data = str(getattr(item, "data", "") or "").strip()
        size = len(data) * 3 // 4 - data[-2:].count("=")  # base64 text → bytes
        return f"[{kind} {getattr(item, 'mime_type', '') or ''}, {size} bytes]".replace(" ,", ",")
    if kind == "resource_link":
        return f"[resource link {getattr(item, 'uri', '')}]"
    if kind == "resource":
        resource = getattr(item, "resource", None)
        text = getattr(resource, "text", None)
        if isinstance(text, str):
            return text
        return f"[resource {getattr(resource, 'uri', '')}]"
    return f"[{kind} content]"


def result_value(result: Any) -> Any:
    """What a ``tools/call`` result records: ``structuredContent``, else its content items (one: the item alone)."""
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured
    items = [_content_text(item) for item in getattr(result, "content", None) or []]
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def result_outcome(result: Any, server: str, tool: str, max_chars: int) -> Outcome:
    if getattr(result, "is_error", False):
        text = " ".join(_content_text(item) for item in getattr(result, "content", None) or []).strip()
        message = f"MCP server `{server}` answered that `{tool}` failed: {text or '(no text)'}"
        return Outcome.failure("mcp_tool_error", "McpToolError", shorten(message, max_chars)[0])
    return recorded(result_value(result), max_chars)


# --- sessions -------------------------------------------------------------------------


@dataclass(eq=False)
class _Connection:
    server: McpServer
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # stop, or the session broke: `_serve` acts
    client: Client | None = None
    error: str | None = None  # why the session could not open
    dead: str | None = None  # why the session ended while in use
    restarts: int = 0
    errlog: TextIO | None = None  # the write end of the server's stderr pipe, for the SDK
    stderr: Tail | None = None  # the end of the server's stderr, bounded
    slots: asyncio.Semaphore | None = None
    http: BoundedReplies | None = None  # over HTTP: the transport that caps replies, and says which it refused

    def refused_reply(self) -> ReplyTooLarge | UnsupportedEncoding | None:
        return self.http.take_refusal() if self.http is not None else None

    def stderr_tail(self) -> str:
        """The last line the server wrote on stderr, when it wrote any."""
        if self.stderr is None:
            return ""
        self.stderr.catch_up()
        return self.stderr.ends()


def _describe(error: BaseException) -> str:
    """An exception in words; an ``ExceptionGroup`` by its first leaf."""
    while getattr(error, "exceptions", None):  # an ExceptionGroup (a builtin from Python 3.11)
        error = error.exceptions[0]  # type: ignore[attr-defined]
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class McpCaller:
    """One asyncio loop on a background thread, one reused session per server.

    caller = McpCaller(McpOptions(servers=(McpServer("units", ("python", "server.py")),)))
    caller.start()                      # raises FunctionsError when a server cannot start
    tools = caller.list_tools("units")
    caller.close()
    """

    def __init__(self, options: McpOptions) -> None:
        self.options = options
        self.servers = {server.name: server for server in options.servers}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connections: dict[str, _Connection] = {}
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._start_error: FunctionsError | None = None
        self._inbox: deque[tuple[Pending, str, str, Callable[[], None]]] = deque()
        self._inbox_lock = threading.Lock()
        self._drain_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        # What --pass-env let through to stdio servers, and apigen's keys: cut out of what comes back.
        self._secrets = Redactor(secrets_to_cut(os.environ, options.pass_env, options.key_variables))

    def start(self) -> None:
        """Open a session with every server; raise ``FunctionsError`` naming the first that cannot start."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main, name="apigen-mcp", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            error = self._start_error
            self.close()
            raise error

    def _thread_main(self) -> None:
        with contextlib.suppress(BaseException):
            asyncio.run(self._main())
        self._started.set()  # in case the loop ended before it could say so

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks = []
        for server in self.options.servers:
            connection = _Connection(server, slots=asyncio.Semaphore(self.options.concurrency))
            self._connections[server.name] = connection
            tasks.append(asyncio.create_task(self._serve(connection)))
        try:
            for connection, task in zip(self._connections.values(), tasks, strict=True):
                await self._await_ready(connection, task)
                if connection.error is not None:
                    self._start_error = self._start_failure(connection)
                    return
        finally:
            self._started.set()
            if self._start_error is None:
                await self._stop.wait()
            for connection in self._connections.values():
                connection.stop.set()
                connection.wake.set()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def _await_ready(self, connection: _Connection, task: asyncio.Task[None]) -> None:
        """Until the first session is open, or failed (``_serve`` bounds the handshake)."""
        ready = asyncio.create_task(connection.ready.wait())
        await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if connection.client is None and connection.error is None:
            connection.error = connection.dead or "the session ended before it was used"

    def _start_failure(self, connection: _Connection) -> FunctionsError:
        server = connection.server
        how = "start" if server.url is None else "be reached"
        if server.url is None:
            hint = f"check that `{server.shown}` starts an MCP server over stdio (run by itself, it waits silently for input)"
        else:
            hint = f"check that an MCP server answers at `{server.shown}` (streamable HTTP)"
        return FunctionsError(
            f"the MCP server `{server.name}` (`{server.shown}`) could not {how}: {connection.error}{connection.stderr_tail()}",
            hint=hint,
        )

    async def _serve(self, connection: _Connection) -> None:
        """Hold a session open until told to stop; open a new one when it breaks (up to ``max_restarts``)."""
        while not connection.stop.is_set():
            connection.ready.clear()
            session = asyncio.create_task(self._session(connection))
            ready = asyncio.create_task(connection.ready.wait())
            done, _ = await asyncio.wait(
                {session, ready}, timeout=self.options.startup_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            ready.cancel()
            if not done:
                connection.error = f"it did not finish the MCP handshake within {self.options.startup_timeout:g} s"
                session.cancel()
            with contextlib.suppress(BaseException):
                await session
            if connection.stop.is_set() or connection.error is not None or connection.restarts >= self.options.max_restarts:
                break
            connection.restarts += 1  # the session broke: the next calls get a new one
            connection.dead = None
            connection.wake.clear()
        connection.client = None
        connection.ready.set()  # nobody waits for a session that will not come

    async def _session(self, connection: _Connection) -> None:
        """One session: open it, say so, hold it until stopped or broken; note why it could not open."""
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.types import Implementation

        from ..version import __version__
        from .mcp_http import bounded_client, bounded_transport

        server = connection.server
        me = Implementation(name="apigen", version=__version__)
        opened = False
        if server.url is None:
            read_end, write_end = os.pipe()
            connection.stderr = Tail("its stderr")
            connection.stderr.follow(read_end)
            connection.errlog = open(write_end, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in `finally`
        try:
            async with contextlib.AsyncExitStack() as stack:
                if server.url is not None:
                    connection.http = bounded_transport(self.options.max_reply_bytes)
                    http = await stack.enter_async_context(bounded_client(connection.http))
                    client = Client(streamable_http_client(server.url, http_client=http), client_info=me, cache=None)
                else:
                    environment = worker_environment(os.environ, self.options.pass_env)
                    hide_this_process()  # the server must not read our environment (keys) or memory
                    # Below a subreaper: what the server starts, even in a session of its own, ends with it.
                    command = contained(server.command)
                    parameters = StdioServerParameters(command=command[0], args=command[1:], env=environment)
                    # The SDK's default sends the server's stderr to ours; a pipe keeps its end for the error messages.
                    client = Client(stdio_client(parameters, errlog=connection.errlog or sys.stderr), client_info=me, cache=None)
                await stack.enter_async_context(client)
                connection.client = client
                opened = True
                connection.ready.set()
                await connection.wake.wait()
                connection.client = None
        except BaseException as error:  # noqa: B036 - whatever ended the session is reported, never raised here
            if opened:
                connection.dead = connection.dead or _describe(error)
            elif connection.error is not None:
                pass  # said already (the handshake took too long and was cancelled)
            elif _connection_closed(error):
                connection.error = "it exited (or closed its output) before the MCP handshake ended"
            else:
                connection.error = _describe(error)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            connection.client = None
            if connection.errlog is not None:
                connection.errlog.close()
                connection.errlog = None
            if connection.error is not None:
                connection.ready.set()

    # calls

    def has_server(self, name: str) -> bool:
        return name in self.servers

    def submit(self, pending: Pending, server: str, tool: str, notify: Callable[[], None]) -> None:
        """Make the call on the loop; set ``pending.outcome`` and call ``notify`` when done.

        Calls wait in an inbox that the loop empties in one go: one wake-up of the loop
        for a burst of calls, rather than a thread hand-off (and a future) per call.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            pending.outcome = Outcome.failure("mcp_server_exited", "McpServerExited", "the MCP sessions are closed")
            notify()
            return
        with self._inbox_lock:
            self._inbox.append((pending, server, tool, notify))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop closed meanwhile
            pending.outcome = Outcome.failure("mcp_server_exited", "McpServerExited", "the MCP sessions are closed")
            notify()

    def _drain(self) -> None:
        """On the loop: start a task for every call in the inbox."""
        with self._inbox_lock:
            calls = list(self._inbox)
            self._inbox.clear()
            self._drain_scheduled = False
        loop = asyncio.get_running_loop()
        for pending, server, tool, notify in calls:
            task = loop.create_task(self._run(pending, server, tool, notify))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, pending: Pending, server: str, tool: str, notify: Callable[[], None]) -> None:
        try:
            pending.outcome = (await self._call(server, tool, pending.arguments)).redacted(self._secrets)
        except BaseException as error:  # noqa: B036 - a call's end is always reported, so no caller waits forever
            pending.outcome = Outcome.failure(
                "mcp_error", type(error).__name__, f"the MCP call `{tool}` ended: {_describe(error)}"
            )
            if not isinstance(error, Exception):
                raise
        finally:
            notify()

    async def _call(self, name: str, tool: str, arguments: dict[str, Any]) -> Outcome:
        import anyio

        connection = self._connections[name]
        assert connection.slots is not None
        async with connection.slots:
            if connection.client is None and not connection.ready.is_set():  # a new session is on its way
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(connection.ready.wait(), self.options.startup_timeout)
            client = connection.client
            if client is None:
                return self._exited(connection, tool, before=False)
            timeout = self.options.timeout
            try:
                with anyio.fail_after(timeout):
                    result = await client.call_tool(tool, arguments)
            except TimeoutError:
                message = f"MCP server `{name}` did not answer `{tool}` within the {timeout:g} s timeout; the call was cancelled"
                return Outcome.failure("timeout", "Timeout", message)
            except Exception as error:
                closed = _connection_closed(error)
                if closed and connection.client is client:  # the first call to see it: a new session for the next calls
                    connection.dead = _describe(error)
                    connection.client = None
                    connection.ready.clear()
                    connection.wake.set()
                refused = connection.refused_reply()
                if refused is not None:  # the SDK ends the session on a refused reply: the call says why
                    code = TOO_LARGE if isinstance(refused, ReplyTooLarge) else "mcp_error"
                    message = f"MCP server `{name}`: the reply to `{tool}` was refused: {refused}"
                    return Outcome.failure(code, type(refused).__name__, message)
                if closed:
                    return self._exited(connection, tool, before=True)
                text = shorten(f"MCP server `{name}`: `{tool}` failed: {_describe(error)}", self.options.max_result_chars)[0]
                return Outcome.failure("mcp_error", type(error).__name__, text)
        return result_outcome(result, name, tool, self.options.max_result_chars)

    def _exited(self, connection: _Connection, tool: str, *, before: bool) -> Outcome:
        server = connection.server
        if before:
            what = f"is gone (it exited or closed the connection) before `{tool}` returned{connection.stderr_tail()}"
        else:
            why = connection.error or f"it was restarted {connection.restarts} times, the most a run allows"
            what = f"is gone and was not started again ({why}), so `{tool}` was not sent{connection.stderr_tail()}"
        # Only the name: the command or URL may hold a token, and this message goes into a row.
        return Outcome.failure("mcp_server_exited", "McpServerExited", f"MCP server `{server.name}` {what}")

    def list_tools(self, name: str) -> list[dict[str, Any]]:
        """Every tool the server lists (``tools/list``, all pages), as the protocol writes them."""
        loop = self._loop
        assert loop is not None, "start() first"
        future = asyncio.run_coroutine_threadsafe(self._list_tools(name), loop)
        return future.result()

    async def _list_tools(self, name: str) -> list[dict[str, Any]]:
        import anyio

        connection = self._connections[name]
        client = connection.client
        server = connection.server
        if client is None:
            raise FunctionsError(f"the MCP server `{name}` (`{server.shown}`) is gone{connection.stderr_tail()}")
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            with anyio.fail_after(self.options.timeout):
                for _ in range(1000):  # a server whose pages never end cannot hang the listing
                    page = await client.list_tools(cursor=cursor)
                    tools += [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in page.tools]
                    cursor = page.next_cursor
                    if not cursor:
                        break
        except TimeoutError:
            raise FunctionsError(
                f"the MCP server `{name}` (`{server.shown}`) did not list its tools within {self.options.timeout:g} s",
                hint="raise `--timeout`",
            ) from None
        except Exception as error:
            refused = connection.refused_reply()
            why = f"its reply was refused: {refused}" if refused is not None else _describe(error)
            raise FunctionsError(
                f"the MCP server `{name}` (`{server.shown}`) could not list its tools: {why}{connection.stderr_tail()}"
            ) from None
        return tools

    def stop_soon(self) -> None:
        """Tell every session to end, without waiting for it (``close`` waits); calls in flight end with an error."""
        loop = self._loop
        if loop is not None and self._stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop.set)

    def close(self) -> None:
        """End every session (the SDK stops stdio servers and what they started); bounded."""
        thread = self._thread
        if thread is None:
            return
        self.stop_soon()
        thread.join(_CLOSE_SECONDS)
        self._thread = None


def _connection_closed(error: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError

    while getattr(error, "exceptions", None):  # an ExceptionGroup: its first leaf
        error = error.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(error, MCPError):
        return "connection closed" in str(error).lower()
    return isinstance(error, (BrokenPipeError, ConnectionError, EOFError))
