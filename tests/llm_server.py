"""A scripted OpenAI-compatible server for tests and benchmarks, on 127.0.0.1.

Real sockets and real HTTP/1.1 (keep-alive), written on asyncio's protocol layer
so that it stays cheap at thousands of requests per second. Tests start it in a
background thread::

    with LLMServer() as server:
        server.enqueue(Reply.error(429, "slow down", retry_after="1"), Reply.chat("ok"))
        server.handler = lambda request: Reply.error(401, "bad key") if ... else None
        ... server.url ...  # http://127.0.0.1:PORT/v1
        assert server.max_in_flight <= 4

Each POST to ``/v1/chat/completions`` is answered, in this order, by the next
queued reply, else by ``handler(request)`` when it returns a reply, else by a
chat completion whose text echoes the last message (``latency`` seconds after the request
arrived, the handler's own time included, as an endpoint of that latency answers).
``GET /v1/models`` lists ``models``.

To hold a client at a known point (never by timing), close the gate:
``server.hold(after=3)`` answers the next 3 chat requests and parks the rest
unanswered; ``server.wait_parked(1)`` returns once one is parked (the client is
now mid-request, wherever the test needs it), and ``server.release()`` answers
them and every later one. ``server.hold_when = predicate`` parks only the requests it picks (one
slow request among answered ones), until ``release()``. The benchmark runs it as a process:
``python tests/llm_server.py --latency 0.05`` prints ``READY <port>``;
``python -m tests.llm_server --script pipeline`` answers apigen's own prompts
(``tests/scripted_model.pipeline_handler``), for ``benchmarks/pipeline.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Reply:
    """How to answer one request. ``action``: ``reply``, ``drop`` (close at once) or ``truncate``."""

    status: int = 200
    body: Any = None  # dict/list: sent as JSON; bytes/str: sent as they are; None: a chat completion of `text`
    text: str | None = None  # None: echo the request's last message
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None  # None: the server's latency
    action: str = "reply"
    prompt_tokens: int = 11
    completion_tokens: int = 7
    finish_reason: str = "stop"  # "length": the reply was cut by `max_tokens`

    @classmethod
    def chat(cls, text: str, **fields: Any) -> Reply:
        return cls(text=text, **fields)

    @classmethod
    def error(cls, status: int, message: str, *, retry_after: str | None = None, **headers: str) -> Reply:
        found = {key.replace("_", "-"): value for key, value in headers.items()}
        if retry_after is not None:
            found["retry-after"] = retry_after
        return cls(status=status, body={"error": {"message": message, "type": "test", "code": status}}, headers=found)

    @classmethod
    def drop(cls) -> Reply:
        return cls(action="drop", delay=0.0)

    @classmethod
    def truncated(cls) -> Reply:
        return cls(action="truncate", delay=0.0)

    @classmethod
    def not_json(cls) -> Reply:
        return cls(body=b"<html><body>Welcome to nginx!</body></html>", headers={"content-type": "text/html"})

    @classmethod
    def slow(cls, seconds: float) -> Reply:
        return cls(delay=seconds)


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @functools.cached_property
    def json(self) -> Any:
        try:
            return orjson.loads(self.raw) if self.raw else None
        except orjson.JSONDecodeError:
            return None

    @property
    def model(self) -> str | None:
        body = self.json
        return body.get("model") if isinstance(body, dict) else None

    @property
    def content(self) -> str:
        """The last message's text, which tests use to tell requests apart."""
        body = self.json
        messages = body.get("messages") if isinstance(body, dict) else None
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            return str(messages[-1].get("content", ""))
        return ""


