"""REST tools: http bindings, and real httpx calls to a server the tests start on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tenacity import RetryCallState, Retrying, wait_none

from apigen_cli import ConfigError, Executor, ExecutorOptions, HttpOptions
from apigen_cli.execution.rest import BINDING_KEYS, BindingError, HttpCaller, RetryableStatus, build_request, parse_binding
from apigen_cli.retry import parse_retry_after

from .doc_pages import page_with
from .json_http import JsonHandler, base_url, serving


class ToolServer(ThreadingHTTPServer):
    """A small REST API with the replies a tool meets: JSON, text, 404, flaky 503, 429, slow, empty."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: Counter[str] = Counter()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()

    @property
    def base(self) -> str:
        return base_url(self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


class Handler(JsonHandler):
    server: ToolServer
    counted_path: str | None = None  # the path whose in-flight count this call holds

    def reply(
        self, status: int, body: Any, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self.leave()  # before the reply is sent: the client may send its next call the moment it has it
        if content_type == "application/json":
            self.send_json(status, body, headers)
        else:
            self.send_body(status, str(body).encode(), content_type, headers)

    def handle_any(self) -> None:
        server = self.server
        parts = urlsplit(self.path)
        with server.lock:
            server.hits[parts.path] += 1
            hits = server.hits[parts.path]
            server.in_flight[parts.path] += 1
            server.most_in_flight[parts.path] = max(server.most_in_flight[parts.path], server.in_flight[parts.path])
        self.counted_path = parts.path
        try:
            self.route(parts.path, parse_qs(parts.query), hits)
        finally:
            self.leave()

    def leave(self) -> None:
        """The call is no longer in flight (once per call, however it ends)."""
        path, self.counted_path = self.counted_path, None
        if path is not None:
            with self.server.lock:
                self.server.in_flight[path] -= 1

    def route(self, path: str, query: dict[str, list[str]], hits: int) -> None:
        body = self.read_json()
        if path.startswith("/v1/items"):
            self.reply(
                200 if self.command == "GET" else 201,
                {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "body": body,
                    "api_key": self.headers.get("X-Api-Key"),
                },
            )
        elif path == "/text":
            self.reply(200, "plain words", "text/plain")
        elif path == "/missing":
            self.reply(404, "no such item", "text/plain")
        elif path.startswith("/flaky"):
            if hits <= 2:
                self.reply(503, {"error": "busy"}, headers={"Retry-After": "0"})
            else:
                self.reply(200, {"attempt": hits})
        elif path == "/busy":
            self.reply(503, "down for maintenance", "text/plain")
        elif path == "/throttled":
            self.reply(429, {"error": "slow down"}, headers={"Retry-After": "0"})
        elif path == "/slow":
            self.server.stop.wait(5)
            self.reply(200, {"late": True})
        elif path == "/pause":
            time.sleep(0.2)
            self.reply(200, {"paused": True})
        elif path == "/empty":
            self.leave()
            self.send_response(204)
            self.end_headers()
        else:
            self.reply(404, {"error": f"no route {path}"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


@pytest.fixture(scope="module")
def server() -> Iterator[ToolServer]:
    with serving(ToolServer()) as running:
        yield running
        running.stop.set()  # a /slow reply still waiting ends now


@pytest.fixture
def executor() -> Iterator[Executor]:
    with Executor(None, http=HttpOptions(timeout=2, retries=2, wait=wait_none())) as running:
        yield running


# --- calls to the server ------------------------------------------------------------------


def test_get_fills_the_path_query_and_headers(server: ToolServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITEMS_KEY", "secret-123")
    binding = {"url": server.base + "/v1/items/{item_id}", "query": ["q"], "headers": {"X-Api-Key": "$ITEMS_KEY"}}
    options = ExecutorOptions(pass_env=("ITEMS_KEY",))
    with Executor(None, options, http=HttpOptions(timeout=2, retries=2, wait=wait_none())) as executor:
        outcome = executor.run(
            "get_item", {"item_id": "a b/c", "q": "red", "tags": ["x", "y"], "limit": 3, "exact": True}, http=binding
        )
    assert outcome.ok, outcome.message
    assert outcome.result["path"] == "/v1/items/a%20b%2Fc"
    assert outcome.result["query"] == {"q": ["red"], "tags": ["x", "y"], "limit": ["3"], "exact": ["true"]}
    assert outcome.result["api_key"] == "***"  # the server got the key and echoed it; the row never holds it


def test_a_secret_looking_variable_is_not_sent_unless_passed(
    server: ToolServer, executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIGEN_API_KEY", "ak-secret-456")
    binding = {"url": server.base + "/v1/items/{item_id}", "headers": {"X-Api-Key": "${APIGEN_API_KEY}"}}
    outcome = executor.run("get_item", {"item_id": 1}, http=binding)
    assert (outcome.ok, outcome.code, outcome.error_type) == (False, "binding_not_allowed", "BindingNotAllowed")
    assert "`--pass-env APIGEN_API_KEY`" in outcome.message and server.hits["/v1/items/1"] == 0


def test_post_sends_the_other_arguments_as_a_json_body(server: ToolServer, executor: Executor) -> None:
    binding = {"method": "post", "url": server.base + "/v1/items", "query": ["dry_run"]}
    outcome = executor.run("create_item", {"name": "lamp", "price": 9.5, "dry_run": False, "tags": ["new"]}, http=binding)
    assert outcome.ok
    assert outcome.result["method"] == "POST"
    assert outcome.result["query"] == {"dry_run": ["false"]}
    assert outcome.result["body"] == {"name": "lamp", "price": 9.5, "tags": ["new"]}


def test_the_url_may_come_from_the_environment(server: ToolServer, executor: Executor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITEMS_BASE", server.base)
    binding = {"url": "${ITEMS_BASE}/v1/items/{item_id}"}
    with Executor(None, ExecutorOptions(pass_env=("ITEMS_*",)), http=HttpOptions(timeout=2)) as passed:
        assert passed.run("get_item", {"item_id": 7}, http=binding).result["path"] == "/v1/items/7"
    refused = executor.run("get_item", {"item_id": 7}, http=binding)  # not passed: it does not go out, secret-looking or not
    assert refused.code == "binding_not_allowed"


def test_a_text_reply_is_recorded_as_text_and_an_empty_one_as_null(server: ToolServer, executor: Executor) -> None:
    assert executor.run("text", {}, http={"url": server.base + "/text"}).result == "plain words"
    assert executor.run("empty", {}, http={"url": server.base + "/empty"}).result is None


def test_a_4xx_is_an_http_error_at_once(server: ToolServer, executor: Executor) -> None:
    before = server.hits["/missing"]
    outcome = executor.run("missing", {}, http={"url": server.base + "/missing"})
    assert (outcome.code, outcome.error_type) == ("http_error", "HTTP 404")
    assert outcome.message == f"GET {server.base}/missing returned 404 Not Found: no such item"
    assert server.hits["/missing"] == before + 1  # not retried


def test_a_5xx_is_retried_until_it_succeeds(server: ToolServer, executor: Executor) -> None:
    outcome = executor.run("flaky", {}, http={"url": server.base + "/flaky/one"})
    assert outcome.ok and outcome.result == {"attempt": 3}
    assert server.hits["/flaky/one"] == 3


def test_retries_are_capped_then_the_status_is_reported(server: ToolServer, executor: Executor) -> None:
    outcome = executor.run("busy", {}, http={"url": server.base + "/busy"})
    assert (outcome.code, outcome.error_type) == ("http_error", "HTTP 503")
    assert "returned 503 Service Unavailable after 3 attempts: down for maintenance" in outcome.message
    throttled = executor.run("throttled", {}, http={"url": server.base + "/throttled"})
    assert throttled.error_type == "HTTP 429" and server.hits["/throttled"] == 3


def test_a_slow_reply_times_out(server: ToolServer) -> None:
    options = HttpOptions(timeout=0.3, retries=1, wait=wait_none())
    started = time.monotonic()
    with Executor(None, http=options) as executor:
        outcome = executor.run("slow", {}, http={"url": server.base + "/slow"})
    assert (outcome.code, outcome.error_type) == ("timeout", "Timeout")
    assert outcome.message == f"GET {server.base}/slow: no reply within 0.3 s (2 attempts)"
    assert time.monotonic() - started < 4


def test_a_binding_timeout_overrides_the_default(server: ToolServer, executor: Executor) -> None:
    outcome = executor.run("slow", {}, http={"url": server.base + "/slow", "timeout": 0.2})
    assert outcome.code == "timeout" and "0.2 s" in outcome.message


def test_a_refused_connection_is_an_http_error(executor: Executor) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = executor.run("down", {}, http={"url": f"http://127.0.0.1:{port}/x"})
    assert (outcome.code, outcome.error_type) == ("http_error", "ConnectError")
    assert "after 3 attempts" in outcome.message


def test_calls_in_flight_stay_within_the_concurrency_limit(server: ToolServer) -> None:
    with Executor(None, http=HttpOptions(concurrency=2)) as executor:
        pendings = [executor.submit("pause", {}, http={"url": server.base + "/pause"}) for _ in range(6)]
        executor.wait(pendings)
    assert all(pending.outcome is not None and pending.outcome.ok for pending in pendings)
    assert server.most_in_flight["/pause"] == 2


def test_an_unset_environment_variable_stops_the_run(server: ToolServer) -> None:
    binding = {"url": server.base + "/v1/items", "headers": {"Authorization": "Bearer $NOT_SET_ANYWHERE"}}
    with Executor(None, ExecutorOptions(pass_env=("NOT_SET_ANYWHERE",))) as executor, pytest.raises(ConfigError) as caught:
        executor.submit("get_items", {}, http=binding)
    assert caught.value.message == (
        "the `http` binding of tool `get_items` uses `$NOT_SET_ANYWHERE` in header `Authorization`, "
        "which is not set in the environment"
    )
    assert caught.value.hint and "export NOT_SET_ANYWHERE" in caught.value.hint


# --- bindings, requests and waits (no network) --------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("https://x", "`http` should be an object"),
        ({"url": "https://x", "verb": "GET"}, "unknown key(s) `verb`"),
        ({"url": "https://x", "method": "FETCH"}, "`http.method` is 'FETCH'"),
        ({"method": "GET"}, "`http.url` is missing"),
        ({"url": "https://x", "query": "q"}, "`http.query` should be a list"),
        ({"url": "https://x", "headers": {"A": ["b"]}}, "`http.headers` should map"),
        ({"url": "https://x", "timeout": 0}, "`http.timeout` should be a positive number"),
    ],
)
def test_malformed_bindings_are_invalid_tool_definitions(spec: Any, message: str) -> None:
    with pytest.raises(BindingError) as caught:
        parse_binding(spec, "tool")
    assert caught.value.problem.code == "invalid_tool_definition"
    assert caught.value.problem.message.startswith("tool `tool`: ") and message in caught.value.problem.message


def test_a_missing_path_argument_is_invalid_arguments() -> None:
    binding = parse_binding({"url": "https://host/items/{item_id}"}, "get_item")
    with pytest.raises(BindingError) as caught:
        build_request(binding, {"q": 1}, {})
    assert caught.value.problem == ("invalid_arguments", "the URL of `get_item` needs `{item_id}`, which the call does not give")


def test_requests_never_show_environment_values_and_skip_null_query_values() -> None:
    binding = parse_binding({"url": "https://host/$TENANT/items/{item_id}", "method": "DELETE"}, "delete_item")
    request = build_request(binding, {"item_id": "$HOME", "reason": None, "force": True}, {"TENANT": "acme", "HOME": "/root"})
    assert request.url == "https://host/acme/items/%24HOME"
    assert request.shown_url == "https://host/$TENANT/items/%24HOME"
    assert request.params == [("force", "true")] and not request.has_body


def test_the_readme_binding_table_names_every_key_of_the_binding() -> None:
    section = (
        page_with("**REST tools: the `http` binding.**").split("**REST tools: the `http` binding.**", 1)[1].split("\n\n**", 1)[0]
    )
    keys = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert sorted(keys) == sorted(BINDING_KEYS)


def test_a_doubled_dollar_is_a_literal_dollar_in_the_url_and_headers() -> None:
    binding = parse_binding(
        {"url": "https://host/things/{thing}/jobs/$$next/$${price}?at=$$TENANT", "headers": {"X-Cost": "$$5 {note}"}}, "next_job"
    )
    assert binding.path_params == ("thing", "price")  # `$${price}`: a dollar before the argument `price`
    request = build_request(binding, {"thing": "t1", "price": 3, "note": "$HOME"}, {})  # no variable is read
    assert request.url == request.shown_url == "https://host/things/t1/jobs/$next/$3?at=$TENANT"
    assert request.headers == {"X-Cost": "$5 $HOME"}
    assert request.secrets == ()


def test_a_url_that_is_not_http_is_refused() -> None:
    binding = parse_binding({"url": "file:///etc/{name}"}, "read")
    with pytest.raises(BindingError, match="should start with http"):
        build_request(binding, {"name": "passwd"}, {})


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_the_wait_honours_retry_after_up_to_its_cap() -> None:
    import httpx

    caller = HttpCaller(HttpOptions(retry_after_cap=5, wait=lambda state: 0.25), max_result_chars=100)
    try:

        def wait_after(headers: dict[str, str]) -> float:
            state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
            error = RetryableStatus(httpx.Response(503, headers=headers))
            try:
                raise error
            except RetryableStatus:
                state.set_exception(sys.exc_info())  # type: ignore[arg-type]
            return caller.wait_before_retry(state)

        assert wait_after({"Retry-After": "2"}) == 2.0
        assert wait_after({"Retry-After": "3600"}) == 5.0
        assert wait_after({}) == 0.25
    finally:
        caller.close()


# --- `rename` and argument headers (what imported OpenAPI operations need) ---------------


def test_renamed_arguments_are_sent_under_their_wire_names(server: ToolServer, executor: Executor) -> None:
    binding = {
        "method": "POST",
        "url": server.base + "/v1/items/{path_id}",
        "query": ["query_id"],
        "rename": {"query_id": "id", "body_id": "id"},
    }
    outcome = executor.run("update_item", {"path_id": "p1", "query_id": "q1", "body_id": "b1", "note": "x"}, http=binding)
    assert outcome.ok, outcome.message
    assert outcome.result["path"] == "/v1/items/p1"
    assert outcome.result["query"] == {"id": ["q1"]}
    assert outcome.result["body"] == {"id": "b1", "note": "x"}


def test_an_argument_in_a_header_goes_there_only_and_is_left_out_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_PREFIX", "env-{trace}")  # an environment value is never read as a template
    binding = parse_binding({"url": "http://h/x", "headers": {"X-Trace": "$TRACE_PREFIX/{trace}"}}, "t")
    request = build_request(binding, {"trace": "$HOME", "q": 1}, {"TRACE_PREFIX": "env-{trace}"})
    assert request.headers == {"X-Trace": "env-{trace}/$HOME"}
    assert request.params == [("q", "1")]
    assert build_request(binding, {"q": 1}, {}).headers == {}


def test_a_bad_rename_is_an_invalid_binding() -> None:
    with pytest.raises(BindingError, match="`http.rename` should map"):
        parse_binding({"url": "http://h/x", "rename": {"a": 3}}, "t")
