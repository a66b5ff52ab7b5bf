"""Hostile HTTP servers on 127.0.0.1, for the attacks of issue 12.

A thread per connection, raw sockets, so that a test can send what no
well-behaved server would: a reply one byte at a time (in the headers, with a
Content-Length, or chunked), a gzip bomb, a reply that echoes the API key, a
redirect to another origin, a reply of any size, a completion cut off by length.

    with HostileServer(trickle(b"...", every=0.05)) as server:
        ... server.url ...          # http://127.0.0.1:PORT
        server.requests             # every request seen: Seen(method, path, headers, body)

A behaviour is a function of the request returning the chunks to send, each a
``bytes`` (sent at once) or a ``float`` (seconds to pause). The server never
blocks the test: every socket has a timeout and threads are daemons.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Chunk = bytes | float
Behaviour = Callable[["Seen"], Iterable[Chunk]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HostileServer:
    """Serves ``behaviour(request)`` to every request; see the module docstring."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[Seen] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _address = self._socket.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        buffer = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                method, path = (lines[0].split(" ") + ["", ""])[:2]
                seen = Seen(method, path, headers, body)
                self.requests.append(seen)
                for chunk in self.behaviour(seen):
                    if self._stop.is_set():
                        return
                    if isinstance(chunk, float):
                        time.sleep(chunk)
                    else:
                        connection.sendall(chunk)
        except OSError:  # the client gave up: that is what the attacks want
            return
        finally:
            connection.close()


# --- replies ------------------------------------------------------------------------


def response(status: int, body: bytes, headers: dict[str, str] | None = None, *, length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} Status"]
    found = {key.lower(): value for key, value in (headers or {}).items()}
    found.setdefault("content-type", "application/json")
    if length:
        found.setdefault("content-length", str(len(body)))
    lines.extend(f"{key}: {value}" for key, value in found.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def completion(text: str, finish_reason: str = "stop") -> bytes:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5},
        }
    ).encode()


def answer(text: str, finish_reason: str = "stop") -> Behaviour:
    """A well-formed chat completion of ``text``."""
    return lambda _seen: [response(200, completion(text, finish_reason))]


def trickle(body: bytes, *, every: float, where: str = "body") -> Behaviour:
    """One byte per ``every`` seconds: in the headers, in a Content-Length body, or in a chunked body."""

    def behaviour(_seen: Seen) -> Iterator[Chunk]:
        if where == "headers":
            data = response(200, body)
            for index in range(len(data)):
                yield data[index : index + 1]
                yield every
            return
        if where == "chunked":
            yield response(200, b"", {"transfer-encoding": "chunked"}, length=False)
            for index in range(len(body)):
                yield b"1\r\n" + body[index : index + 1] + b"\r\n"
                yield every
            yield b"0\r\n\r\n"
            return
        head = response(200, body)[: -len(body)]
        yield head
        for index in range(len(body)):
            yield body[index : index + 1]
            yield every

    return behaviour


def gzip_bomb(inflated: int, status: int = 200, content_type: str = "application/json") -> Behaviour:
    """A small gzip body that inflates to ``inflated`` bytes of spaces."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * (1 << 20)
    parts = []
    for _ in range(inflated // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    bomb = b"".join(parts)
    headers = {"content-encoding": "gzip", "content-type": content_type}
    return lambda _seen: [response(status, bomb, headers)]


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)


def huge(size: int, content_type: str = "application/json") -> Behaviour:
    """A valid JSON reply of about ``size`` bytes (a long string), sent in one go."""
    body = b'{"data": "' + b"x" * size + b'"}'
    return lambda _seen: [response(200, body, {"content-type": content_type})]


def echo_key(status: int = 200, part: slice = slice(None)) -> Behaviour:
    """A reply whose text (or error message) repeats the Authorization header it was sent (``part`` of it)."""

    def behaviour(seen: Seen) -> list[Chunk]:
        sent = seen.headers.get("authorization", "")[part]
        if status == 200:
            text = json.dumps([{"query": f"use {sent}", "answers": [{"name": "f", "arguments": {"k": sent}}]}])
            return [response(200, completion(text))]
        body = json.dumps({"error": {"message": f"the key {sent} is not valid"}}).encode()
        return [response(status, body)]

    return behaviour


def redirect(location: str, status: int = 302) -> Behaviour:
    return lambda _seen: [response(status, b"", {"location": location})]


def echo_request() -> Behaviour:
    """A JSON reply describing the request: its path and headers."""

    def behaviour(seen: Seen) -> list[Chunk]:
        body = json.dumps({"path": seen.path, "method": seen.method}).encode()
        return [response(200, body)]

    return behaviour


def mcp_over_http(tools: list[dict[str, Any]], **replies: Behaviour) -> Behaviour:
    """A streamable-HTTP MCP server speaking JSON replies; ``replies`` overrides a method (``tools_call=...``).

    Enough of the protocol for the SDK's client: ``initialize``, notifications (202),
    ``tools/list`` and ``tools/call``; the GET stream is not offered (405).
    """

    def behaviour(seen: Seen) -> Iterable[Chunk]:
        message = seen.json
        if seen.method != "POST" or not isinstance(message, dict):
            return [response(405, b"")]
        method = str(message.get("method", ""))
        if "id" not in message:
            return [response(202, b"")]
        override = replies.get(method.replace("/", "_"))
        if override is not None:
            return override(seen)
        if method == "initialize":
            version = message.get("params", {}).get("protocolVersion", "2025-06-18")
            result: Any = {
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": tools}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": "called"}], "isError": False}
        else:
            result = {}
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        return [response(200, body, {"content-type": "application/json"})]

    return behaviour
