"""Live sessions: one environment kept for a whole conversation, its calls sent step by step.

A pooled session (``sessions.py``) gets all its calls at once, so a conversation that calls
tools at each step of its agent would replay every earlier call each time, on fresh instances
with their state loaded and read again. A live session is made once: its instances are
loaded, then each step sends only its new calls and reads their results, and the final
state is read once, at the end.

Its process must not hold one of the pool's few workers while the conversation waits on its
models, so live sessions come from a fork server of their own: a worker (``worker.py``,
with the pool's containment: its own process group, the scrubbed environment, the memory
limit, no core dumps, dying with us) that imports the library once and, for each
connection handed to it (one end of a socket pair, passed over a Unix socket), forks the
session's process, which talks over it (``worker.serve_live_sessions``). A session parked
between steps costs a process blocked on its socket; the conversation's thread talks to it
directly, with the per-call timeout on each frame. A call that overruns it has the session's
tree killed; a process that dies is told by the server, which reaps it and reports its exit
code on the control socket (``_Exits``); either ends the session with its reason (``timeout``,
``crashed``), as a pooled session's would. Closing a session kills what is left of it; closing the
server kills every session still open, and a kill -9 of apigen takes them all down (each
process dies with its parent).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import FunctionsError
from ..redaction import Redactor
from .calls import ExecutorOptions, Outcome
from .descendants import kill_tree
from .environment import secrets_to_cut, worker_environment
from .pool import library_hint, refused_library, start_worker_process, worker_setup
from .sessions import SessionCall, SessionOutcome, SessionPending, SessionRequest
from .worker import decode_payload, encode_frame, exit_text, exit_type, take_frame

_LINE_BYTES = 8192  # the longest line of printed output passed on
_EXITS_KEPT = 1024  # exit reports kept for sessions that may still ask (most never do: they ended with their last frame)


class _Frames:
    """Length-prefixed frames read from one descriptor, each within a deadline."""

    def __init__(self, fd: int, redactor: Redactor) -> None:
        self.fd = fd
        self.redactor = redactor
        self.buffer = bytearray()

    def next(self, deadline: float) -> Any:
        """The next frame's value; ``EOFError`` at the end of input, ``TimeoutError`` past ``deadline``."""
        while True:
            frame = take_frame(self.buffer)
            if frame is not None:
                value = decode_payload(frame)
                # what a function may see it may send back: what --pass-env handed out, and keys, are cut
                return self.redactor.value(value) if self.redactor and self.redactor.may_be_in(frame) else value
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise TimeoutError
            try:
                data = os.read(self.fd, 1 << 18)
            except OSError:
                data = b""
            if not data:
                raise EOFError
            self.buffer += data


class _Exits:
    """How the processes of one fork server's sessions ended, as it reports them: ``[serial, exit code]`` frames.

    Read by a thread of its own, so that a session that reads the end of its connection can wait
    for its report (``wait``) whichever thread it is on; when the server is gone, none will come.
    """

    def __init__(self, control: socket.socket) -> None:
        self.codes: dict[int, int | None] = {}
        self.handed = 0  # the connections handed to the server: a session's serial
        self.over = False
        self.changed = threading.Condition()
        threading.Thread(target=self._read, args=(control,), name="apigen-live-exits", daemon=True).start()

    def _read(self, control: socket.socket) -> None:
        buffer = bytearray()
        while True:
            try:
                data = control.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            buffer += data
            reports = []
            while (frame := take_frame(buffer)) is not None:
                reports.append(decode_payload(frame))
            with self.changed:
                for serial, code in reports:
                    self.codes[serial] = code
                while len(self.codes) > _EXITS_KEPT:
                    del self.codes[next(iter(self.codes))]
                self.changed.notify_all()
        with self.changed:
            self.over = True
            self.changed.notify_all()

    def wait(self, serial: int, deadline: float) -> int | None:
        """The exit code of session ``serial``'s process, once reported; ``None`` if it never will be by ``deadline``."""
        with self.changed:
            while serial not in self.codes and not self.over and self.changed.wait(max(0.0, deadline - time.monotonic())):
                pass
            return self.codes.pop(serial, None)

    def forget(self, serial: int) -> None:
        with self.changed:
            self.codes.pop(serial, None)


