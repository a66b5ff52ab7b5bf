"""The HTTP backend against a real server on 127.0.0.1: retries, faults, early stops, JSON mode, keys."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import tenacity

from apigen_cli.config import LLMSettings
from apigen_cli.errors import ConfigError, EndpointError
from apigen_cli.llm.chat import ChatRequest, ChatResult
from apigen_cli.llm.service import LLMClient, open_chat_service

from .llm_server import LLMServer, Received, Reply

MODEL = "test-model"


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as running:
        yield running


def settings_for(server: LLMServer, **fields: Any) -> LLMSettings:
    values: dict[str, Any] = {
        "base_url": server.url,
        "models": (MODEL,),
        "json_mode": "off",
        "timeout": 5.0,
        "max_attempts": 4,
        "max_retry_seconds": 20.0,
        "concurrency": 4,
    }
    values.update(fields)
    return LLMSettings(**values)


def request(content: str, **fields: Any) -> ChatRequest:
    return ChatRequest(key=content, model=fields.pop("model", MODEL), messages=[{"role": "user", "content": content}], **fields)


def ask(settings: LLMSettings, contents: list[str], **options: Any) -> tuple[list[ChatResult], LLMClient]:
    """Answer one request per content through a fresh service; results in the order given."""
    options.setdefault("wait", tenacity.wait_none())
    with open_chat_service(settings, **options) as chat:
        pairs = list(chat.map((content, request(content)) for content in contents))
    assert [content for content, _result in pairs] == contents
    return [result for _content, result in pairs], chat


def test_replies_come_back_in_input_order_with_tokens(server: LLMServer) -> None:
    # Later requests answer sooner than earlier ones, so order must be restored.
    server.handler = lambda received: Reply(delay=0.002 * (40 - int(received.content.split()[1]) % 40))
    contents = [f"row {index}" for index in range(60)]
    results, chat = ask(settings_for(server, concurrency=8), contents)
    assert [result.text for result in results] == contents
    assert all(result.ok and result.attempts == 1 and not result.cached for result in results)
    usage = chat.usage.models[MODEL]
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens, usage.failures) == (60, 60 * 11, 60 * 7, 0)
    assert 1 < server.max_in_flight <= 8


@pytest.mark.parametrize("concurrency", [1, 3, 16])
def test_requests_in_flight_never_exceed_the_limit(server: LLMServer, concurrency: int) -> None:
    server.latency = 0.01
    results, chat = ask(settings_for(server, concurrency=concurrency), [f"r{index}" for index in range(48)])
    assert all(result.ok for result in results)
    assert server.count == 48
    assert server.max_in_flight <= concurrency
    assert chat.progress.in_flight == 0 and chat.progress.rows_done == 48


class RecordedSleep:
    """Stands in for ``asyncio.sleep``: notes what the client asked to wait, waits nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_429_waits_as_retry_after_says(server: LLMServer) -> None:
    server.enqueue(Reply.error(429, "Rate limit reached for requests", retry_after="1"))
    sleep = RecordedSleep()
    [result], chat = ask(settings_for(server, concurrency=1), ["hello"], sleep=sleep)
    assert result.ok and result.text == "hello" and result.attempts == 2
    assert sleep.waits == [1.0]  # the backoff strategy waits nothing in tests: only Retry-After made it wait
    assert chat.progress.retries == 1 and chat.usage.models[MODEL].retries == 1


def test_retry_after_ms_is_read_too(server: LLMServer) -> None:
    server.enqueue(Reply.error(429, "slow down", retry_after_ms="300"))
    sleep = RecordedSleep()
    [result], _chat = ask(settings_for(server, concurrency=1), ["hello"], sleep=sleep)
    assert result.ok and result.attempts == 2
    assert sleep.waits == [0.3]


