"""A scripted OpenAI-compatible batch API on 127.0.0.1: files and batches endpoints.

Real sockets, real HTTP/1.1, real multipart uploads. Tests start it in a thread::

    with BatchServer(handler=pipeline_handler) as server:
        ... server.url ...  # http://127.0.0.1:PORT/v1
        assert len(server.created) == 1

Each ``GET /v1/batches/{id}`` moves a batch one step along ``steps`` (by default
validating -> in_progress -> finalizing -> completed); while ``hold`` is cleared,
batches (from the ``hold_from``-th on) stay ``in_progress``. On completion every request line is answered by
``handler`` (a ``Received`` chat request -> ``Reply``, as for ``LLMServer``): 200
replies go to the output file, others to the error file, in reverse order (the
provider's order is not the input's). ``fate(batch_number)`` may say ``expired``
(the second half of the requests is never answered) or ``failed`` (validation
failed). ``POST /v1/chat/completions`` is answered by ``handler`` at once, as a
provider answers online requests too. Creating a batch sets ``created_event``; with ``hold_create`` cleared, the
reply to the create call waits (the batch exists already, as on a real provider).
Downloading a file sets ``download_event``; with ``hold_download`` cleared, it waits.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import itertools
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .llm_server import Received, Reply, completion

Handler = Callable[[Received], Reply]
STEPS = ("validating", "in_progress", "finalizing", "completed")


def echo(request: Received) -> Reply:
    return Reply.chat(request.content)


class BatchServer:
    def __init__(self, handler: Handler = echo, *, fate: Callable[[int], str] | None = None) -> None:
        self.handler = handler
        self.fate = fate or (lambda _number: "completed")
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []  # batch ids, oldest first
        self.created: list[dict[str, Any]] = []
        self.uploads = 0
        self.chat_requests = 0
        self.polls = 0
        self.log: list[tuple[str, str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.hold_from = 1  # the first batch that `hold` holds
        self.hold_create = threading.Event()
        self.hold_create.set()
        self.created_event = threading.Event()
        self.hold_download = threading.Event()
        self.hold_download.set()
        self.download_event = threading.Event()
        self.polled_event = threading.Event()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> BatchServer:
        server = self

        class Handle(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else orjson.dumps(body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def do_GET(self) -> None:
                status, body = server.get(self.path)
                self._reply(status, body)

            def do_POST(self) -> None:
                status, body = server.post(self.path, self.headers.get("content-type", ""), self._body())
                with contextlib.suppress(OSError):  # the client was killed while it waited
                    self._reply(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.hold.set()
        self.hold_download.set()
        self.hold_create.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # --- endpoints -----------------------------------------------------------------------

    def get(self, target: str) -> tuple[int, Any]:
        parts = urlsplit(target)
        path = parts.path.rstrip("/")
        self.log.append(("GET", path))
        if path == "/v1/batches":
            query = parse_qs(parts.query)
            ids = list(reversed(self.order))  # newest first
            after = query.get("after", [None])[0]
            if after in ids:
                ids = ids[ids.index(after) + 1 :]
            limit = int(query.get("limit", ["20"])[0])
            return 200, {"object": "list", "data": [self.batches[i] for i in ids[:limit]], "has_more": len(ids) > limit}
        if path.startswith("/v1/files/") and path.endswith("/content"):
            file_id = path.split("/")[3]
            if file_id not in self.files:
                return 404, {"error": {"message": f"no file {file_id}"}}
            self.download_event.set()
            self.hold_download.wait(60)
            return 200, self.files[file_id]
        if path.startswith("/v1/batches/"):
            batch_id = path.split("/")[3]
            with self._lock:
                batch = self.batches.get(batch_id)
                if batch is None:
                    return 404, {"error": {"message": f"no batch {batch_id}"}}
                self.polls += 1
                self._advance(batch)
                self.polled_event.set()
                return 200, dict(batch)
        return 404, {"error": {"message": f"no route {path}"}}

    def post(self, path: str, content_type: str, raw: bytes) -> tuple[int, Any]:
        path = path.rstrip("/")
        self.log.append(("POST", path))
        if path == "/v1/chat/completions":  # a provider answers online too
            self.chat_requests += 1
            request = Received("POST", path, {}, raw)
            reply = self.handler(request)
            if reply.status == 200 and reply.body is None:
                text = reply.text if reply.text is not None else request.content
                return 200, completion(
                    text, request.model or "", reply.prompt_tokens, reply.completion_tokens, reply.finish_reason
                )
            return reply.status, reply.body
        if path == "/v1/files":
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"content-type: " + content_type.encode() + b"\r\n\r\n" + raw
            )
            fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
            if fields.get("purpose") is None or fields["purpose"].get_content().strip() != "batch" or "file" not in fields:
                return 400, {"error": {"message": "purpose must be batch, with a file"}}
            file_id = f"file-{next(self._ids)}"
            payload = fields["file"].get_payload(decode=True)
            assert isinstance(payload, bytes)
            self.files[file_id] = payload
            self.uploads += 1
            return 200, {"id": file_id, "object": "file", "purpose": "batch", "bytes": len(self.files[file_id])}
        if path == "/v1/batches":
            request = orjson.loads(raw)
            if request.get("endpoint") != "/v1/chat/completions" or request.get("completion_window") != "24h":
                return 400, {"error": {"message": "bad endpoint or window"}}
            if request.get("input_file_id") not in self.files:
                return 404, {"error": {"message": "no such input file"}}
            lines = self.files[request["input_file_id"]].splitlines()
            with self._lock:
                batch_id = f"batch_{next(self._ids)}"
                batch = {
                    "id": batch_id,
                    "object": "batch",
                    "endpoint": request["endpoint"],
                    "input_file_id": request["input_file_id"],
                    "completion_window": "24h",
                    "status": "validating",
                    "output_file_id": None,
                    "error_file_id": None,
                    "metadata": request.get("metadata"),
                    "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                    "_number": len(self.order) + 1,
                    "_step": 0,
                }
                self.batches[batch_id] = batch
                self.order.append(batch_id)
                self.created.append(request)
            self.created_event.set()
            self.hold_create.wait(60)
            return 200, dict(batch)
        if path.startswith("/v1/batches/") and path.endswith("/cancel"):
            found = self.batches.get(path.split("/")[3])
            if found is None:
                return 404, {"error": {"message": "no such batch"}}
            batch = found
            with self._lock:
                if batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                    batch["status"] = "cancelling"
            return 200, dict(batch)
        return 404, {"error": {"message": f"no route {path}"}}

    # --- the state machine -----------------------------------------------------------------

    def _advance(self, batch: dict[str, Any]) -> None:
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return
        if batch["status"] == "cancelling":
            batch["status"] = "cancelled"
            return
        if not self.hold.is_set() and batch["status"] == "in_progress" and batch["_number"] >= self.hold_from:
            return
        fate = self.fate(batch["_number"])
        if fate == "failed":
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "the file is invalid"}]}
            return
        batch["_step"] += 1
        if STEPS[min(batch["_step"], len(STEPS) - 1)] != "completed":
            batch["status"] = STEPS[batch["_step"]]
            return
        self._finish(batch, expired=fate == "expired")

    def _finish(self, batch: dict[str, Any], *, expired: bool) -> None:
        lines = [orjson.loads(line) for line in self.files[batch["input_file_id"]].splitlines() if line.strip()]
        answered = lines[: len(lines) // 2] if expired else lines
        output, errors = [], []
        for number, line in enumerate(answered):
            body = line["body"]
            request = Received("POST", line["url"], {}, orjson.dumps(body))
            reply = self.handler(request)
            if reply.status == 200 and reply.body is None:
                text = reply.text if reply.text is not None else request.content
                response = completion(
                    text, body.get("model", ""), reply.prompt_tokens, reply.completion_tokens, reply.finish_reason
                )
                output.append(
                    {
                        "id": f"batch_req_{number}",
                        "custom_id": line["custom_id"],
                        "response": {"status_code": 200, "request_id": f"req_{number}", "body": response},
                        "error": None,
                    }
                )
            else:
                errors.append(
                    {
                        "id": f"batch_req_{number}",
                        "custom_id": line["custom_id"],
                        "response": {"status_code": reply.status, "request_id": f"req_{number}", "body": reply.body},
                        "error": None,
                    }
                )
        for line in lines[len(answered) :]:
            errors.append(
                {
                    "id": "batch_req_expired",
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion window expired.",
                    },
                }
            )
        for kind, entries in (("output_file_id", output), ("error_file_id", errors)):
            if entries:
                file_id = f"file-{next(self._ids)}"
                self.files[file_id] = b"".join(orjson.dumps(entry) + b"\n" for entry in reversed(entries))
                batch[kind] = file_id
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}
