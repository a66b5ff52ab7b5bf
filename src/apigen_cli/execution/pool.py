"""The pool of worker processes that run the user's Python functions.

Python functions run in worker processes (``worker.py``) that import the library
once and are reused. They are plain subprocesses of this interpreter, started by
path and spoken to in length-prefixed orjson frames over pipes, rather than a
``multiprocessing`` or ``concurrent.futures`` pool, because:

- a call that overruns its timeout must cost one worker, not the pool:
  ``ProcessPoolExecutor`` turns a dead worker into ``BrokenProcessPool`` for
  every pending task, and ``multiprocessing.Pool`` cannot kill one task's process;
- each worker needs its own setup before the library is imported (memory limit,
  file descriptors moved so that prints cannot reach our stdout, a scrubbed
  environment, its own process group so that a timeout kills what it spawned),
  which a spawn/forkserver context only allows through pickled initialisers;
- only JSON values cross the boundary (arguments in, JSON-converted results out),
  so nothing is pickled and a function cannot send back an object that runs code
  when we read it;
- the parent drives every worker from one ``selectors`` loop, sending calls in
  batches and reading results as they come: the per-call cost stays a few
  microseconds, where a future per call and a thread hand-off would cost more.

Calls are pipelined: a worker holds a few queued calls (about 50 ms worth, from a
running mean of its call times), and reports each result as soon as it has it, so
the parent always knows which call is running and since when. That call's
deadline is the timeout after the previous result (or after the send, when the
worker was idle). Past it the worker's process group is killed, a fresh worker
starts, and the calls that were queued behind the culprit go back to the queue.

Sessions (``sessions.py``) travel the same way: a session is one item of a batch, and
its worker answers with a frame per step (the environment loaded, each call, the final
state), so each step has the timeout; a session that times out or kills its worker ends
with that reason, and what was queued behind it runs elsewhere.

POSIX only (Linux, macOS): it relies on ``select`` over pipes, process groups and
``resource.setrlimit``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FunctionsError
from ..redaction import Redactor
from .calls import ExecutorOptions, Outcome, Pending
from .descendants import kill_tree
from .environment import secrets_to_cut, worker_environment
from .isolation import hide_this_process
from .sessions import SessionPending
from .worker import decode_payload, encode_frame, exit_text, exit_type, looks_like_module

WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))

_QUEUED_SECONDS = 0.05  # work queued ahead in each worker
_MAX_DEPTH = 64
POLL_BATCH = 32  # a non-blocking poll sends calls once this many are queued...
POLL_INTERVAL = 0.001  # ...or this long after the last poll, so calls travel in batches
_STDERR_TAIL = 8192


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class FunctionsInfo:
    """What the library offers, as its first worker reported it."""

    spec: str
    functions: frozenset[str]
    ambiguous: dict[str, list[str]]
    refused: dict[str, str]
    memory_limited: bool
    classes: frozenset[str] = frozenset()

    def explain_missing(self, name: str) -> str:
        """Why ``name`` does not resolve to a library function, in words."""
        import builtins

        if name in self.ambiguous:
            choices = " or ".join(f"`{option}`" for option in self.ambiguous[name])
            return f"`{name}` is defined in several modules of `{self.spec}`; name it {choices}"
        if name in self.refused:
            return f"{self.refused[name]}; only public functions defined in `{self.spec}` run"
        if any(part.startswith("_") for part in name.split(".")):
            return f"`{name}` is private (its name starts with `_`); only public functions run"
        if hasattr(builtins, name):
            return f"`{name}` is a Python builtin, not a function of `{self.spec}`"
        return f"no function `{name}` is defined in `{self.spec}`"


# --- the worker pool ------------------------------------------------------------------


class _Worker:
    __slots__ = (
        "process",
        "pid",
        "stdin_fd",
        "stdout_fd",
        "stderr_fd",
        "inbox",
        "outbox",
        "outstanding",
        "ready",
        "spawned",
        "head_since",
        "mean_seconds",
        "stderr_tail",
        "partial_line",
        "alive",
    )

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        self.process = process
        self.pid = process.pid
        self.stdin_fd = process.stdin.fileno()
        self.stdout_fd = process.stdout.fileno()
        self.stderr_fd = process.stderr.fileno()
        os.set_blocking(self.stdin_fd, False)
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.outstanding: deque[Pending | SessionPending] = deque()
        self.ready = False
        self.spawned = time.monotonic()
        self.head_since = 0.0
        self.mean_seconds = 0.005
        self.stderr_tail = bytearray()
        self.partial_line = b""
        self.alive = True

    def depth(self) -> int:
        return max(1, min(_MAX_DEPTH, int(_QUEUED_SECONDS / max(self.mean_seconds, 1e-6))))


_OUT, _ERR, _IN, _WAKE = range(4)


class WorkerPool:
    """The worker processes and the one ``selectors`` loop that drives them (and wakes for HTTP)."""

    def __init__(self, spec: str | None, options: ExecutorOptions) -> None:
        self.spec = spec
        self.options = options
        self.functions_info: FunctionsInfo | None = None
        self.queue: deque[Pending | SessionPending] = deque()
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.selector.register(self._wake_read, selectors.EVENT_READ, (None, _WAKE))
        self._env = worker_environment(os.environ, options.pass_env)
        # What a function may see it may send back: what --pass-env handed out, and a key it found, are cut from every frame.
        self.redactor = Redactor(secrets_to_cut(os.environ, options.pass_env, options.key_variables))
        self._startup_error: FunctionsError | None = None
        self.closed = False
        self.last_pump = 0.0

    # lifecycle

    def start(self) -> None:
        """Start every worker and wait until each has imported the library; raise ``FunctionsError`` if one cannot."""
        if self.spec is None:
            return
        if not os.path.exists(self.spec) and not looks_like_module(self.spec):
            raise FunctionsError(
                f"the function library `{self.spec}` does not exist",
                hint="pass a .py file, a folder of .py files, or the name of an importable module to `--functions`",
            )
        count = self.options.workers or default_workers()
        for _ in range(count):
            self._spawn()
        while not all(worker.ready for worker in self.workers):
            self.pump(0.5)

    def _spawn(self) -> _Worker:
        worker = _Worker(start_worker_process(self._env))
        self.workers.append(worker)
        self.selector.register(worker.stdout_fd, selectors.EVENT_READ, (worker, _OUT))
        self.selector.register(worker.stderr_fd, selectors.EVENT_READ, (worker, _ERR))
        self._send(worker, encode_frame(worker_setup(self.spec, self.options)))
        return worker

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for worker in self.workers:
            if worker.outstanding or not worker.ready:
                self._kill(worker)  # busy: it would not read its end of input soon
            else:
                self._unregister(worker)
                _close_quietly(worker.process.stdin)  # end of input: an idle worker exits at once
        deadline = time.monotonic() + 1.0
        for worker in self.workers:
            if worker.alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(max(0.0, deadline - time.monotonic()))
                self._kill(worker)
        self.workers.clear()
        self.selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def wake(self) -> None:
        """Callable from any thread: make a blocked ``pump`` return."""
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            os.write(self._wake_write, b"\0")

    # calls

    def submit(self, pending: Pending | SessionPending) -> None:
        self.queue.append(pending)

    def pump(self, timeout: float | None) -> None:
        """Send queued calls, wait up to ``timeout`` for results, enforce deadlines."""
        self.last_pump = time.monotonic()
        self._dispatch()
        deadline = self._next_deadline()
        if deadline is not None:
            remaining = max(0.0, deadline - time.monotonic())
            timeout = remaining if timeout is None else min(timeout, remaining)
        for key, _mask in self.selector.select(timeout):
            worker, kind = key.data
            if kind == _WAKE:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_read, 4096)
            elif not worker.alive:
                continue
            elif kind == _OUT:
                self._read_results(worker)
            elif kind == _ERR:
                self._read_stderr(worker)
            else:
                self._flush(worker)
        self._expire(time.monotonic())
        if self._startup_error is not None:
            raise self._startup_error
        self._dispatch()

    def _dispatch(self) -> None:
        queue = self.queue
        if not queue:
            return
        idle_first = sorted((w for w in self.workers if w.ready and w.alive), key=lambda w: len(w.outstanding))
        for position, worker in enumerate(idle_first):
            room = worker.depth() - len(worker.outstanding)
            if room <= 0 or not queue:
                continue
            share = -(-len(queue) // (len(idle_first) - position))  # spread what is queued over the workers left
            batch = [queue.popleft() for _ in range(min(room, share))]
            now = time.monotonic()
            if not worker.outstanding:
                worker.head_since = now
            worker.outstanding.extend(batch)
            self._send(worker, encode_frame([_request(unit, now) for unit in batch]))

    def _send(self, worker: _Worker, frame: bytes) -> None:
        had_backlog = bool(worker.outbox)
        worker.outbox += frame
        if not had_backlog:
            self._flush(worker)

    def _flush(self, worker: _Worker) -> None:
        try:
            written = os.write(worker.stdin_fd, worker.outbox)
        except BlockingIOError:
            written = 0
        except (BrokenPipeError, OSError):
            return  # the worker is gone; its stdout's end tells us how
        del worker.outbox[:written]
        registered = self.selector.get_map().get(worker.stdin_fd) is not None
        if worker.outbox and not registered:
            self.selector.register(worker.stdin_fd, selectors.EVENT_WRITE, (worker, _IN))
        elif not worker.outbox and registered:
            self.selector.unregister(worker.stdin_fd)

    def _read_results(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.stdout_fd, 1 << 18)
        except OSError:
            data = b""
        inbox = worker.inbox
        inbox += data
        offset, size = 0, len(inbox)
        while size - offset >= 4:
            length = int.from_bytes(inbox[offset : offset + 4], "big")
            end = offset + 4 + length
            if end > size:
                break
            frame = bytes(inbox[offset + 4 : end])
            try:
                message = decode_payload(frame)
            except (ValueError, RecursionError):  # cannot happen unless something wrote into the protocol pipe
                self._replace(worker, Outcome.failure("crashed", "ProtocolError", "the worker sent a frame that is not JSON"))
                return
            if self.redactor and self.redactor.may_be_in(frame):
                message = self.redactor.value(message)
            offset = end
            if not worker.alive:
                return
            if worker.ready:
                self._on_result(worker, message)
            else:
                self._on_ready(worker, message)
        if offset:
            del inbox[:offset]
        if not data:
            self._on_exit(worker)

    def _on_result(self, worker: _Worker, message: list[Any]) -> None:
        unit = worker.outstanding[0]
        if unit.call_id != message[0]:  # cannot happen unless something wrote into the protocol pipe
            self._replace(worker, Outcome.failure("crashed", "ProtocolError", "the worker answered out of turn"))
            return
        worker.head_since = time.monotonic()
        if isinstance(unit, SessionPending):  # a session sends a frame per step, and ends with one of its own
            if not unit.take(message):
                return
            seconds = unit.seconds
        else:
            _call_id, code, payload, truncated, seconds = message
            if code is None:
                unit.outcome = Outcome(True, payload, truncated=truncated)
            else:
                unit.outcome = Outcome.failure(code, payload.get("type", ""), payload.get("message", ""))
        worker.outstanding.popleft()
        worker.mean_seconds = 0.8 * worker.mean_seconds + 0.2 * float(seconds)

    def _on_ready(self, worker: _Worker, message: dict[str, Any]) -> None:
        if not message.get("ready"):
            self._startup_error = refused_library(self.spec, message, self.options.memory_mb)
            return
        worker.ready = True
        if self.functions_info is None:
            self.functions_info = FunctionsInfo(
                spec=str(self.spec),
                functions=frozenset(message["functions"]),
                ambiguous=dict(message["ambiguous"]),
                refused=dict(message["refused"]),
                memory_limited=bool(message.get("memory_limited")),
                classes=frozenset(message.get("classes", ())),
            )

    def _read_stderr(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.stderr_fd, 1 << 16)
        except OSError:
            data = b""
        self._take_stderr(worker, data)

    def _take_stderr(self, worker: _Worker, data: bytes) -> None:
        if not data:
            if self.selector.get_map().get(worker.stderr_fd) is not None:
                self.selector.unregister(worker.stderr_fd)
            return
        tail = worker.stderr_tail
        tail += data
        if len(tail) > _STDERR_TAIL:
            del tail[:-_STDERR_TAIL]
        if self.options.on_output is not None:
            lines = (worker.partial_line + data).split(b"\n")
            worker.partial_line = lines.pop()
            for line in lines:
                self.options.on_output(self.redactor.text(line.decode("utf-8", "replace")))

    def _next_deadline(self) -> float | None:
        deadline = None
        timeout = self.options.timeout
        for worker in self.workers:
            if worker.ready:
                if not worker.outstanding:
                    continue
                moment = worker.head_since + timeout
            else:
                moment = worker.spawned + self.options.startup_timeout
            if deadline is None or moment < deadline:
                deadline = moment
        return deadline

    def _expire(self, now: float) -> None:
        timeout = self.options.timeout
        for worker in list(self.workers):
            if not worker.alive:
                continue
            if worker.ready and worker.outstanding and now >= worker.head_since + timeout:
                what = worker.outstanding[0].what
                message = f"{what} did not return within the {_seconds(timeout)} timeout; its worker was stopped"
                self._replace(worker, Outcome.failure("timeout", "Timeout", message))
            elif not worker.ready and now >= worker.spawned + self.options.startup_timeout:
                limit = _seconds(self.options.startup_timeout)
                self._startup_error = FunctionsError(
                    f"importing the function library `{self.spec}` did not finish within {limit}",
                    hint="look for code that runs at import time (a loop, a network call, input()) and move it into a function",
                )
                self._kill(worker)
                self.workers.remove(worker)

    def _on_exit(self, worker: _Worker) -> None:
        """The worker's stdout closed: it died (or closed its pipes). Say why, and replace it."""
        self._drain_stderr(worker)
        try:
            status = worker.process.wait(0.5)
        except subprocess.TimeoutExpired:
            status = None
        if not worker.ready:
            self._kill(worker)
            self.workers.remove(worker)
            if self._startup_error is None:
                self._startup_error = FunctionsError(
                    f"the worker loading `{self.spec}` {exit_text(status)}{_fatal_line(worker.stderr_tail)}",
                    hint=library_hint("", self.spec, self.options.memory_mb),
                )
            return
        what = worker.outstanding[0].what if worker.outstanding else "a function"
        message = f"{what} ended its worker process: {exit_text(status)}{_fatal_line(worker.stderr_tail)}"
        self._replace(worker, Outcome.failure("crashed", exit_type(status), self.redactor.text(message)))

    def _drain_stderr(self, worker: _Worker) -> None:
        """Read what a dead worker left on stderr (a fatal error's traceback), without blocking."""
        if self.selector.get_map().get(worker.stderr_fd) is None:
            return
        os.set_blocking(worker.stderr_fd, False)
        for _ in range(64):
            try:
                data = os.read(worker.stderr_fd, 1 << 16)
            except BlockingIOError:
                return  # something the worker started still holds the pipe open
            except OSError:
                data = b""
            self._take_stderr(worker, data)
            if not data:
                return

    def _replace(self, worker: _Worker, head_outcome: Outcome) -> None:
        """Stop ``worker``: its running call gets ``head_outcome``, the calls queued behind it go back to the queue."""
        self._kill(worker)
        self.workers.remove(worker)
        if worker.outstanding:
            head = worker.outstanding.popleft()
            if isinstance(head, SessionPending):
                head.fail(head_outcome)
            else:
                head.outcome = head_outcome
            self.queue.extendleft(reversed(worker.outstanding))  # not started yet: they run elsewhere
            worker.outstanding.clear()
        if not self.closed:
            self._spawn()

    def _kill(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        self._unregister(worker)
        kill_tree(worker.pid)  # the worker and all it started, in a session of its own or double-forked
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pid, signal.SIGKILL)  # what is left of its group, where /proc cannot tell
        if worker.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
        worker.process.wait()
        for stream in (worker.process.stdin, worker.process.stdout, worker.process.stderr):
            _close_quietly(stream)

    def _unregister(self, worker: _Worker) -> None:
        registered = self.selector.get_map()
        for fd in (worker.stdin_fd, worker.stdout_fd, worker.stderr_fd):
            if registered.get(fd) is not None:
                self.selector.unregister(fd)