def test_retry_after_beyond_the_time_budget_gives_up_at_once(server: LLMServer) -> None:
    server.enqueue(Reply.chat("warm up"), Reply.error(429, "quota exhausted for today", retry_after="3600"))
    started = time.monotonic()
    [_warm, result], _chat = ask(settings_for(server, concurrency=1, max_retry_seconds=5), ["first", "hello"])
    assert time.monotonic() - started < 5
    assert result.error is not None and result.error.message == "429: quota exhausted for today"


def test_bursts_of_server_errors_are_retried(server: LLMServer) -> None:
    server.enqueue(
        Reply.error(500, "oops"), Reply.error(503, "overloaded"), Reply.error(502, "bad gateway"), Reply.error(503, "overloaded")
    )
    [result], _chat = ask(settings_for(server, concurrency=1, max_attempts=6), ["hello"])
    assert result.ok and result.attempts == 5


def test_a_request_that_keeps_failing_becomes_an_llm_error_and_the_run_goes_on(server: LLMServer) -> None:
    server.handler = lambda received: Reply.error(503, "overloaded") if received.content == "b" else None
    results, chat = ask(settings_for(server, concurrency=2, max_attempts=3), ["a", "b", "c"])
    assert [result.text for result in results] == ["a", None, "c"]
    assert results[1].error is not None
    assert results[1].error.code == "llm_error"
    assert results[1].error.message == "503: overloaded (after 3 attempts)"
    assert results[1].attempts == 3
    assert chat.usage.models[MODEL].failures == 1


def test_408_and_409_are_retried(server: LLMServer) -> None:
    server.enqueue(Reply.error(408, "request timeout"), Reply.error(409, "conflict"))
    [result], _chat = ask(settings_for(server, concurrency=1), ["hello"])
    assert result.ok and result.attempts == 3


def test_a_slow_reply_times_out(server: LLMServer) -> None:
    server.handler = lambda received: Reply.slow(30) if received.content == "slow" else None
    started = time.monotonic()
    results, _chat = ask(settings_for(server, timeout=0.3, max_attempts=2), ["fast", "slow", "fast again"])
    assert time.monotonic() - started < 10
    assert [result.text for result in results] == ["fast", None, "fast again"]
    assert results[1].error is not None and results[1].error.message == "timeout: no reply within 0.3 s (after 2 attempts)"


@pytest.mark.parametrize("fault", [Reply.truncated, Reply.drop], ids=["truncated-body", "dropped-connection"])
def test_a_broken_reply_is_retried(server: LLMServer, fault: Any) -> None:
    server.enqueue(Reply.chat("warm up"), fault())
    results, _chat = ask(settings_for(server, concurrency=1), ["first", "second"])
    assert [result.text for result in results] == ["warm up", "second"]
    assert results[1].attempts == 2


def test_a_connection_that_always_breaks_fails_the_row_with_the_reason(server: LLMServer) -> None:
    server.handler = lambda received: Reply.drop() if received.content == "bad" else None
    results, _chat = ask(settings_for(server, concurrency=1, max_attempts=2), ["good", "bad", "good"])
    assert [result.ok for result in results] == [True, False, True]
    assert results[1].error is not None and results[1].error.message.startswith("connection: the connection failed")


def test_a_body_that_is_not_json_fails_the_row(server: LLMServer) -> None:
    server.handler = lambda received: Reply.not_json() if received.content == "html" else None
    results, _chat = ask(settings_for(server, concurrency=1, max_attempts=2), ["ok", "html", "ok"])
    assert [result.ok for result in results] == [True, False, True]
    assert results[1].error is not None
    assert (
        results[1].error.message == "200: the reply is not JSON: '<html><body>Welcome to nginx!</body></html>' (after 2 attempts)"
    )


def test_other_4xx_fail_at_once_with_the_providers_message(server: LLMServer) -> None:
    message = "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens."
    server.handler = lambda received: Reply.error(400, message) if received.content == "long" else None
    results, _chat = ask(settings_for(server, concurrency=1), ["long", "short"])
    assert results[0].error is not None and results[0].error.message == f"400: {message}"
    assert results[0].attempts == 1
    assert results[1].text == "short"
    assert server.count == 2


