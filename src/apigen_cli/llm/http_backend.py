"""The HTTP backend: any OpenAI-compatible ``/v1/chat/completions`` endpoint.

One ``httpx.AsyncClient`` per run (explicit timeouts, an injectable transport)
lives on an event loop in a background thread; chat requests are handed to its
transport directly, so that callers stay plain
synchronous code: ``submit`` hands requests over and returns futures at once.
At most ``concurrency`` requests are in flight; optional requests-per-minute and
tokens-per-minute limits apply on top.

httpx's default async transport slows down past a few dozen requests in flight
(its connection pool is the bottleneck, encode/httpx#3215), so the client uses
the aiohttp-backed transport of ``httpx-aiohttp`` when it is installed, and the
default transport otherwise.

Failures: connection errors, timeouts, 408, 409, 429 and 5xx are retried with
tenacity (``Retry-After`` honoured, exponential backoff with jitter, capped in
attempts and in seconds). Any other 4xx fails at once with the provider's own
message. A request that still fails answers ``ChatResult(error=llm_error)``;
but an endpoint that is plainly unusable from the start (not an http(s) URL,
unreachable, key refused, unknown model) raises ``EndpointError`` instead of
failing every row. (Requests that keep failing are stopped by ``LLMClient.map``,
which sees them in row order: see ``stop_after_failures``.)

JSON mode steps down once per model when the server refuses ``response_format``
(a 400/422, or a 500 as llama-cpp-python sends, whose message names it):
``schema`` → ``object`` → ``off``. A refusal is never retried; each step is
warned about once and kept in ``downgrades`` for the run report.
"""

from __future__ import annotations

import asyncio
import queue
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import httpx
import orjson
import tenacity

from ..config import LLMSettings, find_api_key
from ..errors import ConfigError, EndpointError
from ..problems import MAX_DEPTH, TOO_DEEP, TOO_DEEP_TEXT, Problem, too_deep
from ..redaction import Redactor
from ..replies import ACCEPT_ENCODING, TOO_LARGE, BoundedBody, ReplyTooLarge, UnsupportedEncoding, declared_too_large
from ..retry import RetryPolicy, exponential_backoff, retry_after_seconds
from .cache import ResponseCache
from .chat import TOOLS_REFUSED, ChatRequest, ChatResult, LLMProgress, tool_reply
from .ratelimit import MinuteLimiter, Ticket

try:  # an optional speed-up: see the module docstring
    import aiohttp
    from httpx_aiohttp import AiohttpTransport
except ImportError:  # pragma: no cover - exercised only without httpx-aiohttp
    aiohttp = None  # type: ignore[assignment]
    AiohttpTransport = None  # type: ignore[assignment,misc]

Wait = Callable[[tenacity.RetryCallState], float]
_Reply = tuple[str, int, int, Any]  # text, prompt tokens, completion tokens, finish_reason
Sleep = Callable[[float], Awaitable[None]]

RETRY_STATUSES = frozenset({408, 409, 429})
T = TypeVar("T")
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_REFUSALS_BEFORE_STOP = 5
_JSON_MODE_RANK = {"off": 0, "object": 1, "schema": 2}
_MESSAGE_LIMIT = 300
_RESPONSE_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|guided_json|structured output", re.IGNORECASE)
_TOOLS_WORDS = re.compile(r"\btools?\b|tool_choice|tool_calls|function.call", re.IGNORECASE)
_UNKNOWN_MODEL_WORDS = re.compile(
    r"model.*(not found|does not exist|unknown|not available|no such)|(unknown|invalid) model", re.IGNORECASE
)

if aiohttp is not None:
    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
        httpx.TransportError,
        OSError,
        asyncio.TimeoutError,
        aiohttp.ClientError,
    )
else:  # pragma: no cover
    _TRANSPORT_ERRORS = (httpx.TransportError, OSError, asyncio.TimeoutError)