class LiveSessions:
    """The fork server of live sessions (``open``); a ``SessionRunner`` too, running each request whole.

    with LiveSessions("store.py", ExecutorOptions(timeout=2)) as sessions:
        with sessions.open("row-1", {"Store": {}}) as live:
            live.run([{"name": "list_orders", "arguments": {}}])
            outcome = live.end()
    """

    def __init__(self, functions: str, options: ExecutorOptions | None = None) -> None:
        self.functions = functions
        self.options = options or ExecutorOptions()
        self.redactor = Redactor(secrets_to_cut(os.environ, self.options.pass_env, self.options.key_variables))
        self._lock = threading.Lock()  # conversations open sessions from threads of their own
        self._server: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._exits: _Exits | None = None  # the server's reports of its sessions' ends
        self._open: set[LiveSession] = set()
        self._closed = False
        self._ready = False  # the server has said it imported the library

    def __enter__(self) -> LiveSessions:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, *, wait: bool = True) -> LiveSessions:
        """Start the fork server and wait until it has imported the library; raise ``FunctionsError`` if it cannot.

        With ``wait=False`` the import goes on while the caller does other things; ``start()`` again (or
        the first ``open``) waits for it.
        """
        with self._lock:
            if self._server is None:
                self._start_server(wait=wait)
            elif wait and not self._ready:
                self._await_ready()
        return self

    def _start_server(self, *, wait: bool = True) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server = start_worker_process(worker_environment(os.environ, self.options.pass_env), (theirs.fileno(),))
        finally:
            theirs_fd = theirs.fileno()
            theirs.close()
        assert server.stdin is not None and server.stdout is not None and server.stderr is not None
        self._server, self._control, self._exits = server, ours, _Exits(ours)
        threading.Thread(target=self._relay_output, args=(server.stderr,), name="apigen-live-output", daemon=True).start()
        server.stdin.write(encode_frame({**worker_setup(self.functions, self.options), "live_sessions": theirs_fd}))
        self._ready = False
        if wait:
            self._await_ready()

    def _await_ready(self) -> None:
        server = self._server
        assert server is not None and server.stdout is not None
        try:
            ready = _Frames(server.stdout.fileno(), self.redactor).next(time.monotonic() + self.options.startup_timeout)
        except TimeoutError:
            self._stop_server()
            raise FunctionsError(
                f"importing the function library `{self.functions}` did not finish within {self.options.startup_timeout:g} s",
                hint="look for code that runs at import time (a loop, a network call, input()) and move it into a function",
            ) from None
        except EOFError:
            status = server.wait()
            self._stop_server()
            raise FunctionsError(
                f"the worker loading `{self.functions}` {exit_text(status)}",
                hint=library_hint("", self.functions, self.options.memory_mb),
            ) from None
        if not isinstance(ready, dict) or not ready.get("ready"):
            self._stop_server()
            raise refused_library(self.functions, ready if isinstance(ready, dict) else {}, self.options.memory_mb)
        self._ready = True

    def _relay_output(self, stream: Any) -> None:
        """What the library's code prints (the server's, every session's stderr), line by line to ``on_output``.

        Always read, so that a session that prints much never blocks on a full pipe; a line is cut at ``_LINE_BYTES``.
        """
        partial = b""
        while data := os.read(stream.fileno(), 1 << 16):
            if self.options.on_output is None:
                continue
            lines = (partial + data).split(b"\n")
            partial = lines.pop()[-_LINE_BYTES:]
            for line in lines:
                self.options.on_output(self.redactor.text(line[:_LINE_BYTES].decode("utf-8", "replace")))
        stream.close()

    def open(self, key: Any, environment: Any, *, defaults: bool = False) -> LiveSession:
        """A session on fresh instances of ``environment``; its calls come with ``LiveSession.run``."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock, theirs:
            try:
                self._hand_over(theirs)
            except BaseException:
                ours.close()
                raise
            assert self._exits is not None
            session = LiveSession(self, SessionRequest(key, environment, (), defaults), ours, self._exits)
            self._open.add(session)
        session._send({"environment": environment, "defaults": defaults})
        return session

    def _hand_over(self, connection: socket.socket) -> None:
        """Pass the session's end of ``connection`` to the server (started if need be), which forks the session."""
        if self._closed:
            raise RuntimeError("the live sessions are closed")
        if self._server is None:
            self._start_server()
        elif not self._ready:
            self._await_ready()
        assert self._control is not None and self._exits is not None
        try:
            socket.send_fds(self._control, [b"s"], [connection.fileno()])
        except OSError:  # the server is gone (killed from outside): a fresh one serves this session and the next
            self._stop_server()
            self._start_server()
            assert self._control is not None and self._exits is not None
            socket.send_fds(self._control, [b"s"], [connection.fileno()])
        self._exits.handed += 1

    def _forget(self, session: LiveSession) -> None:
        with self._lock:
            self._open.discard(session)

    def start_whole(self, request: SessionRequest) -> LiveSession:
        """A session with all its calls and its end sent at once: it runs while the caller does other things,
        and ``end`` reads its outcome (each frame within the timeout of the one before, counted from the reading)."""
        live = self.open(request.key, request.environment, defaults=request.defaults)
        live.send_whole(request.calls)
        return live

    def run_sessions(self, requests: Iterable[SessionRequest]) -> Iterator[SessionOutcome]:
        """Each session run whole (its calls in one step, then its final state), one after another."""
        for request in requests:
            with self.start_whole(request) as live:
                yield live.end()

    def close(self) -> None:
        """End every session still open and the server (what they started goes with them)."""
        with self._lock:
            self._closed = True
            sessions, self._open = list(self._open), set()
        for session in sessions:
            session.close()
        with self._lock:
            self._stop_server()

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.shutdown(socket.SHUT_RDWR)  # end of input: the server returns, and the exits' reader
            self._control.close()
            self._control = None
        if server is None:
            return
        kill_tree(server.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGKILL)  # the keepers are in its group, wherever /proc cannot tell
        server.wait()
        for stream in (server.stdin, server.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class LiveSession:
    """One live session: ``run`` its calls step by step, ``end`` for the final state, ``close`` in any case."""

    def __init__(self, owner: LiveSessions, request: SessionRequest, connection: socket.socket, exits: _Exits) -> None:
        self.owner = owner
        self.exits = exits  # where the server reports how the session's process ended
        self.serial = exits.handed
        self.pending = SessionPending(0, request)
        self.connection = connection
        self.frames = _Frames(connection.fileno(), owner.redactor)
        self.pid: int | None = None  # the session's process's, once it has said it
        self.ending = False  # the end was asked for: no call may follow
        self.timeout = owner.options.timeout

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def outcome(self) -> SessionOutcome | None:
        """Set once the session has ended: by ``end``, or by a problem (``outcome.problem``)."""
        return self.pending.outcome

    def run(self, calls: Sequence[Mapping[str, Any]]) -> tuple[SessionCall, ...]:
        """Run ``calls`` after the earlier ones; the calls that ran (fewer when the session ended in them: ``outcome`` says why)."""
        first = len(self.pending.done_calls)
        if self.outcome is None and calls:
            self.pending.add_calls(calls)
            if self.outcome is None:
                self._send({"calls": [[name, arguments] for name, arguments in self.pending.calls[first:]]})
                self._read_until(lambda: len(self.pending.done_calls) == len(self.pending.calls))
        return self.pending.done_calls[first:]

    def send_whole(self, calls: Sequence[Mapping[str, Any]]) -> None:
        """Send ``calls`` and the end without waiting; ``end`` reads what they did."""
        self.pending.add_calls(calls)
        if self.outcome is None and self.pending.calls:
            self._send({"calls": [[name, arguments] for name, arguments in self.pending.calls]})
        self._send({"end": True})
        self.ending = True

    def end(self) -> SessionOutcome:
        """The session's outcome with its final state (read once, here); the session's process ends."""
        if self.outcome is None:
            if not self.ending:
                self._send({"end": True})
                self.ending = True
            self._read_until(lambda: False)
        assert self.outcome is not None
        return self.outcome

    def close(self) -> None:
        """Let the session go: its process and what it started are ended, whatever state they are in."""
        if self.connection.fileno() < 0:
            return
        self.connection.close()  # a process parked on its socket reads the end and leaves
        if self.outcome is None or not self.outcome.ok:  # else it ended on its own, after its last frame
            self._kill()
        self.exits.forget(self.serial)
        self.owner._forget(self)

    def _send(self, request: dict[str, Any]) -> None:
        self.pending.started = time.monotonic()
        with contextlib.suppress(OSError):  # the process is gone: reading says how
            self.connection.sendall(encode_frame(request))

    def _read_until(self, done: Callable[[], bool]) -> None:
        """Take frames until ``done()`` or the session has ended; each frame within the timeout of the one before."""
        while self.outcome is None and not done():
            try:
                message = self.frames.next(time.monotonic() + self.timeout)
            except TimeoutError:
                self._kill()
                text = f"{self.pending.what} did not return within the {self.timeout:g} s timeout; its process was stopped"
                self.pending.fail(Outcome.failure("timeout", "Timeout", text))
                return
            except EOFError:  # the process ended without its last frame: the server says how
                code = self.exits.wait(self.serial, time.monotonic() + self.timeout)
                if code is None:
                    self._kill()
                    self.pending.fail(
                        Outcome.failure("crashed", "ProcessExit", f"{self.pending.what} ended its session: its process is gone")
                    )
                else:  # reaped, and what it left ended by the server: its pid may be another process's by now
                    self.pid = None
                    self.pending.take([0, "ended", "crashed", exit_type(code), exit_text(code), 0.0])
                return
            if self.pid is None and isinstance(message, list) and len(message) == 1:
                self.pid = int(message[0])  # the session's process's first frame
                continue
            self.pending.take(message)

    def _kill(self) -> None:
        if self.pid is not None:
            kill_tree(self.pid)