def test_a_reply_without_text_fails_the_row() -> None:
    with LLMServer() as server:
        server.enqueue(
            Reply.chat("warm up"),
            Reply(body={"choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "length"}]}),
        )
        [_warm, result], _chat = ask(settings_for(server, concurrency=1), ["first", "think"])
    assert result.error is not None and result.error.message == "200: the reply has no text (finish_reason: length)"


# --- early stops ----------------------------------------------------------------------


def test_401_stops_the_run_with_a_hint_about_the_key(server: LLMServer) -> None:
    server.handler = lambda received: Reply.error(401, "Incorrect API key provided")
    with pytest.raises(EndpointError) as raised:
        ask(settings_for(server, concurrency=4), [f"row {index}" for index in range(200)])
    assert (
        raised.value.message
        == f"the LLM endpoint `{server.url}` refused the request for model `test-model`: 401: Incorrect API key provided"
    )
    assert raised.value.hint is not None and "APIGEN_API_KEY" in raised.value.hint
    assert server.count <= 4  # stopped on the first replies, not after failing 200 rows


def test_403_stops_the_run_too(server: LLMServer) -> None:
    server.handler = lambda received: Reply.error(403, "You are not allowed to sample from this model")
    with pytest.raises(EndpointError, match="403: You are not allowed"):
        ask(settings_for(server, concurrency=2), ["a", "b", "c"])


def test_an_unknown_model_stops_the_run_naming_the_models_served(server: LLMServer) -> None:
    server.handler = lambda received: Reply.error(404, f"The model `{received.model}` does not exist")
    with pytest.raises(EndpointError) as raised:
        _ask_model(server, "gpt-nope")
    assert (
        raised.value.message
        == f"the LLM endpoint `{server.url}` does not serve model `gpt-nope`: 404: The model `gpt-nope` does not exist"
    )
    assert raised.value.hint == "the endpoint serves: test-model, other-model; pass one of them with `--model`"


def _ask_model(server: LLMServer, model: str) -> None:
    with open_chat_service(settings_for(server, models=(model,)), wait=tenacity.wait_none()) as chat:
        list(chat.map((index, request(f"r{index}", model=model)) for index in range(20)))


def test_an_unreachable_endpoint_stops_the_run_soon() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", models=(MODEL,), max_attempts=6)
    started = time.monotonic()
    with pytest.raises(EndpointError) as raised, open_chat_service(settings) as chat:  # real backoff: at most one short wait
        list(chat.map((index, request(f"r{index}")) for index in range(50)))
    assert time.monotonic() - started < 10
    assert raised.value.message.startswith(f"cannot reach the LLM endpoint `http://127.0.0.1:{port}/v1`: cannot connect")
    assert raised.value.hint is not None and "--base-url" in raised.value.hint


def test_the_same_refusal_on_every_first_request_stops_the_run(server: LLMServer) -> None:
    server.handler = lambda received: Reply.error(400, "Unrecognized request argument supplied: foo")
    with pytest.raises(EndpointError, match="refused the first 5 requests for model `test-model` alike: 400: Unrecognized"):
        ask(settings_for(server, concurrency=1), [f"r{index}" for index in range(100)])
    assert server.count == 5


def test_a_401_after_successes_is_only_a_row_failure(server: LLMServer) -> None:
    server.handler = lambda received: Reply.error(401, "token expired") if received.content == "late" else None
    results, _chat = ask(settings_for(server, concurrency=1), ["early", "late", "later"])
    assert [result.ok for result in results] == [True, False, True]


# --- the request body, JSON mode, keys ------------------------------------------------

SCHEMA = {"title": "pairs", "type": "object", "properties": {"pairs": {"type": "array"}}, "required": ["pairs"]}


def bodies(server: LLMServer) -> list[dict[str, Any]]:
    return [received.json for received in server.chat_requests()]


@pytest.mark.parametrize(
    ("mode", "schema", "expected"),
    [
        ("schema", SCHEMA, {"type": "json_schema", "json_schema": {"name": "pairs", "schema": SCHEMA, "strict": False}}),
        ("schema", None, {"type": "json_object"}),
        ("object", SCHEMA, {"type": "json_object"}),
        ("off", SCHEMA, None),
    ],
)
def test_json_mode_sets_response_format(server: LLMServer, mode: str, schema: Any, expected: Any) -> None:
    with open_chat_service(settings_for(server, json_mode=mode)) as chat:
        list(chat.map([(1, request("q", response_schema=schema))]))
    [body] = bodies(server)
    assert body.get("response_format") == expected


def test_a_server_refusing_every_response_format_steps_down_to_none_warning_once_per_step(server: LLMServer) -> None:
    def refuse(received: Received) -> Reply | None:
        if "response_format" in received.json:
            return Reply.error(400, "Invalid parameter: 'response_format' is not supported with this model.")
        return None

    server.handler = refuse
    warnings: list[str] = []
    with open_chat_service(settings_for(server, json_mode="schema", concurrency=1), on_warning=warnings.append) as chat:
        results = list(chat.map((index, request(f"r{index}", response_schema=SCHEMA)) for index in range(5)))
        downgrades = chat.json_mode_downgrades
    assert [result.text for _index, result in results] == [f"r{index}" for index in range(5)]
    assert [result.attempts for _index, result in results] == [3, 1, 1, 1, 1]  # refusals are never retried as such
    assert [(step["from"], step["to"]) for step in downgrades] == [("schema", "object"), ("object", "off")]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        f"the LLM endpoint `{server.url}` refused `response_format` json_schema for model `test-model` (400: Invalid parameter"
    )
    assert "asking for any JSON object instead" in warnings[0] and "going on without JSON mode" in warnings[1]
    sent = [(body.get("response_format") or {}).get("type") for body in bodies(server)]
    assert sent == ["json_schema", "json_object", None, None, None, None, None]


def test_sampling_parameters_and_options_are_sent(server: LLMServer) -> None:
    settings = settings_for(
        server,
        temperature=0.7,
        top_p=0.9,
        seed=17,
        options={"frequency_penalty": 0.5, "stop": ["\n\n"], "offline_error_rate": 0.2},
    )
    with open_chat_service(settings) as chat:
        list(chat.map([(1, request("a", options={"max_tokens": 512})), (2, request("b", options={"temperature": 0.0}))]))
    first, second = sorted(bodies(server), key=lambda body: body["messages"][0]["content"])
    assert first == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "a"}],
        "temperature": 0.7,
        "max_tokens": 512,
        "top_p": 0.9,
        "seed": 17,
        "frequency_penalty": 0.5,
        "stop": ["\n\n"],
    }
    assert second["temperature"] == 0.0