def completion(text: str, model: str, prompt_tokens: int, completion_tokens: int, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class _Connection(asyncio.Protocol):
    def __init__(self, server: LLMServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            raw = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path, _version = (head[0].split(" ") + ["", "", ""])[:3]
            self.server._handle(self, Received(method, path, headers, raw))

    def send(self, status: int, body: bytes, headers: dict[str, str], *, truncate: bool = False) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"content-length: {len(body)}"]
        if "content-type" not in {key.lower() for key in headers}:
            lines.append("content-type: application/json")
        lines.extend(f"{key}: {value}" for key, value in headers.items())
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        if truncate:
            transport.write(data[: len(data) - max(1, len(body) // 2)])
            transport.close()
        else:
            transport.write(data)

    def drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class LLMServer:
    """The scripted server; see the module docstring."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        models: tuple[str, ...] = ("test-model", "other-model"),
        port: int = 0,
        handler: Callable[[Received], Reply | None] | None = None,
    ) -> None:
        self.latency = latency
        self.models = models
        self.port = port
        self.handler = handler  # may be set later too: a test may change how the server answers mid-way
        self.requests: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.keep_requests = True
        self._queue: deque[Reply] = deque()
        self._connections: set[_Connection] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.count = 0
        # the gate (see the module docstring): None when open, else how many more requests pass
        self._passes: int | None = None
        self._parked: list[tuple[_Connection, Received, Reply]] = []
        self._parked_changed = threading.Condition()
        self.hold_when: Callable[[Received], bool] | None = None  # parks the chat requests it picks, until release()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def chat_requests(self) -> list[Received]:
        return [request for request in self.requests if request.path.endswith("/chat/completions")]

    # --- serving ----------------------------------------------------------------------

    def _handle(self, connection: _Connection, request: Received) -> None:
        arrived = self._loop.time() if self._loop is not None else None
        if self.keep_requests:
            self.requests.append(request)
        if request.method == "GET" and request.path.rstrip("/").endswith("/models"):
            body = orjson.dumps({"object": "list", "data": [{"id": name, "object": "model"} for name in self.models]})
            connection.send(200, body, {})
            return
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            connection.send(404, orjson.dumps({"error": {"message": f"no route {request.path}"}}), {})
            return
        self.count += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None and self.handler is not None:
            reply = self.handler(request)
        if reply is None:
            reply = Reply()
        with self._parked_changed:  # the gate's state changes under this lock only, so hold/release take turns with it
            picked = self.hold_when is not None and self.hold_when(request)
            if picked or self._passes == 0:
                self._parked.append((connection, request, reply))
                self._parked_changed.notify_all()
                return
            if self._passes is not None:
                self._passes -= 1
        self._reply_later(connection, request, reply, arrived)

    def _reply_later(self, connection: _Connection, request: Received, reply: Reply, arrived: float | None = None) -> None:
        """Answer ``delay`` seconds after the request ``arrived`` (the handler's own time counts in it, as an
        endpoint of that latency answers however busy this process is); a parked request waits it whole."""
        delay = self.latency if reply.delay is None else reply.delay
        if delay > 0 and arrived is not None:
            assert self._loop is not None
            delay -= self._loop.time() - arrived
        if delay > 0:
            assert self._loop is not None
            timer: asyncio.TimerHandle | None = None

            def later() -> None:
                self._timers.discard(timer)
                self._answer(connection, request, reply)

            timer = self._loop.call_later(delay, later)
            self._timers.add(timer)
        else:
            self._answer(connection, request, reply)

    def _answer(self, connection: _Connection, request: Received, reply: Reply) -> None:
        self.in_flight -= 1
        if reply.action == "drop":
            connection.drop()
            return
        if reply.body is None:
            text = reply.text if reply.text is not None else request.content
            body = orjson.dumps(
                completion(text, request.model or "", reply.prompt_tokens, reply.completion_tokens, reply.finish_reason)
            )
        elif isinstance(reply.body, bytes):
            body = reply.body
        elif isinstance(reply.body, str):
            body = reply.body.encode()
        else:
            body = orjson.dumps(reply.body)
        connection.send(reply.status, body, reply.headers, truncate=reply.action == "truncate")

    # --- the gate -------------------------------------------------------------------

    def hold(self, after: int = 0) -> None:
        """Answer ``after`` more chat requests, then park every later one until :meth:`release`."""
        with self._parked_changed:
            self._passes = after

    def wait_parked(self, count: int = 1, seconds: float = 60.0) -> bool:
        """Wait until ``count`` requests are parked (the client is held mid-request); False if it never happens."""
        with self._parked_changed:
            return self._parked_changed.wait_for(lambda: len(self._parked) >= count, timeout=seconds)

    @property
    def parked(self) -> int:
        return len(self._parked)

    def release(self) -> None:
        """Open the gate: the parked requests are answered now, and every later one as usual.

        The gate opens here, on the caller's thread, so a :meth:`hold` called next holds the next request; only
        the parked replies are sent from the server's thread (where the sockets are).
        """
        assert self._loop is not None
        with self._parked_changed:
            self._passes = None
            self.hold_when = None
            parked, self._parked = self._parked, []

        def answer_parked() -> None:
            for connection, request, reply in parked:
                self._reply_later(connection, request, reply)

        self._loop.call_soon_threadsafe(answer_parked)

    # --- running ----------------------------------------------------------------------

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(lambda: _Connection(self), "127.0.0.1", self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    async def shutdown(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)

    def start(self) -> LLMServer:
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="llm-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A scripted OpenAI-compatible server (for benchmarks).")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each reply")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--script",
        choices=("echo", "pipeline"),
        default="echo",
        help="echo: echo the last message; pipeline: answer apigen's generation and judge prompts"
        " (tests/scripted_model.py; run as `python -m tests.llm_server` from the checkout)",
    )
    arguments = parser.parse_args()
    server = LLMServer(latency=arguments.latency, port=arguments.port)
    server.keep_requests = False
    if arguments.script == "pipeline":
        from tests.scripted_model import pipeline_handler

        server.handler = pipeline_handler

    async def run() -> None:
        await server.serve()
        print(f"READY {server.port}", flush=True)
        loop = asyncio.get_running_loop()
        stdin_closed = loop.run_in_executor(None, sys.stdin.read)  # ends when the parent closes our stdin
        await stdin_closed
        await server.shutdown()

    asyncio.run(run())


if __name__ == "__main__":
    main()