# A URL no transport can use ("localhost:8000/v1", "ftp://…"): deterministic, never retried.
_BAD_URL_ERRORS: tuple[type[BaseException], ...] = (
    (aiohttp.InvalidURL, *(() if getattr(aiohttp, "NonHttpUrlClientError", None) is None else (aiohttp.NonHttpUrlClientError,)))
    if aiohttp is not None
    else ()
)


def default_wait() -> Wait:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4 … seconds, at most 30 (plus up to half again)."""
    return exponential_backoff(first=0.5, cap=30.0)


def make_transport(settings: LLMSettings) -> httpx.AsyncBaseTransport:
    """The aiohttp-backed transport when available, else httpx's own; pooled for ``concurrency``.

    A proxy from the environment (``HTTPS_PROXY`` …, minus ``NO_PROXY``) is given to the
    transport itself, since requests go straight to it.
    """
    limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
    proxy = environment_proxy(normalise_base_url(settings.base_url or ""))
    if AiohttpTransport is not None:
        _allow_large_bodies()
        return AiohttpTransport(limits=limits, proxy=httpx.Proxy(proxy) if proxy else None)
    return httpx.AsyncHTTPTransport(limits=limits, proxy=proxy)  # pragma: no cover


def _allow_large_bodies() -> None:
    """Silence aiohttp's ResourceWarning on a request body over 1 MiB (a long conversation).

    The warning says the bytes "might lock the event loop": ours are already in memory, and
    aiohttp has no setting for its threshold. Under ``-W error`` the warning would fail the
    request, so this one message from ``aiohttp.payload`` is ignored, and nothing else.
    """
    warnings.filterwarnings(
        "ignore", message="Sending a large body directly", category=ResourceWarning, module=r"aiohttp\.payload"
    )


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, if any."""
    if not url:
        return None
    parsed = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parsed.hostname or ""):
        return None
    return urllib.request.getproxies().get(parsed.scheme)


#: a failure's kind -> the code of the record's problem; every other kind is "llm_error"
_PROBLEM_CODES = {"too_large": TOO_LARGE, TOO_DEEP: TOO_DEEP}