def test_the_key_is_sent_but_never_logged_shown_or_put_in_an_error(server: LLMServer, tmp_path: Path) -> None:
    secret = "sk-test-0123456789abcdef"
    # A careless provider that echoes the credentials in its error message.
    server.handler = lambda received: (
        Reply.error(400, f"bad request from {received.headers.get('authorization')}") if received.content == "echo" else None
    )
    log = tmp_path / "exchanges.jsonl"
    settings = settings_for(server, concurrency=1, log_path=str(log))
    with open_chat_service(settings, wait=tenacity.wait_none(), environ={"APIGEN_API_KEY": secret}) as chat:
        results = list(chat.map([(1, request("hello")), (2, request("echo"))]))
        shown = repr(settings) + repr(chat.http) + repr(chat.settings)
    assert server.chat_requests()[0].headers["authorization"] == f"Bearer {secret}"
    error = results[1][1].error
    assert error is not None and error.message == "400: bad request from Bearer ***"
    assert secret not in log.read_text() and secret not in shown
    assert len(log.read_text().splitlines()) == 2


def test_api_key_env_picks_the_variable(server: LLMServer) -> None:
    settings = settings_for(server, api_key_env="MY_PROVIDER_KEY")
    with open_chat_service(settings, environ={"MY_PROVIDER_KEY": "k-42", "APIGEN_API_KEY": "other"}) as chat:
        list(chat.map([(1, request("a"))]))
    assert server.chat_requests()[0].headers["authorization"] == "Bearer k-42"
    with pytest.raises(ConfigError, match="names an environment variable that is not set"):
        open_chat_service(settings, environ={})


