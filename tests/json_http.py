"""Small REST servers for the tests, on 127.0.0.1: a quiet JSON handler base and a start-and-stop helper.

Each test file still writes its own routes (what the fake API answers is what the test
is about); the plumbing under them, the same in every file, is here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TypeVar

Server = TypeVar("Server", bound=HTTPServer)


class JsonHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing (pytest's output stays the tests') and answers JSON."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        return

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(body).encode(), "application/json", headers)

    def send_body(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self) -> Any:
        """The request's JSON body, or None when it has none."""
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None


def base_url(server: HTTPServer) -> str:
    """``http://127.0.0.1:PORT`` of a server bound to port 0."""
    return f"http://127.0.0.1:{server.server_address[1]}"


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """Serve ``server`` from a background thread for the block; then stop it, close its socket and join the thread."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