def start_worker_process(env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """A worker process (``worker.py``), in a session of its own, its three streams piped; it waits for its setup frame."""
    hide_this_process()  # the worker runs the user's code: it must not read our environment (keys) or memory
    return subprocess.Popen(
        [sys.executable, WORKER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        bufsize=0,
        pass_fds=pass_fds,
    )


def worker_setup(spec: str | None, options: ExecutorOptions) -> dict[str, Any]:
    """A worker's first frame: the library to load and the bounds of its calls."""
    memory = options.memory_mb if options.memory_mb > 0 else None
    return {"functions": spec, "memory_mb": memory, "max_result_chars": options.max_result_chars}


def refused_library(spec: str | None, message: dict[str, Any], memory_mb: int) -> FunctionsError:
    """A worker's answer that it could not load the library (``{"ready": false, "error": ...}``), as the error to raise."""
    error = message.get("error") or {}
    where = f" ({error['where']})" if error.get("where") and error["where"] != spec else ""
    return FunctionsError(
        f"cannot load the function library `{spec}`: {error.get('message', 'unknown error')}{where}",
        hint=library_hint(str(error.get("type", "")), spec, memory_mb),
    )


def _close_quietly(stream: Any) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _request(unit: Pending | SessionPending, now: float) -> Any:
    """A call or a session, as the worker reads it in a batch."""
    if isinstance(unit, SessionPending):
        unit.started = now
        return unit.frame()
    return [unit.call_id, unit.name, unit.arguments]


def _fatal_line(tail: bytearray) -> str:
    """The interpreter's own last words (``Fatal Python error: ...``), when it left some."""
    for line in reversed(bytes(tail).decode("utf-8", "replace").splitlines()):
        if line.startswith("Fatal Python error"):
            return f"; {line.strip()}"
    return ""


def library_hint(kind: str, spec: str | None, memory_mb: int) -> str:
    if kind == "MemoryError":
        return f"importing it needs more than `--memory-mb {memory_mb}`: raise the limit, or pass `--memory-mb 0` for none"
    if kind in ("NotFound", "NotPython", "EmptyLibrary"):
        return "pass a .py file, a folder of .py files, or the name of an importable module to `--functions`"
    if kind == "ShadowsModule":
        return "rename the file so that it does not hide a module of the same name"
    if spec is not None and looks_like_module(spec) and not os.path.exists(spec):
        return f"check that `python -c 'import {spec}'` works with this Python ({sys.executable})"
    return f"check that `python {spec}` runs without errors with this Python ({sys.executable})"