class _Failure(Exception):
    """One failed attempt: ``kind`` says what went wrong, ``status`` is 0 below HTTP."""

    def __init__(
        self, kind: str, message: str, *, status: int = 0, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    def describe(self) -> str:
        return f"{self.status}: {self.message}" if self.status else f"{self.kind}: {self.message}"


class _Job:
    __slots__ = ("request", "future")

    def __init__(self, request: ChatRequest, future: Future[ChatResult]) -> None:
        self.request = request
        self.future = future


class HttpBackend:
    """Answers chat requests over HTTP; ``submit`` returns futures, ``close`` ends the run.

    ``transport`` replaces the network layer (tests, benchmarks); ``wait`` replaces
    the backoff between attempts (``tenacity.wait_none()`` in tests; ``Retry-After``
    is honoured whatever it is); ``sleep`` replaces ``asyncio.sleep``.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        wait: Wait | None = None,
        sleep: Sleep | None = None,
        cache: ResponseCache | None = None,
        progress: LLMProgress | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not settings.base_url:
            raise ConfigError("no LLM endpoint is configured", hint="pass `--base-url URL` (or set APIGEN_BASE_URL)")
        self.settings = settings
        self.base_url = normalise_base_url(settings.base_url)
        key, _variable = find_api_key(settings.api_key_env, environ)
        if settings.api_key_env and key is None:
            raise ConfigError(
                f"`--api-key-env {settings.api_key_env}` names an environment variable that is not set",
                hint=f"export {settings.api_key_env}=... first, or leave `--api-key-env` out to use APIGEN_API_KEY",
            )
        self._key = key
        self._redactor = Redactor([key] if key else [])  # the key, and any long piece of it, never comes back
        self._transport = transport
        self.policy = RetryPolicy(
            attempts=settings.max_attempts,
            max_seconds=settings.max_retry_seconds,
            statuses=RETRY_STATUSES,
            backoff=wait if wait is not None else default_wait(),
        )
        self._sleep = sleep
        self._cache = cache
        self.progress = progress if progress is not None else LLMProgress()
        self.warnings: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.json_mode = settings.json_mode  # as configured; a model may have stepped down from it
        self._json_modes: dict[str, str] = {}  # model -> the mode it stepped down to
        self.downgrades: list[dict[str, str]] = []  # each step down, for the run report
        self._options = _base_options(settings)
        self._rpm = MinuteLimiter(settings.rpm) if settings.rpm else None
        self._tpm = MinuteLimiter(settings.tpm) if settings.tpm else None
        self._reached = False  # any HTTP reply at all: the endpoint exists
        self._usable_models: set[str] = set()
        self._refusals: dict[str, tuple[str, int]] = {}
        self._fatal: EndpointError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._jobs: deque[_Job] = deque()  # waiting for a worker
        self._arriving: list[_Job] = []  # submitted, not yet taken by the loop (see _take_arrivals)
        self._arriving_lock = threading.Lock()
        self._wake_pending = False
        self._workers: set[asyncio.Task[None]] = set()  # at most `concurrency`: the limit on requests in flight
        self._start_lock = threading.Lock()
        self._closed = False
        self._hint_task: asyncio.Future[list[str]] | None = None

    def __repr__(self) -> str:
        return f"HttpBackend(base_url={self.base_url!r}, concurrency={self.settings.concurrency})"

    # --- the request body -------------------------------------------------------------

    def json_mode_for(self, model: str) -> str:
        """The JSON mode requests for ``model`` are sent with now: the setting, or what it stepped down to."""
        return self._json_modes.get(model, self.json_mode)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body for ``request`` as it would be sent now (JSON mode may have stepped down)."""
        body: dict[str, Any] = {"model": request.model, "messages": request.messages}
        if request.tools:
            body["tools"] = request.tools
        body.update(self._options)
        if request.options:
            body.update({key: value for key, value in request.options.items() if not key.startswith("offline_")})
        if "max_completion_tokens" in body:  # `-O max_completion_tokens=N` (OpenAI's reasoning models refuse `max_tokens`)
            body.pop("max_tokens", None)
        mode = self.json_mode_for(request.model)
        if mode == "schema" and request.response_schema is not None:
            name = str(request.response_schema.get("title") or "response")
            name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": request.response_schema, "strict": False},
            }
        elif mode in ("schema", "object"):
            body["response_format"] = {"type": "json_object"}
        return body

    def cache_key(self, request: ChatRequest) -> str:
        return ResponseCache.key(self.base_url, self.body(request))

    # --- the synchronous face ---------------------------------------------------------

    def submit(self, requests: Sequence[ChatRequest]) -> list[Future[ChatResult]]:
        """Start answering ``requests``; each future holds a ``ChatResult`` (or ``EndpointError``)."""
        futures: list[Future[ChatResult]] = []
        jobs: list[_Job] = []
        for request in requests:
            future: Future[ChatResult] = Future()
            futures.append(future)
            if self._fatal is not None:
                future.set_exception(self._fatal)
                continue
            if self._cache is not None:
                found = self._cache.get(self.cache_key(request))
                if found is not None:
                    future.set_result(found)
                    continue
            jobs.append(_Job(request, future))
        if jobs:
            loop = self._start()
            with self._arriving_lock:
                self._arriving.extend(jobs)
                wake, self._wake_pending = not self._wake_pending, True
            if wake:
                loop.call_soon_threadsafe(self._take_arrivals)
        return futures

    def _take_arrivals(self) -> None:
        """Start the jobs submitted since the last wake-up (loop side).

        One wake-up of the loop takes every job submitted meanwhile: the loop is woken by a
        write to a pipe, and a write per request, each giving up the GIL, cost the submitting
        thread about a seventh of its time at 64 requests in flight.
        """
        with self._arriving_lock:
            jobs, self._arriving = self._arriving, []
            self._wake_pending = False
        self._start_jobs(jobs)

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the chat service is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                self._thread = threading.Thread(target=self._run_loop, args=(loop, ready), name="apigen-llm", daemon=True)
                self._thread.start()
                ready.wait()
                try:
                    asyncio.run_coroutine_threadsafe(self._open(), loop).result()
                except BaseException:
                    loop.call_soon_threadsafe(loop.stop)
                    self._thread.join(timeout=30)
                    raise
                self._loop = loop
            return self._loop

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _open(self) -> None:
        settings = self.settings
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        timeout = httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0), pool=None)
        transport = self._transport or make_transport(settings)
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport, trust_env=False
        )
        # Chat requests go straight to the client's transport: the client's per-request
        # work (cookies, redirects, auth flows), of no use to this API, cost about a
        # quarter of the CPU time per request at high concurrency.
        self._post_transport = transport
        self._endpoint = httpx.URL(self.base_url + "/chat/completions")
        self._post_headers = httpx.Headers({**headers, "Host": self._endpoint.netloc.decode("ascii")})
        self._extensions: dict[str, Any] = {"timeout": timeout.as_dict()}

    def close(self) -> None:
        """Cancel what is still running, close the client and stop the loop. Safe to call twice."""
        with self._start_lock:
            self._closed = True
            loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=30)

    async def _shutdown(self) -> None:
        self._drop_waiting(self._fatal or EndpointError("the chat service was closed"))
        tasks = list(self._workers)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._hint_task is not None:
            await asyncio.gather(self._hint_task, return_exceptions=True)  # it ends within its 5 s bound
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await asyncio.sleep(0)  # let transports finish closing their sockets

    # --- the loop side ----------------------------------------------------------------

    def _start_jobs(self, jobs: list[_Job]) -> None:
        """Queue jobs for the workers, starting workers up to ``concurrency``.

        A fixed pool of worker tasks (rather than a task per request behind a
        semaphore) keeps the limit structural and saves scheduling work per request.
        """
        if self._fatal is not None:
            for job in jobs:
                _settle(job.future, error=self._fatal)
            return
        self._jobs.extend(jobs)
        loop = asyncio.get_running_loop()
        for _ in range(min(self.settings.concurrency - len(self._workers), len(self._jobs))):
            task = loop.create_task(self._work())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        jobs = self._jobs
        try:
            while jobs and self._fatal is None:
                await self._run_job(jobs.popleft())
        finally:  # uncounted at once: a done callback runs later, after jobs taken meanwhile found every worker busy
            self._workers.discard(asyncio.current_task())

    def _drop_waiting(self, error: BaseException) -> None:
        with self._arriving_lock:
            self._jobs.extend(self._arriving)
            self._arriving = []
        while self._jobs:
            _settle(self._jobs.popleft().future, error=error)

    async def _run_job(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = await self._answer(job.request)
        except EndpointError as error:
            self._stop_everything(error)
            _settle(job.future, error=error)
        except asyncio.CancelledError:
            _settle(job.future, error=self._fatal or EndpointError("the request was cancelled"))
            raise
        except Exception as error:  # a bug: let the caller see it rather than hang
            _settle(job.future, error=error)
        else:
            _settle(job.future, result=result)

    def _stop_everything(self, error: EndpointError) -> None:
        if self._fatal is None:
            self._fatal = error
            self._drop_waiting(error)
            current = asyncio.current_task()
            for task in list(self._workers):
                if task is not current:
                    task.cancel()

    async def _answer(self, request: ChatRequest) -> ChatResult:
        if self._fatal is not None:
            raise self._fatal
        started = time.monotonic()
        attempts = [0]
        body = self.body(request)
        while True:
            try:
                text, prompt_tokens, completion_tokens, finish_reason = await self._send_with_retries(body, attempts)
                break
            except _Failure as failure:
                if failure.kind == "response_format" and "response_format" in body:
                    self._step_down(request.model, body, failure)
                    body = self.body(request)
                    continue
                if failure.kind == TOOLS_REFUSED:  # the caller steps down to tools described in the prompt
                    return ChatResult(
                        None, Problem(TOOLS_REFUSED, self._redact(failure.describe())), latency=time.monotonic() - started
                    )
                await self._check_usable(request.model, failure, model_flag(request))
                message = failure.describe()
                if attempts[0] > 1:
                    message += f" (after {attempts[0]} attempts)"
                return ChatResult(
                    None,
                    Problem(_PROBLEM_CODES.get(failure.kind, "llm_error"), self._redact(message)),
                    attempts=attempts[0],
                    latency=time.monotonic() - started,
                )
        self._usable_models.add(request.model)
        result = ChatResult(
            text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            attempts=attempts[0],
            latency=time.monotonic() - started,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        )
        if self._cache is not None:  # (not a reply cut by the token budget: a larger one would differ)
            self._cache.put(ResponseCache.key(self.base_url, body), request.model, result)
        return result

    def _step_down(self, model: str, body: dict[str, Any], failure: _Failure) -> None:
        """The server refused the ``response_format`` in ``body``: ask ``model`` with one mode less from now on.

        ``json_schema`` refused → ``object``; ``json_object`` refused → ``off``. Requests
        refused together step down once: a mode already below the target stays.
        """
        refused = str(body["response_format"].get("type", ""))
        target = "object" if refused == "json_schema" else "off"
        current = self.json_mode_for(model)
        if _JSON_MODE_RANK[current] <= _JSON_MODE_RANK[target]:
            return
        self._json_modes[model] = target
        reason = self._redact(failure.describe())
        self.downgrades.append({"endpoint": self.base_url, "model": model, "from": current, "to": target, "reason": reason})
        then = "asking for any JSON object instead" if target == "object" else "going on without JSON mode"
        self.warnings.put(
            f"the LLM endpoint `{self.base_url}` refused `response_format` {refused} for model `{model}` ({reason}); "
            f"{then} for this model for the rest of the run (pass `--json-mode {target}` to start there)"
        )

    async def _send_with_retries(self, body: dict[str, Any], attempts: list[int]) -> _Reply:
        """Send ``body`` until it succeeds or the retry policy gives up (raising the last ``_Failure``).

        The first attempt runs outside tenacity, which costs a noticeable share of a
        request's CPU time at thousands of requests per second; only a retryable
        failure enters the tenacity loop, replayed there as its first attempt.
        """
        started = time.monotonic()
        attempts[0] += 1
        try:
            return await self._send(body)
        except _Failure as failure:
            if not failure.retryable or self.policy.attempts <= 1:
                raise
            replay: list[_Failure] = [failure]
        retrying = tenacity.AsyncRetrying(
            sleep=self._sleep or asyncio.sleep,
            stop=lambda state: self._stop(state, started),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda error: isinstance(error, _Failure) and error.retryable),
            reraise=True,
            before_sleep=self._count_retry,
        )
        reply: _Reply = ("", 0, 0, None)
        async for attempt in retrying:
            with attempt:
                if replay:
                    raise replay.pop()
                attempts[0] += 1
                reply = await self._send(body)
        return reply

    def _count_retry(self, _state: tenacity.RetryCallState) -> None:
        self.progress.retries += 1

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.policy.wait_seconds(state, error.retry_after if isinstance(error, _Failure) else None)

    def _stop(self, state: tenacity.RetryCallState, started: float) -> bool:
        if state.attempt_number >= self.policy.attempts:
            return True
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _Failure) and error.kind == "unreachable" and not self._reached and state.attempt_number >= 2:
            return True  # nothing ever answered there: say so soon rather than after minutes of backoff
        return time.monotonic() - started + state.upcoming_sleep > self.policy.max_seconds

    async def _send(self, body: dict[str, Any]) -> _Reply:
        assert self._client is not None
        ticket: Ticket | None = None
        if self._rpm is not None:
            await self._rpm.acquire(1)
        if self._tpm is not None:
            ticket = await self._tpm.acquire(_estimate_tokens(body))
        progress = self.progress
        progress.in_flight += 1
        progress.requests += 1
        try:
            # One deadline for the whole attempt, connect to last byte: a per-read timeout alone
            # lets a server that trickles a byte at a time hold a request forever.
            response, content = await _within(self.settings.timeout, self._post(orjson.dumps(body)))
        except ReplyTooLarge as error:
            raise _Failure("too_large", str(error)) from None
        except UnsupportedEncoding as error:
            raise _Failure("bad_reply", self._redact(str(error)), retryable=True) from None
        except _TRANSPORT_ERRORS as error:
            raise _transport_failure(error, self.settings.timeout) from None
        finally:
            progress.in_flight -= 1
        self._reached = True
        status = response.status_code
        if status >= 400:
            raise self._http_failure(_whole(response, content), "response_format" in body, "tools" in body)
        text, prompt_tokens, completion_tokens, finish_reason = _read_reply(response, content, "tools" in body)
        if ticket is not None and self._tpm is not None and (prompt_tokens or completion_tokens):
            self._tpm.adjust(ticket, prompt_tokens + completion_tokens)
        return self._redact(text), prompt_tokens, completion_tokens, finish_reason

    async def _post(self, payload: bytes) -> tuple[httpx.Response, bytes]:
        """Send one request and read its reply: the (closed) response and its body, decoded size capped, the API key cut out.

        The body is read raw and inflated here (``replies.BoundedBody``), so that a
        compressed reply cannot grow past ``max_reply_bytes`` in memory. The body comes
        apart from the response: a response holding it (``_whole``) is made only for a
        failure's message, as building one costs a noticeable share of a request's CPU.
        """
        request = httpx.Request("POST", self._endpoint, headers=self._post_headers, content=payload, extensions=self._extensions)
        response = await self._post_transport.handle_async_request(request)
        limit = self.settings.max_reply_bytes
        try:
            encoding = response.headers.get("Content-Encoding")
            if declared_too_large(response.headers.get("Content-Length"), encoding, limit):
                raise ReplyTooLarge(limit)
            collected = BoundedBody(encoding, limit)
            async for chunk in response.aiter_raw():
                collected.feed(chunk)
        finally:
            await response.aclose()
        response.request = request
        content = collected.content()
        return response, self._redactor.data(content)  # a hostile or compromised endpoint may echo the key: it goes no further

    def _http_failure(self, response: httpx.Response, sent_response_format: bool, sent_tools: bool = False) -> _Failure:
        status = response.status_code
        message = self._redact(_provider_message(response))
        if sent_tools and status in (400, 422, 500, 501) and _TOOLS_WORDS.search(message):
            return _Failure(TOOLS_REFUSED, message, status=status)  # a server without function calling: never retried
        if sent_response_format and status in (500, 501) and _RESPONSE_FORMAT_WORDS.search(message):
            # llama-cpp-python answers an unsupported response_format with a 500: a refusal, not a fault to retry
            return _Failure("response_format", message, status=status)
        if self.policy.retryable_status(status):
            return _Failure("http", message, status=status, retryable=True, retry_after=retry_after_seconds(response.headers))
        if status in (401, 403):
            return _Failure("auth", message, status=status)
        if status == 404 or (status in (400, 422) and _UNKNOWN_MODEL_WORDS.search(message)):
            return _Failure("not_found", message, status=status)
        if status in (400, 422) and sent_response_format and _RESPONSE_FORMAT_WORDS.search(message):
            return _Failure("response_format", message, status=status)
        return _Failure("refused", message, status=status)

    async def _check_usable(self, model: str, failure: _Failure, flag: str = "--model") -> None:
        """Raise ``EndpointError`` when the failure shows the endpoint cannot serve this run at all.

        ``flag`` is the option that named the model (`--judge-model` for a judge), for the hint.
        """
        if model in self._usable_models:
            return
        where = f"`{self.base_url}`"
        detail = self._redact(failure.describe())
        if failure.kind == "bad_url":
            raise EndpointError(
                f"the LLM endpoint {where} is not a usable http:// or https:// URL, so no request can be sent there",
                hint="write the URL with its scheme, e.g. `--base-url http://localhost:8000/v1`",
            )
        if failure.kind == "unreachable" and not self._reached:
            raise EndpointError(
                f"cannot reach the LLM endpoint {where}: {failure.message}",
                hint="check `--base-url` (scheme, host, port and `/v1`) and that the server is running",
            )
        if failure.kind == "auth":
            raise EndpointError(
                f"the LLM endpoint {where} refused the request for model `{model}`: {detail}", hint=self._key_hint()
            )
        if failure.kind == "not_found":
            raise EndpointError(
                f"the LLM endpoint {where} does not serve model `{model}`: {detail}", hint=await self._models_hint(flag)
            )
        if failure.kind == "refused":
            last, count = self._refusals.get(model, ("", 0))
            count = count + 1 if failure.message == last else 1
            self._refusals[model] = (failure.message, count)
            if count >= _REFUSALS_BEFORE_STOP:
                raise EndpointError(
                    f"the LLM endpoint {where} refused the first {count} requests for model `{model}` alike: {detail}",
                    hint="check the parameters sent with the requests (`-O`, `--max-tokens`, `--json-mode`)",
                )

    def _key_hint(self) -> str:
        variable = find_api_key(self.settings.api_key_env)[1]
        if self._key is None:
            return "set the API key in APIGEN_API_KEY or OPENAI_API_KEY (or name another variable with `--api-key-env`)"
        return f"check the API key in ${variable} and that it may use this model"

    async def _models_hint(self, flag: str) -> str:
        """The hint naming the served models: fetched once, shielded from the cancelling of the
        workers that wait for it (a fetch cut off while connecting would leak its socket)."""
        if self._hint_task is None:
            self._hint_task = asyncio.ensure_future(self._fetch_served_models())
        names = await asyncio.shield(self._hint_task)
        if not names:
            return f"check `{flag}`, and `--base-url` (OpenAI-compatible servers usually end in `/v1`)"
        shown = ", ".join(name[:80] for name in names[:10]) + (", …" if len(names) > 10 else "")
        return self._redact(f"the endpoint serves: {shown}; pass one of them with `{flag}`")

    async def _fetch_served_models(self) -> list[str]:
        """The models the endpoint lists, or none when it lists none or cannot say."""
        assert self._client is not None
        try:
            # Bounded like a chat reply: in time (the whole exchange), and in size (64 kB is plenty of names).
            response = await asyncio.wait_for(self._list_models(), 5.0)
            return [str(entry["id"]) for entry in response.get("data", []) if isinstance(entry, dict) and "id" in entry]
        except Exception:  # the list is a courtesy; any failure just leaves it out
            return []

    async def _list_models(self) -> Any:
        assert self._client is not None
        async with self._client.stream("GET", "models", headers={"Accept-Encoding": ACCEPT_ENCODING}) as response:
            collected = BoundedBody(response.headers.get("Content-Encoding"), 1 << 16)
            async for chunk in response.aiter_raw():
                collected.feed(chunk)
        return orjson.loads(collected.content())

    def _redact(self, text: str) -> str:
        return self._redactor.text(text)


