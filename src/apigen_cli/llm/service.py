"""LLM access for the stages: one ChatService that routes each request by its model.

``open_chat_service(settings)`` is what ``generate`` and ``semantic-check`` call::

    with open_chat_service(settings, on_warning=messages.warning) as chat:
        for row, result in chat.map((row, request_for(row)) for row in rows):
            ...

Requests for the model ``offline`` go to the built-in offline backend (no
network); any other model goes to the OpenAI-compatible endpoint at
``settings.base_url``, whose client is created only when such a request comes.

``map`` is a plain synchronous generator: it reads its input lazily, keeps up to
``settings.window`` requests started ahead of the row it must give back next (at
most ``concurrency`` of them in flight), and yields results in input order as
soon as they are ready. ``usage`` counts requests and tokens per model;
``progress`` has live counters for a progress bar; ``--cache`` and ``--log-llm``
are handled here.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..config import LLMSettings, Resolved, resolve
from ..errors import ConfigError, EndpointError
from ..rows.shared_log import SharedLog
from ..wording import counted
from . import offline_blueprint, offline_conversation
from .cache import ResponseCache
from .chat import OFFLINE_MODEL, ChatRequest, ChatResult, LLMProgress, UsageByModel
from .offline import OfflineBackend, OfflineChatService, error_rate_from

if TYPE_CHECKING:  # the HTTP backend (httpx, aiohttp) loads only when a run asks a real endpoint
    import httpx

    from .batch import BatchBackend, BatchSettings
    from .batch import Sleep as BatchSleep
    from .http_backend import HttpBackend, Sleep, Wait

__all__ = [
    "LLMClient",
    "LLMProgress",
    "LLMSettings",
    "OfflineChatService",
    "Resolved",
    "open_chat_service",
    "resolve",
    "usage_lines",
]

T = TypeVar("T")
Warn = Callable[[str], None]


class ExchangeLog:
    """``--log-llm FILE``: one JSON line per exchange, appended whole even when other processes share the file."""

    def __init__(self, path: str, base_url: str | None, on_warning: Warn | None = None) -> None:
        self.path = path
        self.base_url = base_url
        self._on_warning = on_warning
        self._warned = False
        try:
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            self._file = SharedLog(path)
        except OSError as error:
            raise ConfigError(
                f"cannot write the exchange log `--log-llm {path}`: {error.strerror or error}",
                hint="name a file in a folder apigen may write to",
            ) from None

    def write(self, request: ChatRequest, result: ChatResult) -> None:
        entry: dict[str, Any] = {
            "time": time.time(),
            "key": request.key,
            "model": request.model,
            "endpoint": None if request.model == OFFLINE_MODEL else self.base_url,
            "messages": request.messages,
            "response": result.text,
            "latency": round(result.latency, 4),
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "attempts": result.attempts,
            "cached": result.cached,
            "error": None if result.error is None else {"code": result.error.code, "message": result.error.message},
        }
        if request.offline_task is not None and request.model == OFFLINE_MODEL:
            entry["offline_task"] = request.offline_task
        written = self._file.append(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE, default=str))
        if not written and not self._warned and self._on_warning is not None:
            self._warned = True
            self._on_warning(
                f"another process held the lock of `--log-llm {self.path}` for over {self._file.lock_wait:g} s "
                "(stopped mid-write?); exchanges are left out of the log while it holds it"
            )

    def close(self) -> None:
        self._file.close()


class LLMClient:
    """The ChatService the stages use: routes by model, keeps input order, counts, caches, logs."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        wait: Wait | None = None,
        sleep: Sleep | None = None,
        on_warning: Warn | None = None,
        environ: Mapping[str, str] | None = None,
        batch: BatchSettings | None = None,
        batch_sleep: BatchSleep | None = None,
        batch_transport: httpx.BaseTransport | None = None,
        on_batch_status: Warn | None = None,
    ) -> None:
        self.settings = settings
        self.usage = UsageByModel()
        self.progress = LLMProgress()
        self._on_warning = on_warning
        self._offline = OfflineBackend(
            seed=settings.seed,
            error_rate=error_rate_from(settings.options),
            writers={
                "blueprint": offline_blueprint.blueprint,
                "blueprint_review": offline_blueprint.review,
                "simulated_user": offline_conversation.user,
                "simulated_agent": offline_conversation.agent,
                "conversation_review": offline_conversation.review,
            },
        )
        self._http_arguments: dict[str, Any] = {"transport": transport, "wait": wait, "sleep": sleep, "environ": environ}
        self._http: HttpBackend | None = None
        self._cache: ResponseCache | None = None
        self._log: ExchangeLog | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._answered: set[tuple[str, str]] = set()  # (model, task) the endpoint answered at least once
        self._ask_lock = threading.Lock()  # `ask` records results from several threads
        self._asked_failures = 0  # failed `ask`s in a row
        self._batch: BatchBackend | None = None
        uses_http = any(model != OFFLINE_MODEL for model in settings.models)
        try:
            if uses_http:
                # Checked now, before any input is read: a missing key variable or endpoint is a setup error.
                self._http = self._make_http()
            # --- batch (`--batch`, `--batch-dir`): see llm/batch.py ---
            if batch is not None and self._http is not None:
                from .batch import BatchBackend

                self._batch = BatchBackend(
                    settings,
                    batch,
                    base_url=self._http.base_url,
                    transport=batch_transport,
                    sleep=batch_sleep,
                    on_status=on_batch_status,
                    environ=environ,
                )
            elif batch is not None and on_warning is not None:
                on_warning("`--batch` changes nothing for `--model offline`, which answers at once, without a provider")
            # --- end batch ---
            if settings.log_path:
                self._log = ExchangeLog(settings.log_path, settings.base_url, on_warning)
        except BaseException:
            self.close()
            raise

    def _make_http(self) -> HttpBackend:
        from .http_backend import HttpBackend

        if self._cache is None and self.settings.cache_dir:
            self._cache = ResponseCache(self.settings.cache_dir)
        return HttpBackend(self.settings, cache=self._cache, progress=self.progress, **self._http_arguments)

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()

    @property
    def http(self) -> HttpBackend:
        with self._lock:
            if self._http is None:
                if not self.settings.base_url:
                    raise ConfigError(_no_endpoint_message(), hint=_NO_ENDPOINT_HINT)
                self._http = self._make_http()
            return self._http

    def _submit(self, request: ChatRequest) -> Future[ChatResult]:
        if request.model == OFFLINE_MODEL:
            future: Future[ChatResult] = Future()
            future.set_result(self._offline.answer(request))
            return future
        return self.http.submit([request])[0]

    @property
    def json_mode_downgrades(self) -> list[dict[str, str]]:
        """Each time a model stepped down a JSON mode because the endpoint refused it (for the report)."""
        return list(self._http.downgrades) if self._http is not None else []

    def map(self, items: Iterable[tuple[T, ChatRequest]]) -> Iterator[tuple[T, ChatResult]]:
        """Answer each ``(item, request)``; yield ``(item, result)`` in input order, lazily.

        Raises ``EndpointError`` when the endpoint proves unusable: on its first
        requests (see the HTTP backend), or when its requests keep failing. Failed
        results are held back while they come in a row; when ``stop_after_failures``
        of them have, or when the input ends and every request this call sent the
        endpoint failed (and none of its models was ever answered for that task: a
        judge's re-ask follows an answer, a judge stage after generation does not),
        the call raises without giving them out: no row is written for them, and a
        resumed run asks them again. An exception from ``items`` itself comes out
        after the results of the items read before it.
        """
        if self._batch is not None:
            yield from self._map_batch(items)
            return
        window = self.settings.window
        pending: deque[tuple[T, ChatRequest, Future[ChatResult]]] = deque()
        source = iter(items)
        exhausted = False
        input_error: Exception | None = None
        held: list[tuple[T, ChatResult]] = []  # every result since the first of the failures in a row now
        failures_in_a_row = 0
        answered_here = False
        failed_kinds: set[tuple[str, str]] = set()
        try:
            while True:
                head_ready = bool(pending) and pending[0][2].done()
                if not head_ready and not exhausted and len(pending) < window:
                    try:
                        item, request = next(source)
                    except StopIteration:
                        exhausted = True
                    except Exception as error:  # yield what came before it first
                        input_error, exhausted = error, True
                    else:
                        pending.append((item, request, self._submit(request)))
                    continue
                if not pending:
                    break
                item, request, future = pending.popleft()
                result = future.result()
                self._record(request, result)
                if request.model != OFFLINE_MODEL:
                    if result.ok:
                        answered_here = True
                        self._answered.add(_kind(request))
                        failures_in_a_row = 0
                    else:
                        failures_in_a_row += 1
                        failed_kinds.add(_kind(request))
                        limit = self.settings.stop_after_failures
                        if limit and failures_in_a_row >= limit:
                            raise _failing(self.settings.base_url, failures_in_a_row, result)
                if failures_in_a_row:
                    held.append((item, result))  # behind the failures held, in input order
                    continue
                yield from held
                held.clear()
                yield item, result
            if held and not answered_here and not self._answered.intersection(failed_kinds):
                last = next(result for _item, result in reversed(held) if not result.ok)
                raise _all_failed(self.settings.base_url, failures_in_a_row, last)
            yield from held
            held.clear()
            if input_error is not None:
                raise input_error
        finally:
            for _item, _request, future in pending:
                future.cancel()
            self._deliver_warnings()

    def ask(self, request: ChatRequest) -> ChatResult:
        """One request, answered before it returns; callable from several threads at once.

        For conversations, whose next request depends on the last reply: each thread asks
        its own in turn, while the threads together keep up to ``concurrency`` in flight.
        Requests that keep failing stop the run as ``map``'s do (``stop_after_failures``
        in a row, counted across threads), raising ``EndpointError``.
        """
        result = self._submit(request).result()
        with self._ask_lock:
            self._record(request, result)
            if request.model != OFFLINE_MODEL:
                if result.ok:
                    self._asked_failures = 0
                else:
                    self._asked_failures += 1
                    limit = self.settings.stop_after_failures
                    if limit and self._asked_failures >= limit:
                        raise _failing(self.settings.base_url, self._asked_failures, result)
        return result

    # --- batch (`--batch`, `--batch-dir`) ---

    @property
    def collects_requests(self) -> bool:
        """True when ``map`` reads all its input before answering (a batch): stages then ask in rounds."""
        return self._batch is not None

    @property
    def batches(self) -> BatchBackend | None:
        return self._batch

    def _map_batch(self, items: Iterable[tuple[T, ChatRequest]]) -> Iterator[tuple[T, ChatResult]]:
        """``map`` through provider batches: read every item, answer offline and cached ones here, batch the rest.

        A successful batch reply is cached under the online request's key, so a
        batch-filled cache serves an online rerun and the other way round.
        """
        assert self._batch is not None
        read: list[tuple[T, ChatRequest]] = []
        input_error: Exception | None = None
        try:
            for pair in items:
                read.append(pair)
        except Exception as error:  # answer what came before it first, as the online path does
            input_error = error
        results: list[ChatResult | None] = [None] * len(read)
        sent: list[int] = []
        for index, (_item, request) in enumerate(read):
            if request.model == OFFLINE_MODEL:
                results[index] = self._offline.answer(request)
                continue
            found = self._cache.get(self.http.cache_key(request)) if self._cache is not None else None
            if found is not None:
                results[index] = found
            else:
                sent.append(index)
        bodies = [self.http.body(read[index][1]) for index in sent]
        answers = self._batch.answer([read[index][1] for index in sent], bodies)
        self._without_json_mode_if_refused(read, sent, bodies, answers)
        for index, body, answer in zip(sent, bodies, answers, strict=True):
            results[index] = answer
            if self._cache is not None:
                self._cache.put(ResponseCache.key(self.http.base_url, body), read[index][1].model, answer)
        for (item, request), answered in zip(read, results, strict=True):
            assert answered is not None
            self._record(request, answered)
            yield item, answered
        if input_error is not None:
            raise input_error

    def _without_json_mode_if_refused(
        self, read: list[tuple[T, ChatRequest]], sent: list[int], bodies: list[dict[str, Any]], answers: list[ChatResult]
    ) -> None:
        """As online: when the endpoint refuses `response_format`, go on without it (the refused ones again)."""
        assert self._batch is not None
        from .batch import refuses_response_format

        refused = [k for k, answer in enumerate(answers) if "response_format" in bodies[k] and refuses_response_format(answer)]
        if not refused or self.http.json_mode == "off":
            return
        self.http.json_mode = "off"
        if self._on_warning is not None:
            first = answers[refused[0]].error
            self._on_warning(
                f"the endpoint refused `response_format` ({first.message if first else 'no message'}); "
                "going on without JSON mode for the rest of the run (pass `--json-mode off` to skip this)"
            )
        again = [self.http.body(read[sent[k]][1]) for k in refused]
        for k, body, answer in zip(refused, again, self._batch.answer([read[sent[k]][1] for k in refused], again), strict=True):
            bodies[k], answers[k] = body, answer

    # --- end batch ---

    def _record(self, request: ChatRequest, result: ChatResult) -> None:
        self.usage.add(request.model, result)
        progress = self.progress
        progress.rows_done += 1
        progress.prompt_tokens += result.prompt_tokens
        progress.completion_tokens += result.completion_tokens
        progress.cached += 1 if result.cached else 0
        progress.failures += 0 if result.ok else 1
        if self._log is not None:
            self._log.write(request, result)
        self._deliver_warnings()

    def _deliver_warnings(self) -> None:
        if self._http is None:
            return
        while True:
            try:
                text = self._http.warnings.get_nowait()
            except queue.Empty:
                return
            if self._on_warning is not None:
                self._on_warning(text)

    def close(self) -> None:
        """Stop the background loop and close the client, the cache and the log. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._batch is not None:
                self._batch.close()
            if self._http is not None:
                self._deliver_warnings()
                self._http.close()
        finally:
            if self._cache is not None:
                self._cache.close()
            if self._log is not None:
                self._log.close()


def _kind(request: ChatRequest) -> tuple[str, str]:
    """What a request is for: its model and its task (``generate``, ``judge``), as its offline form says."""
    task = (request.offline_task or {}).get("task")
    return request.model, str(task or "")


def _failing(base_url: str | None, count: int, last: ChatResult) -> EndpointError:
    reason = last.error.message if last.error is not None else "no text"
    return EndpointError(
        f"{count} requests in a row to the LLM endpoint `{base_url}` failed, each after its retries; the last: {reason}",
        hint="check the server at `--base-url` (its log may say why), then run the same command again; "
        "`--stop-after-failures 0` never stops",
    )


def _all_failed(base_url: str | None, count: int, last: ChatResult) -> EndpointError:
    reason = last.error.message if last.error is not None else "no text"
    every = "the one request" if count == 1 else f"every one of the {count} requests"
    return EndpointError(
        f"{every} sent to the LLM endpoint `{base_url}` failed; the last: {reason}",
        hint="check `--base-url`, `--model` and the server's log; `--max-attempts` and `--timeout` give a slow server "
        "more time, and rows already written are kept",
    )


_NO_ENDPOINT_HINT = (
    "pass `--base-url URL` with `--model NAME` (or set APIGEN_BASE_URL and APIGEN_MODEL, or `base_url` and `model` "
    "in apigen.toml); `--model offline` runs the built-in offline backend, for demos and tests"
)


def _no_endpoint_message(models: Iterable[str] = ()) -> str:
    names = [model for model in models if model != OFFLINE_MODEL]
    if names:
        return f"model `{names[0]}` needs an LLM endpoint, but no base URL is configured"
    return "no LLM endpoint is configured"


def open_chat_service(
    settings: LLMSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    wait: Wait | None = None,
    sleep: Sleep | None = None,
    on_warning: Warn | None = None,
    environ: Mapping[str, str] | None = None,
    batch: BatchSettings | None = None,
    batch_sleep: BatchSleep | None = None,
    on_batch_status: Warn | None = None,
) -> LLMClient:
    """The ChatService for a run; raises ``ConfigError`` (exit 2) when nothing can answer.

    ``settings.models`` names the models the stage will ask; ``offline`` needs no
    endpoint, every other model needs ``settings.base_url``. ``on_warning`` hears
    what people should know (JSON mode dropped, …); library code prints nothing.
    ``transport``, ``wait`` and ``sleep`` are for tests and benchmarks. ``batch``
    sends the requests of each ``map`` as provider batches (see llm/batch.py),
    whose status lines go to ``on_batch_status``.
    """
    if not settings.models:
        raise ConfigError("no model is configured", hint=_NO_ENDPOINT_HINT)
    if not settings.base_url and any(model != OFFLINE_MODEL for model in settings.models):
        raise ConfigError(_no_endpoint_message(settings.models), hint=_NO_ENDPOINT_HINT)
    return LLMClient(
        settings,
        transport=transport,
        wait=wait,
        sleep=sleep,
        on_warning=on_warning,
        environ=environ,
        batch=batch,
        batch_sleep=batch_sleep,
        on_batch_status=on_batch_status,
    )


def import_http_backend_meanwhile(models: Iterable[str]) -> None:
    """Start importing the HTTP backend (httpx, aiohttp and the TLS contexts aiohttp makes at import: 0.2-0.3 s)
    in a thread of its own, when one of ``models`` is not offline and it is not imported yet.

    For a caller that waits on something else before its first request (simulate reads the environment's
    tools in a child process): the import goes on meanwhile, and ``open_chat_service`` finds the module
    loaded, or waits for the import to end. An import that fails here fails again there, and is told there.
    """
    if all(model == OFFLINE_MODEL for model in models) or f"{__package__}.http_backend" in sys.modules:
        return
    threading.Thread(target=_import_quietly, args=(f"{__package__}.http_backend",), name="apigen-import-http").start()


def _import_quietly(module: str) -> None:
    with contextlib.suppress(Exception):  # imported again, and its error told, where the module is used
        importlib.import_module(module)


def usage_lines(usage: UsageByModel) -> list[str]:
    """One line per model for the stage summary: requests, retries, cache hits, failures, tokens."""
    lines = []
    for model, counts in usage.models.items():
        details = [counted(counts.requests, "request")]
        if counts.retries:
            details.append(f"{counts.retries} retries")
        if counts.cached:
            details.append(f"{counts.cached} from cache")
        if counts.failures:
            details.append(f"{counts.failures} failed")
        tokens = f"{counts.prompt_tokens:,} prompt + {counts.completion_tokens:,} completion tokens"
        lines.append(f"{model}: {', '.join(details)}; {tokens}")
    return lines