def test_no_key_sends_no_authorization_header(server: LLMServer) -> None:
    with open_chat_service(settings_for(server), environ={}) as chat:
        list(chat.map([(1, request("a"))]))
    assert "authorization" not in server.chat_requests()[0].headers


def test_base_url_may_be_given_with_the_path_or_a_trailing_slash(server: LLMServer) -> None:
    for url in (server.url + "/", server.url + "/chat/completions"):
        with open_chat_service(settings_for(server, base_url=url)) as chat:
            [(_item, result)] = list(chat.map([(1, request("a"))]))
        assert result.text == "a"
    assert {received.path for received in server.requests} == {"/v1/chat/completions"}


def test_stopping_early_cancels_what_is_left_and_closes_cleanly(server: LLMServer) -> None:
    server.latency = 0.05
    with open_chat_service(settings_for(server, concurrency=4)) as chat:
        for index, (_item, result) in enumerate(chat.map((index, request(f"r{index}")) for index in range(1000))):
            assert result.ok
            if index == 2:
                break
    assert server.count < 40  # the window bounds what was started; nothing ran on after close


def test_the_exchange_log_holds_every_exchange_in_order(server: LLMServer, tmp_path: Path) -> None:
    server.handler = lambda received: Reply.error(400, "nope") if received.content == "r1" else None
    log = tmp_path / "logs" / "llm.jsonl"
    with open_chat_service(settings_for(server, log_path=str(log))) as chat:
        list(chat.map((index, request(f"r{index}")) for index in range(3)))
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [entry["key"] for entry in entries] == ["r0", "r1", "r2"]
    first = entries[0]
    assert first["model"] == MODEL and first["endpoint"] == server.url
    assert first["messages"] == [{"role": "user", "content": "r0"}] and first["response"] == "r0"
    assert (first["prompt_tokens"], first["completion_tokens"], first["attempts"], first["error"]) == (11, 7, 1, None)
    assert first["latency"] >= 0
    assert entries[1]["error"] == {"code": "llm_error", "message": "400: nope"} and entries[1]["response"] is None


def test_rate_limits_count_requests_and_real_tokens(server: LLMServer) -> None:
    with open_chat_service(settings_for(server, rpm=1000, tpm=100_000)) as chat:
        results = list(chat.map((index, request(f"r{index}")) for index in range(5)))
        assert all(result.ok for _index, result in results)
        assert chat.http._rpm is not None and chat.http._rpm.used == 5
        assert chat.http._tpm is not None and chat.http._tpm.used == 5 * (11 + 7)  # estimates replaced by the usage reported


# --- without httpx-aiohttp ------------------------------------------------------------


def test_without_httpx_aiohttp_the_client_falls_back_to_httpx_s_own_transport(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['httpx_aiohttp'] = None\n"
        "import httpx\n"
        "from apigen_cli.llm import http_backend as llm_http\n"
        "from apigen_cli.config import LLMSettings\n"
        "transport = llm_http.make_transport(LLMSettings(base_url='http://127.0.0.1:1/v1', concurrency=3))\n"
        "print(type(transport).__name__)\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "AsyncHTTPTransport"


def default_transport(concurrency: int = 4) -> Any:
    import httpx

    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=concurrency))