# --- helpers --------------------------------------------------------------------------


def normalise_base_url(url: str) -> str:
    """``http://host:8000/v1`` as given, without a trailing ``/chat/completions`` or slash."""
    url = url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def _base_options(settings: LLMSettings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("temperature", "top_p", "seed"):
        value = getattr(settings, name)
        if value is not None:
            options[name] = value
    options.update({key: value for key, value in settings.options.items() if not key.startswith("offline_")})
    return options


async def _within(seconds: float, work: Awaitable[T]) -> T:
    """``await work``, cancelled past ``seconds`` (``asyncio.TimeoutError``); no extra task on Python 3.11+."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await work
    return await asyncio.wait_for(work, seconds)  # pragma: no cover - Python 3.10


def _settle(future: Future[ChatResult], *, result: ChatResult | None = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except Exception:  # cancelled meanwhile by the caller: nobody waits for it
        pass


def _estimate_tokens(body: dict[str, Any]) -> float:
    characters = sum(len(str(message.get("content") or "")) for message in body.get("messages", []))
    return characters / 4 + float(body.get("max_tokens") or body.get("max_completion_tokens") or 0)


def _transport_failure(error: BaseException, timeout: float) -> _Failure:
    cause = error.__cause__ or error
    if isinstance(error, httpx.UnsupportedProtocol) or isinstance(cause, _BAD_URL_ERRORS):
        return _Failure("bad_url", f"not an http(s) URL ({_error_text(cause)})")
    if aiohttp is not None and isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(cause, asyncio.TimeoutError):
        return _Failure("unreachable", f"cannot connect ({_error_text(cause)})", retryable=True)
    if isinstance(error, httpx.ConnectError):
        return _Failure("unreachable", f"cannot connect ({_error_text(error)})", retryable=True)
    if aiohttp is not None and isinstance(cause, aiohttp.ClientError):
        is_timeout = isinstance(cause, asyncio.TimeoutError)  # httpx-aiohttp maps every aiohttp error to a timeout
    else:
        is_timeout = isinstance(error, (httpx.TimeoutException, asyncio.TimeoutError))
    if is_timeout:
        return _Failure("timeout", f"no reply within {timeout:g} s", retryable=True)
    return _Failure("connection", f"the connection failed ({_error_text(cause)})", retryable=True)


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _provider_message(response: httpx.Response) -> str:
    """The provider's own words: ``error.message``, ``message``, ``detail``, else the text."""
    text = response.text.strip()
    message: Any = None
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("code")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message") or data.get("detail")
    if not isinstance(message, str) or not message.strip():
        message = text or response.reason_phrase or "no message"
    words: str = " ".join(str(message).split())
    return words if len(words) <= _MESSAGE_LIMIT else words[: _MESSAGE_LIMIT - 1] + "…"


def _whole(response: httpx.Response, content: bytes) -> httpx.Response:
    """The response as one that holds its (decoded, redacted) body, for reading a failure's message."""
    headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _BODY_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=content, request=response.request)


