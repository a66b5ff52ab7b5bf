"""Batch submission (``--batch``, ``--batch-dir``): a stage's requests as one provider batch.

Providers answer the same chat requests at about half the price through the
OpenAI-compatible batch interface, within 24 hours. ``BatchBackend.answer``
takes every request of a stage at once and gives back one ``ChatResult`` each,
in the same order, so ``LLMClient.map`` keeps its contract and the stages run
unchanged:

1. each request becomes a line ``{"custom_id", "method": "POST", "url":
   "/v1/chat/completions", "body"}``, whose body is the one the online client
   would send (``HttpBackend.body``);
2. lines are grouped by model and cut at ``max_requests`` / ``max_bytes`` a file;
   each file is uploaded (``POST /files``, ``purpose=batch``) and a batch created
   (``POST /batches``, ``completion_window`` 24h);
3. the batches are polled (``GET /batches/{id}``) with a growing wait, and their
   output and error files downloaded and joined back by ``custom_id`` (the
   provider's order is not kept);
4. failed or expired requests go into a follow-up batch, up to ``retries`` times,
   then answer ``llm_error`` with the provider's message; as online, a refusal
   (4xx but 408, 409, 429) or an empty reply is not sent again.

A ``custom_id`` is a hash of the request's row key and body, so it names the
request whatever order or process asks it. The batches (ids, files, state, the
custom ids they hold) live in a small JSON file beside the output, replaced
atomically after every step: a process killed at any point is followed by one
that finds the same batches and submits nothing twice. A batch whose creation
was cut off before its id was saved is found again by its input file.

``--batch-dir DIR`` is the self-hosted variant: the request lines go to
``DIR/requests.jsonl`` for ``vllm run-batch``, whose output has the same format;
a rerun reads ``DIR/results.jsonl`` and carries on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ..config import LLMSettings, find_api_key
from ..errors import ApigenError, ConfigError, EndpointError
from ..problems import Problem
from ..redaction import Redactor
from ..retry import parse_retry_after
from ..rows.side_files import create_exclusive
from .chat import ChatRequest, ChatResult

CHAT_URL = "/v1/chat/completions"
STATE_SUFFIX = ".batch.json"
MAX_REQUESTS = 50_000
MAX_BYTES = 200_000_000
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_RETRY_STATUSES = frozenset({408, 409, 429})
_RESPONSE_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|guided_json|structured output", re.IGNORECASE)
_STATE_VERSION = 1

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Say = Callable[[str], None]


def state_path(output: str) -> str:
    """Where the batches of a command writing ``output`` are remembered."""
    return output + STATE_SUFFIX


@dataclass(frozen=True)
class BatchSettings:
    """How requests are batched. ``state_file`` for a provider, ``folder`` for ``vllm run-batch``."""

    state_file: str | None = None
    folder: str | None = None
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES
    retries: int = 2
    poll_seconds: float = 10.0
    poll_cap: float = 300.0


class BatchPending(ApigenError):
    """The requests are written for a self-hosted batch run; the command goes on once results are there."""


# --- the state beside the output ---------------------------------------------------------


@dataclass
class BatchEntry:
    """One provider batch as far as this run knows it."""

    tag: str
    model: str
    stage: str
    custom_ids: list[str]
    input_file_id: str | None = None
    id: str | None = None
    status: str = "uploading"
    counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    error: str | None = None
    collected: bool = False
    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass
class BatchState:
    """Every batch of one output: saved as JSON, replaced atomically after each change."""

    path: str
    base_url: str | None = None
    batches: list[BatchEntry] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> BatchState:
        try:
            with open(path, "rb") as handle:
                data = orjson.loads(handle.read())
            entries = [BatchEntry(**entry) for entry in data.get("batches", [])]
            return cls(path, data.get("base_url"), entries)
        except FileNotFoundError:
            return cls(path)
        except (ValueError, TypeError, AttributeError) as error:
            raise ConfigError(
                f"the batch state `{path}` is unreadable ({error})",
                hint="move it away to start afresh (batches it names keep running: cancel them on the provider's site)",
            ) from None

    def save(self) -> None:
        data = {"version": _STATE_VERSION, "base_url": self.base_url, "batches": [vars(entry) for entry in self.batches]}
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        # A temporary file of its own: `apigen batch status` may save while the command itself does.
        descriptor, temporary = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".", suffix=".tmp", dir=folder or ".")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(orjson.dumps(data))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise


def summary(batches: Iterable[BatchEntry]) -> dict[str, dict[str, int]]:
    """Per stage: batches, requests, answered, failed and tokens (for the report)."""
    stages: dict[str, dict[str, int]] = {}
    for entry in batches:
        if entry.id is None:
            continue
        counts = stages.setdefault(
            entry.stage,
            {"batches": 0, "requests": 0, "succeeded": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0},
        )
        counts["batches"] += 1
        counts["requests"] += len(entry.custom_ids)
        counts["succeeded"] += entry.succeeded
        counts["failed"] += entry.failed
        counts["prompt_tokens"] += entry.prompt_tokens
        counts["completion_tokens"] += entry.completion_tokens
    return stages


def summary_lines(stages: Mapping[str, Mapping[str, int]]) -> list[str]:
    lines = []
    for stage, counts in stages.items():
        plural = "" if counts["batches"] == 1 else "es"
        lines.append(
            f"{stage} ran as {counts['batches']} batch{plural}: {counts['requests']} requests, "
            f"{counts['failed']} failed; {counts['prompt_tokens']:,} prompt + {counts['completion_tokens']:,} completion tokens"
        )
    return lines


# --- the lines of a batch file -----------------------------------------------------------


def custom_ids(requests: Sequence[ChatRequest], bodies: Sequence[dict[str, Any]]) -> list[str]:
    """A name for each request from its row key and body; a repeat of both gets ``-2``, ``-3`` …"""
    seen: dict[str, int] = {}
    names = []
    for request, body in zip(requests, bodies, strict=True):
        digest = hashlib.sha256(orjson.dumps([request.key, body], option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
        seen[digest] = seen.get(digest, 0) + 1
        names.append(f"r{digest}" if seen[digest] == 1 else f"r{digest}-{seen[digest]}")
    return names


def request_line(custom_id: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": body}) + b"\n"


def stage_of(request: ChatRequest) -> str:
    task = (request.offline_task or {}).get("task")
    return {"generate": "generate", "judge": "semantic-check"}.get(str(task), "llm")


@dataclass(frozen=True)
class Outcome:
    """One request's answer in a batch: ``text`` and tokens, or the provider's ``message``."""

    text: str | None
    message: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    final: bool = False  # a failure sending again would not mend (a 400, an empty reply), as online
    finish_reason: str | None = None


def read_result_lines(data: bytes, where: str) -> dict[str, Outcome]:
    """The lines of an output or error file (OpenAI's and ``vllm run-batch``'s), by ``custom_id``."""
    found: dict[str, Outcome] = {}
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise EndpointError(
                f"line {number} of {where} is not JSON", hint="rerun the command; if it persists, the file is damaged"
            ) from None
        if not isinstance(entry, dict) or not isinstance(entry.get("custom_id"), str):
            continue
        found[entry["custom_id"]] = _outcome(entry)
    return found


def _outcome(entry: dict[str, Any]) -> Outcome:
    response = entry.get("response") if isinstance(entry.get("response"), dict) else None
    error = entry.get("error")
    body = response.get("body") if response is not None else None
    status = response.get("status_code") if response is not None else None
    if isinstance(body, str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            body = None
    if isinstance(body, dict) and (status is None or status == 200) and not error:
        choices = body.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message")
            text = message.get("content") if isinstance(message, dict) else choices[0].get("text")
            found = body.get("usage")
            usage: dict[str, Any] = found if isinstance(found, dict) else {}
            reason = choices[0].get("finish_reason")
            if isinstance(text, str) and text.strip():
                finished = reason if isinstance(reason, str) else None
                tokens = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
                return Outcome(text, "", *tokens, finish_reason=finished)
            return Outcome(None, "the reply has no text" + (f" (finish_reason: {reason})" if reason else ""), final=True)
        return Outcome(None, "the reply has no `choices`")
    words = _error_words(error) or (_provider_words(body) if isinstance(body, dict) else "") or "no reply"
    if isinstance(status, int) and status != 200:
        final = 400 <= status < 500 and status not in _RETRY_STATUSES
        return Outcome(None, f"{status}: {words}", final=final)
    return Outcome(None, words)


def _error_words(error: Any) -> str:
    if isinstance(error, dict):
        message = error.get("message") or error.get("code")
        code = error.get("code")
        text = str(message) if message else ""
        return f"{code}: {text}" if code and message and str(code) != text else text
    return str(error) if isinstance(error, str) else ""


def _provider_words(body: dict[str, Any]) -> str:
    """The provider's message in an error reply's body, as the online client reads it."""
    error = body.get("error")
    message = (error.get("message") or error.get("code")) if isinstance(error, dict) else error
    message = message or body.get("message") or body.get("detail")
    return " ".join(str(message).split())[:300] if message else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def refuses_response_format(result: ChatResult) -> bool:
    """A batch answer refusing JSON mode (a 400 or 422 naming it), as the online client tells one."""
    error = result.error
    return (
        error is not None
        and error.message.startswith(("400:", "422:"))
        and _RESPONSE_FORMAT_WORDS.search(error.message) is not None
    )


# --- the backend -------------------------------------------------------------------------


class BatchBackend:
    """Answers a whole list of requests through provider batches (or a ``vllm run-batch`` folder).

    ``sleep`` and ``clock`` replace ``time.sleep`` and ``time.monotonic`` (tests);
    ``on_status`` hears one line per change of a batch's state or counts.
    """

    def __init__(
        self,
        settings: LLMSettings,
        batch: BatchSettings,
        *,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
        on_status: Say | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if (batch.state_file is None) == (batch.folder is None):
            raise ConfigError("a batch run needs either a state file or a folder")
        self.settings = settings
        self.batch = batch
        self.base_url = base_url
        self._key = find_api_key(settings.api_key_env, environ)[0]
        self._redactor = Redactor([self._key] if self._key else [])  # the key, and long pieces of it, never come back
        self._transport = transport
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._say = on_status or (lambda _text: None)
        self._client: httpx.Client | None = None
        self._collected: dict[str, dict[str, Outcome]] = {}
        self._recovered = False
        self.refused_hint = _BATCH_HINT  # what to do when the endpoint has no batch API
        self.state = BatchState.load(batch.state_file) if batch.state_file else BatchState("")

    # --- the one entry point ---

    def answer(self, requests: Sequence[ChatRequest], bodies: Sequence[dict[str, Any]]) -> list[ChatResult]:
        """One result per request, in order; raises ``BatchPending`` in folder mode until results are there."""
        if not requests:
            return []
        names = custom_ids(requests, bodies)
        lines = {name: request_line(name, body) for name, body in zip(names, bodies, strict=True)}
        models = {name: request.model for name, request in zip(names, requests, strict=True)}
        stages = {name: stage_of(request) for name, request in zip(names, requests, strict=True)}
        if self.batch.folder is not None:
            outcomes = self._answer_from_folder(names, lines, models)
            return [_result(outcomes.get(name), 1) for name in names]
        outcomes, tries = self._answer_by_provider(names, lines, models, stages)
        return [_result(outcomes.get(name), tries.get(name, 0)) for name in names]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- provider batches ---

    def _answer_by_provider(
        self, names: list[str], lines: dict[str, bytes], models: dict[str, str], stages: dict[str, str]
    ) -> tuple[dict[str, Outcome], dict[str, int]]:
        wanted = set(names)
        if self.state.base_url is None:
            self.state.base_url = self.base_url
        self._recover()
        while True:
            mine = [entry for entry in self.state.batches if entry.id is not None and wanted.intersection(entry.custom_ids)]
            self._settle(mine)
            best: dict[str, Outcome] = {}
            tries: dict[str, int] = {}
            # Not sent again: a cancel means stop paying; a 400 or an empty reply would come back the same.
            settled: set[str] = set()
            for entry in mine:
                found = self._collect(entry)
                for name in wanted.intersection(entry.custom_ids):
                    outcome = found.get(name) or Outcome(None, _missing(entry))
                    if outcome.text is not None:
                        best[name] = outcome
                        continue
                    tries[name] = tries.get(name, 0) + 1
                    if entry.status == "cancelled" or outcome.final:
                        settled.add(name)
                    if name not in best or best[name].text is None:
                        best[name] = outcome
            pending = [
                name
                for name in dict.fromkeys(names)
                if (name not in best or best[name].text is None)
                and name not in settled
                and tries.get(name, 0) <= self.batch.retries
            ]
            if not pending:
                return best, tries
            self._submit(pending, lines, models, stages)

    def _recover(self) -> None:
        """Once per process: forget files never uploaded, find batches whose creation was cut off."""
        if self._recovered:
            return
        self._recovered = True
        before = len(self.state.batches)
        self.state.batches = [entry for entry in self.state.batches if entry.input_file_id is not None]
        orphans = [entry for entry in self.state.batches if entry.id is None]
        if orphans:
            known = self._list_batches()
            for entry in orphans:
                match = known.get(str(entry.input_file_id))
                if match is not None:
                    self._update(entry, match)
                else:
                    self._create(entry)
        elif len(self.state.batches) != before:
            self.state.save()

    def _submit(self, pending: list[str], lines: dict[str, bytes], models: dict[str, str], stages: dict[str, str]) -> None:
        for chunk in self._chunks(pending, lines, models):
            entry = BatchEntry(
                tag=uuid.uuid4().hex[:16],
                model=models[chunk[0]],
                stage=stages[chunk[0]],
                custom_ids=chunk,
                created=time.time(),
            )
            self.state.batches.append(entry)
            self.state.save()
            data = b"".join(lines[name] for name in chunk)
            uploaded = self._call(
                "POST",
                "files",
                files={"file": (f"apigen-{entry.tag}.jsonl", data, "application/jsonl")},
                data={"purpose": "batch"},
            )
            file_id = uploaded.get("id")
            if not isinstance(file_id, str):
                raise EndpointError(f"the upload to `{self.base_url}/files` gave no file id", hint=self.refused_hint)
            entry.input_file_id = file_id
            entry.status = "submitting"
            self.state.save()
            self._create(entry)

    def _chunks(self, pending: list[str], lines: dict[str, bytes], models: dict[str, str]) -> list[list[str]]:
        """Requests grouped by model (a batch holds one), then cut at the request and byte limits."""
        by_model: dict[str, list[str]] = {}
        for name in pending:
            by_model.setdefault(models[name], []).append(name)
        chunks: list[list[str]] = []
        for group in by_model.values():
            chunk: list[str] = []
            size = 0
            for name in group:
                length = len(lines[name])
                if length > self.batch.max_bytes:
                    raise ConfigError(
                        f"one request is {length:,} bytes, more than `--batch-max-bytes {self.batch.max_bytes}`",
                        hint="raise `--batch-max-bytes`, or send such requests without `--batch`",
                    )
                if chunk and (len(chunk) >= self.batch.max_requests or size + length > self.batch.max_bytes):
                    chunks.append(chunk)
                    chunk, size = [], 0
                chunk.append(name)
                size += length
            if chunk:
                chunks.append(chunk)
        return chunks

    def _create(self, entry: BatchEntry) -> None:
        created = self._call(
            "POST",
            "batches",
            json={
                "input_file_id": entry.input_file_id,
                "endpoint": CHAT_URL,
                "completion_window": "24h",
                "metadata": {"apigen_tag": entry.tag, "apigen_stage": entry.stage},
            },
        )
        if not isinstance(created.get("id"), str):
            raise EndpointError(f"creating a batch at `{self.base_url}/batches` gave no batch id", hint=self.refused_hint)
        self._update(entry, created)
        self._say(f"batch {entry.id} submitted: {len(entry.custom_ids)} {entry.stage} requests for model `{entry.model}`")

    def _list_batches(self, pages: int = 20) -> dict[str, dict[str, Any]]:
        """Recent batches by input file id (a batch created by a process killed before it saved the id)."""
        found: dict[str, dict[str, Any]] = {}
        after: str | None = None
        for _ in range(pages):
            page = self._call("GET", "batches", params={"limit": 100, **({"after": after} if after else {})})
            data = page.get("data")
            if not isinstance(data, list) or not data:
                break
            for batch in data:
                if isinstance(batch, dict) and isinstance(batch.get("input_file_id"), str):
                    found.setdefault(batch["input_file_id"], batch)
            if not page.get("has_more"):
                break
            after = str(data[-1].get("id")) if isinstance(data[-1], dict) else None
        return found

    def _settle(self, entries: list[BatchEntry]) -> None:
        """Poll until every batch is finished, waiting longer each time (up to ``poll_cap``)."""
        wait = self.batch.poll_seconds
        started = self._clock()
        while True:
            open_entries = [entry for entry in entries if not entry.finished]
            if not open_entries:
                return
            for entry in open_entries:
                self._update(entry, self._call("GET", f"batches/{entry.id}"), elapsed=self._clock() - started)
            if all(entry.finished for entry in entries):
                return
            self._sleep(wait)
            wait = min(max(wait * 2, 0.0), self.batch.poll_cap)

    def _update(self, entry: BatchEntry, batch: dict[str, Any], *, elapsed: float | None = None) -> None:
        before = (entry.id, entry.status, dict(entry.counts))
        entry.id = str(batch.get("id") or entry.id)
        entry.status = str(batch.get("status") or entry.status)
        counts = batch.get("request_counts")
        if isinstance(counts, dict):
            entry.counts = {key: _count(counts.get(key)) for key in ("total", "completed", "failed")}
        for name in ("output_file_id", "error_file_id"):
            value = batch.get(name)
            if isinstance(value, str) and value:
                setattr(entry, name, value)
        errors = batch.get("errors")
        if isinstance(errors, dict) and isinstance(errors.get("data"), list) and errors["data"]:
            entry.error = "; ".join(_error_words(item) for item in errors["data"][:3] if isinstance(item, dict)) or None
        if (entry.id, entry.status, entry.counts) != before:
            self.state.save()
            if elapsed is not None:
                self._say(_status_line(entry, elapsed))

    def _collect(self, entry: BatchEntry) -> dict[str, Outcome]:
        """The answers of a finished batch: its output and error files, downloaded once per process."""
        assert entry.id is not None
        if entry.id in self._collected:
            return self._collected[entry.id]
        found: dict[str, Outcome] = {}
        for file_id in (entry.error_file_id, entry.output_file_id):  # a success wins over an error line
            if file_id:
                found.update(read_result_lines(self._download(file_id), f"the file `{file_id}` of batch `{entry.id}`"))
        if entry.status == "failed" and not found:
            message = entry.error or "the provider failed the batch"
            found = {name: Outcome(None, f"batch failed: {message}") for name in entry.custom_ids}
        self._collected[entry.id] = found
        members = set(entry.custom_ids)
        answers = [outcome for name, outcome in found.items() if name in members]
        counted = (
            sum(1 for outcome in answers if outcome.text is not None),
            len(members) - sum(1 for outcome in answers if outcome.text is not None),
            sum(outcome.prompt_tokens for outcome in answers),
            sum(outcome.completion_tokens for outcome in answers),
        )
        if not entry.collected or counted != (entry.succeeded, entry.failed, entry.prompt_tokens, entry.completion_tokens):
            entry.succeeded, entry.failed, entry.prompt_tokens, entry.completion_tokens = counted
            entry.collected = True
            self.state.save()
        return found

    def _download(self, file_id: str) -> bytes:
        response = self._send("GET", f"files/{file_id}/content")
        return self._redactor.data(response.content)  # a provider's results echoing the key: not into rows or the cache

    def cancel(self) -> list[BatchEntry]:
        """Ask the provider to cancel every unfinished batch; the entries it cancelled."""
        cancelled = []
        for entry in self.state.batches:
            if entry.id is not None and not entry.finished:
                self._update(entry, self._call("POST", f"batches/{entry.id}/cancel"))
                cancelled.append(entry)
        return cancelled

    def refresh(self) -> None:
        """Bring every batch's state up to date from the provider."""
        for entry in self.state.batches:
            if entry.id is not None and not entry.finished:
                self._update(entry, self._call("GET", f"batches/{entry.id}"))

    # --- HTTP ---

    def _call(self, method: str, path: str, **arguments: Any) -> dict[str, Any]:
        response = self._send(method, path, **arguments)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise EndpointError(f"`{method} {self.base_url}/{path}` did not answer a JSON object", hint=self.refused_hint)
        return data

    def _send(self, method: str, path: str, **arguments: Any) -> httpx.Response:
        """One batch-API call, retried on transport errors, 408, 409, 429 and 5xx; other failures stop the run."""
        client = self._open()
        wait = 0.5
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                response = client.request(method, path, **arguments)
            except httpx.TransportError as error:
                if attempt >= self.settings.max_attempts:
                    raise EndpointError(
                        f"cannot reach the batch API at `{self.base_url}/{path}`: {type(error).__name__}: {error}",
                        hint="check `--base-url` and that the server is running; rerun the same command to carry on",
                    ) from None
                self._sleep(wait)
                wait = min(wait * 2, 30.0)
                continue
            status = response.status_code
            if status < 400:
                return response
            if (status >= 500 or status in _RETRY_STATUSES) and attempt < self.settings.max_attempts:
                self._sleep(max(wait, parse_retry_after(response.headers.get("retry-after")) or 0.0))
                wait = min(wait * 2, 30.0)
                continue
            raise EndpointError(
                f"the batch API refused `{method} {self.base_url}/{path}`: {status}: {self._redact(_message(response))}",
                hint=self.refused_hint
                if status in (404, 405)
                else "check the API key and `--base-url`; rerun the same command to carry on",
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> httpx.Client:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            timeout = httpx.Timeout(self.settings.timeout, connect=min(self.settings.timeout, 10.0))
            self._client = httpx.Client(
                base_url=self.base_url + "/", headers=headers, timeout=timeout, transport=self._transport, trust_env=False
            )
        return self._client

    def _redact(self, text: str) -> str:
        return self._redactor.text(text)

    # --- a folder for `vllm run-batch` ---

    def _answer_from_folder(self, names: list[str], lines: dict[str, bytes], models: dict[str, str]) -> dict[str, Outcome]:
        folder = self.batch.folder
        assert folder is not None
        found: dict[str, Outcome] = {}
        round_number = 1
        while os.path.exists(os.path.join(folder, _folder_name("results", round_number))):
            path = os.path.join(folder, _folder_name("results", round_number))
            with open(path, "rb") as handle:
                found.update(read_result_lines(handle.read(), f"`{path}`"))
            round_number += 1
        missing = [name for name in dict.fromkeys(names) if name not in found]
        if not missing:
            return found
        wanted_models = sorted({models[name] for name in missing})
        if len(wanted_models) > 1:
            raise ConfigError(
                f"`--batch-dir` runs one model at a time, and these requests are for {', '.join(wanted_models)}",
                hint="give the stage one model, or use `--batch` with a provider",
            )
        requests_path = os.path.join(folder, _folder_name("requests", round_number))
        results_path = os.path.join(folder, _folder_name("results", round_number))
        os.makedirs(folder, exist_ok=True)
        temporary = requests_path + ".tmp"
        with os.fdopen(create_exclusive(temporary), "wb") as handle:  # never through a link planted at the name
            handle.write(b"".join(lines[name] for name in missing))
        os.replace(temporary, requests_path)
        raise BatchPending(
            f"{len(missing)} requests are written to `{requests_path}`; their results are not there yet",
            hint=f"run `vllm run-batch -i {requests_path} -o {results_path} --model {wanted_models[0]}`, "
            "then rerun this same command to carry on",
        )


_BATCH_HINT = "the endpoint may have no batch API (`/files`, `/batches`); for vLLM use `--batch-dir DIR`, or leave `--batch` out"


def _folder_name(kind: str, round_number: int) -> str:
    return f"{kind}.jsonl" if round_number == 1 else f"{kind}-{round_number}.jsonl"


def _missing(entry: BatchEntry) -> str:
    if entry.status == "failed":
        return f"batch failed: {entry.error or 'the provider failed the batch'}"
    if entry.status == "expired":
        return "the batch expired before answering this request"
    if entry.status == "cancelled":
        return "the batch was cancelled before answering this request"
    return "the batch gave no answer for this request"


def _result(outcome: Outcome | None, failed_tries: int) -> ChatResult:
    """A request's result; ``failed_tries``: the batches it was in that gave no answer (0 when the first one did)."""
    if outcome is None:
        return ChatResult(None, Problem("llm_error", "the batch gave no answer for this request"), attempts=max(1, failed_tries))
    if outcome.text is None:
        detail = outcome.message + (f" (after {failed_tries} batches)" if failed_tries > 1 else "")
        return ChatResult(None, Problem("llm_error", detail), attempts=max(1, failed_tries))
    return ChatResult(
        outcome.text,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        attempts=failed_tries + 1,
        finish_reason=outcome.finish_reason,
    )


def _status_line(entry: BatchEntry, elapsed: float) -> str:
    counts = entry.counts
    total = counts.get("total") or len(entry.custom_ids)
    minutes = int(elapsed // 60)
    return (
        f"batch {entry.id} ({entry.stage}): {entry.status}, {counts.get('completed', 0)}/{total} done, "
        f"{counts.get('failed', 0)} failed, {minutes} min"
    )


def _message(response: httpx.Response) -> str:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        words = _error_words(data.get("error")) or str(data.get("message") or data.get("detail") or "")
        if words:
            return " ".join(words.split())[:300]
    return " ".join(response.text.split())[:300] or response.reason_phrase