def test_faults_are_handled_alike_with_httpx_s_own_transport(server: LLMServer) -> None:
    server.handler = lambda received: {"slow": Reply.slow(30), "html": Reply.not_json()}.get(received.content)
    server.enqueue(Reply.chat("first"), Reply.drop(), Reply.truncated(), Reply.error(503, "busy"))
    settings = settings_for(server, concurrency=1, timeout=0.3, max_attempts=4)
    results, _chat = ask(settings, ["a", "b", "slow", "html"], transport=default_transport(1))
    assert [result.text for result in results] == ["first", "b", None, None]
    assert results[1].attempts == 4  # dropped, truncated, 503, then answered
    assert results[2].error is not None and results[2].error.message == "timeout: no reply within 0.3 s (after 4 attempts)"
    assert results[3].error is not None and results[3].error.message.startswith("200: the reply is not JSON")


def test_an_unreachable_endpoint_stops_the_run_with_httpx_s_own_transport_too() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", models=(MODEL,))
    chat = open_chat_service(settings, transport=default_transport(), wait=tenacity.wait_none())
    with pytest.raises(EndpointError, match="cannot reach the LLM endpoint"), chat:
        list(chat.map([(1, request("a"))]))


def test_requests_submitted_while_the_loop_is_busy_wake_it_once(server: LLMServer) -> None:
    """Each wake-up is a pipe write that gives up the GIL: the jobs submitted meanwhile go in one."""
    from apigen_cli.llm.http_backend import HttpBackend

    backend = HttpBackend(settings_for(server), wait=tenacity.wait_none())
    try:
        loop = backend._start()
        busy, resumed = threading.Event(), threading.Event()

        def hold() -> None:  # the loop thread is held here until the requests are submitted
            busy.set()
            resumed.wait(30)

        loop.call_soon_threadsafe(hold)
        assert busy.wait(30)
        wake_ups = []
        real_wake = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any) -> Any:
            wake_ups.append(callback)
            return real_wake(callback, *args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
        futures = [backend.submit([request(f"q{n}")])[0] for n in range(20)]
        resumed.set()
        results = [future.result(30) for future in futures]
        assert [result.text for result in results] == [f"q{n}" for n in range(20)]
        assert len(wake_ups) == 1
    finally:
        backend.close()


def test_a_request_submitted_as_the_last_worker_finishes_is_still_sent(server: LLMServer) -> None:
    """One worker (concurrency 1): a request submitted while the worker answers its last job, so that the loop
    takes it just after the worker has found no job left, must start a worker of its own (it waited forever:
    the finished worker was still counted until its done callback ran, after the new request was taken)."""
    later: list[Future[ChatResult]] = []
    with open_chat_service(settings_for(server, concurrency=1), wait=tenacity.wait_none()) as chat:
        backend = chat.http
        server.hold()
        [first] = backend.submit([request("first")])
        assert server.wait_parked(1)
        submitted = threading.Event()

        def submit_second(_done: Future[ChatResult]) -> None:  # in the loop's thread, as the worker settles `first`
            later.extend(backend.submit([request("second")]))
            submitted.set()

        first.add_done_callback(submit_second)
        server.release()
        assert first.result(timeout=10).ok and submitted.wait(10)
        assert later[0].result(timeout=10).text == "second"


def test_a_request_over_a_mebibyte_is_sent_with_warnings_as_errors(server: LLMServer) -> None:
    # aiohttp warns (ResourceWarning) on any body over 1 MiB, which a long conversation reaches;
    # the suite turns warnings into errors, as a user's `-W error` would.
    server.handler = lambda received: Reply.chat("ok")
    long_message = "word " * 250_000
    results, _chat = ask(settings_for(server), [long_message])
    assert [result.text for result in results] == ["ok"] and results[0].ok, results[0].error
    assert len(server.chat_requests()[0].raw) > 2**20