def _read_reply(response: httpx.Response, content: bytes, with_tools: bool = False) -> _Reply:
    """``(text, prompt_tokens, completion_tokens, finish_reason)`` of a 2xx reply; a malformed one is retried.

    ``with_tools``: the request offered tools, so the text is the assistant message as JSON
    (``chat.tool_reply``): its content and its ``tool_calls``, either of which may be empty.
    """
    status = response.status_code
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        snippet = " ".join(_whole(response, content).text[:80].split())
        raise _Failure("bad_reply", f"the reply is not JSON: {snippet!r}", status=status, retryable=True) from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if isinstance(data, dict) and data.get("error"):
            raise _Failure("bad_reply", _provider_message(_whole(response, content)), status=status, retryable=True)
        raise _Failure("bad_reply", "the reply has no `choices`", status=status, retryable=True)
    choice = choices[0]
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else choice.get("text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    if with_tools and isinstance(message, dict):
        calls = message.get("tool_calls")
        deep = too_deep(calls, MAX_DEPTH - 1)  # under the message that will hold them
        if deep is not None:  # could not even be written back out (the encoder stops at 254 levels)
            raise _Failure(TOO_DEEP, f"the reply's `tool_calls` are {TOO_DEEP_TEXT} (at `tool_calls{deep}`)", status=status)
        if (isinstance(calls, list) and calls) or (isinstance(text, str) and text.strip()):
            said = text if isinstance(text, str) else None
            text = tool_reply(said, calls if isinstance(calls, list) else [])
    if not isinstance(text, str) or not text.strip():
        reason = choice.get("finish_reason")
        raise _Failure("empty", "the reply has no text" + (f" (finish_reason: {reason})" if reason else ""), status=status)
    return text, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), choice.get("finish_reason")


def model_flag(request: ChatRequest) -> str:
    """The option a user names this request's model with: `--judge-model` for a judge, else `--model`."""
    return "--judge-model" if (request.offline_task or {}).get("task") == "judge" else "--model"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
