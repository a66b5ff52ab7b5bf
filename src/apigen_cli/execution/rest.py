"""REST APIs as tools: a tool's ``http`` binding, and calls made through one httpx client.

A tool (in any dialect; for OpenAI-wrapped tools, beside ``function`` or inside it)
may carry::

    "http": {
        "method": "GET",                                  # GET (default), POST, PUT, PATCH, DELETE, HEAD, OPTIONS
        "url": "https://host/v1/items/{item_id}",         # {name}: an argument, URL-encoded into the path
        "query": ["q"],                                   # arguments sent in the query string
        "headers": {"X-Api-Key": "$ITEMS_KEY",            # $NAME / ${NAME}: taken from the environment; $$: a `$`
                    "X-Request-Id": "{request_id}"},      # {name}: an argument (the header is left out without it)
        "rename": {"body_id": "id"},                      # an argument sent (query, body) under another name
        "timeout": 5                                      # seconds, overrides --http-timeout
    }

Arguments named in the URL fill the path. For methods without a body (GET,
DELETE, HEAD, OPTIONS), every other argument goes to the query string; for POST,
PUT and PATCH, those listed in ``query`` go to the query string and the rest form
the JSON body. Arguments named in a header value go to that header only; ``rename``
lets two parameters of an imported API that share a name on the wire (a path and
a body ``id``) be two arguments. ``$NAME`` in the URL and header values is read from apigen's own
environment (``$$`` is a literal ``$``, as in ``/jobs/$$next``) (workers never see it), and only when ``--pass-env`` names it: a
binding comes with the rows, and must not send other variables to a host of its
choosing (such a row is rejected, ``binding_not_allowed``). A variable that is
passed but not set stops the run with an error, since every call would fail the
same way. A query string in the URL itself is kept; path arguments may not be
``.`` or ``..`` (which would climb out of the URL's path).

Where a call goes is the binding's, never the arguments': an ``{argument}`` may stand
only in the path or the query, after the scheme, host and port (the origin) have ended,
and its value is percent-encoded (``/``, ``@``, ``:``, ``?`` and ``#`` included), so it
fills one path segment or one query value. Every request is checked against that origin
before it is sent.

Limits against a hostile server: ``--http-timeout`` bounds a whole attempt, from
connect to the last byte (a deadline every socket operation honours); the reply's
decoded size is capped (``reply_too_large``); a redirect to another origin is
followed without the headers that took environment values, or not followed at
all, as ``HttpOptions.redirects`` says.

Calls retry with tenacity on transport errors, 408, 429 and 5xx, honouring
``Retry-After`` (capped), with exponential backoff and jitter otherwise; any other
status is final. A JSON reply (by its Content-Type) is recorded as JSON, any
other reply as text.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

from ..errors import ConfigError
from ..problems import Problem
from ..replies import ACCEPT_ENCODING, TOO_LARGE, BoundedBody, ReplyTooLarge, UnsupportedEncoding, declared_too_large
from ..retry import RetryPolicy, exponential_backoff, retry_after_seconds
from ..version import __version__
from .calls import HttpOptions, Outcome, Pending, recorded
from .environment import HandOutEnvironment

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
BINDING_KEYS = ("method", "url", "query", "headers", "rename", "timeout")
# A URL or header template, read in one pass: `$$` is a literal `$`, `${NAME}` and `$NAME` are
# environment variables, `{name}` is an argument. One pass, so that `$${id}` is a dollar before the
# argument `id`, and a value put in (an argument's, a variable's) is never read as a template.
_TEMPLATE = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<argument>[A-Za-z_][A-Za-z0-9_]*)\}"
)
_TEMPLATE_VARIABLE = re.compile(r"\$\{?[A-Za-z_]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_END_OF_ORIGIN = re.compile(r"[/?#]")
_BODY_EXCERPT = 300
_MAX_REDIRECTS = 5
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class BindingError(Exception):
    """A call that cannot be made: a malformed binding, or arguments that do not fit it."""

    def __init__(self, code: str, message: str, error_type: str = "InvalidBinding") -> None:
        super().__init__(message)
        self.problem = Problem(code, message)
        self.error_type = error_type


@dataclass(frozen=True)
class HttpBinding:
    tool: str
    method: str
    url: str
    path_params: tuple[str, ...]
    query: frozenset[str]
    headers: tuple[tuple[str, str], ...]
    timeout: float | None
    rename: tuple[tuple[str, str], ...] = ()  # argument -> name on the wire
    header_params: frozenset[str] = frozenset()  # arguments that go into a header value


_bindings: dict[bytes, HttpBinding | BindingError] = {}
_bindings_lock = threading.Lock()


def parse_binding(spec: Any, tool: str) -> HttpBinding:
    """Read a tool's ``http`` binding; raises ``BindingError`` (code ``invalid_tool_definition``). Cached."""
    try:
        key = orjson.dumps([tool, spec], option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _parse_binding(spec, tool)
    found = _bindings.get(key)
    if found is None:
        try:
            found = _parse_binding(spec, tool)
        except BindingError as error:
            found = error
        with _bindings_lock:
            if len(_bindings) > 4096:
                _bindings.clear()
            _bindings[key] = found
    if isinstance(found, BindingError):
        raise found
    return found


def _invalid(tool: str, message: str) -> BindingError:
    return BindingError("invalid_tool_definition", f"tool `{tool}`: {message}")


def _parse_binding(spec: Any, tool: str) -> HttpBinding:
    if not isinstance(spec, dict):
        raise _invalid(tool, f"`http` should be an object with at least a `url`, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(BINDING_KEYS))
    if unknown:
        names = ", ".join(f"`{key}`" for key in unknown)
        raise _invalid(tool, f"`http` has unknown key(s) {names} (known: {', '.join(BINDING_KEYS)})")
    method = spec.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _invalid(tool, f"`http.method` is {method!r}, not one of {', '.join(METHODS)}")
    url = spec.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _invalid(tool, "`http.url` is missing")
    query = spec.get("query", [])
    if not isinstance(query, list) or not all(isinstance(name, str) for name in query):
        raise _invalid(tool, "`http.query` should be a list of argument names")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(value, (str, int, float)) for value in headers.values()):
        raise _invalid(tool, "`http.headers` should map header names to strings")
    rename = spec.get("rename", {})
    if not isinstance(rename, dict) or not all(isinstance(value, str) and value for value in rename.values()):
        raise _invalid(tool, "`http.rename` should map argument names to the names they are sent under")
    if not _TEMPLATE_VARIABLE.search(_before_arguments(url)):
        _fixed_origin(url, tool)  # a literal origin: a mistake is the binding's, for every row
    timeout = spec.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise _invalid(tool, "`http.timeout` should be a positive number of seconds")
    return HttpBinding(
        tool=tool,
        method=method.upper(),
        url=url.strip(),
        path_params=tuple(dict.fromkeys(_arguments_in(url))),
        query=frozenset(query),
        headers=tuple((str(name), str(value)) for name, value in headers.items()),
        timeout=float(timeout) if timeout is not None else None,
        rename=tuple((str(name), value) for name, value in rename.items()),
        header_params=frozenset(name for value in headers.values() for name in _arguments_in(str(value))),
    )


@dataclass(frozen=True)
class HttpRequest:
    """A call ready to send; ``shown_url`` is the URL for messages, with environment values left out."""

    tool: str
    method: str
    url: str
    shown_url: str
    params: list[tuple[str, str | int | float | bool | None]]
    headers: dict[str, str]
    body: Any
    has_body: bool
    timeout: float | None
    secrets: tuple[str, ...] = ()  # environment values put into the request: never echoed into a row


def _arguments_in(template: str) -> list[str]:
    """The ``{name}`` s of a URL or header template, in order."""
    return [match["argument"] for match in _TEMPLATE.finditer(template) if match["argument"]]


def _fill(template: str, argument: Callable[[str], str], variable: Callable[[str], str] | None) -> str:
    """``template`` with its arguments and environment variables filled (variables left as written when ``None``)."""

    def substitute(match: re.Match[str]) -> str:
        if match["argument"]:
            return argument(match["argument"])
        name = match["braced"] or match["bare"]
        if name is None:
            return "$"  # `$$`
        return variable(name) if variable is not None else match[0]

    return _TEMPLATE.sub(substitute, template)


def _before_arguments(template: str) -> str:
    """The text of a URL template before its first ``{argument}``: what fixes where the call goes."""
    first = next((match for match in _TEMPLATE.finditer(template) if match["argument"]), None)
    return template if first is None else template[: first.start()]


def _fixed_origin(url: str, tool: str) -> httpx.URL:
    """The origin (scheme, host, port) that ``url`` (a template with its variables filled) sends to.

    The scheme and authority must end before the first ``{argument}``: an argument there
    would choose the host that receives the binding's keys.
    """
    head = _before_arguments(url)
    scheme = _SCHEME.match(head)
    if scheme is None and head == url:
        raise _invalid(tool, "`http.url` should start with http:// or https://")
    if scheme is None or (head != url and not _END_OF_ORIGIN.search(head, scheme.end())):
        argument = _arguments_in(url[len(head) :])[0]
        raise _invalid(
            tool,
            f"`{{{argument}}}` in `http.url` stands in its scheme, host or port; arguments fill only the path and the query",
        )
    authority = _END_OF_ORIGIN.split(head[scheme.end() :], maxsplit=1)[0]
    try:
        return httpx.URL(head[: scheme.end()] + authority)
    except httpx.InvalidURL as error:
        raise _invalid(tool, f"`http.url` has no valid scheme, host and port: {error}") from None


def _same_origin_as(url: str, origin: httpx.URL, tool: str) -> None:
    """Every request is checked against its binding's origin just before it goes."""
    try:
        sent = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise _invalid(tool, f"`http.url` filled with the call's arguments is not a valid URL: {error}") from None
    if not _same_origin(sent, origin):
        raise _invalid(tool, f"the call would go to {sent.scheme}://{sent.netloc.decode()}, not to its binding's origin")


def _environment_value(name: str, binding: HttpBinding, where: str, environ: Mapping[str, str], used: list[str]) -> str:
    """The variable ``name`` from ``environ`` (the variables apigen may hand out); records what it put in."""
    value = environ.get(name)
    if value is None:
        if isinstance(environ, HandOutEnvironment) and not environ.allows(name):
            # The binding came with the row: the row is refused, the run goes on.
            raise BindingError(
                "binding_not_allowed",
                f"the `http` binding of tool `{binding.tool}` uses `${name}` in {where}, which `--pass-env` does not "
                f"allow to go out (pass `--pass-env {name}` if the tools you run may send it)",
                "BindingNotAllowed",
            )
        raise ConfigError(
            f"the `http` binding of tool `{binding.tool}` uses `${name}` in {where}, which is not set in the environment",
            hint=f"export {name}=... before running apigen (workers never see it; only the HTTP client does)",
        )
    used.append(value)
    return value


def _text(value: Any) -> str:
    """How an argument is written in a URL: strings as they are, other values as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def build_request(binding: HttpBinding, arguments: Any, environ: Mapping[str, str]) -> HttpRequest:
    """Fill the binding with one call's arguments. Raises ``BindingError`` or ``ConfigError`` (unset variable)."""
    if not isinstance(arguments, dict):
        raise BindingError("invalid_arguments", f"tool `{binding.tool}`: arguments should be an object", "TypeError")
    for name in binding.path_params:
        if arguments.get(name) is None:
            raise BindingError(
                "invalid_arguments",
                f"the URL of `{binding.tool}` needs `{{{name}}}`, which the call does not give",
                "TypeError",
            )
    used: list[str] = []

    def in_path(name: str) -> str:
        return quote(_text(arguments[name]), safe="")

    _check_path_segments(binding, in_path)
    from_environment = partial(_environment_value, binding=binding, where="its URL", environ=environ)
    origin = _fixed_origin(_fill(binding.url, lambda name: "{" + name + "}", partial(from_environment, used=[])), binding.tool)
    url = _fill(binding.url, in_path, partial(from_environment, used=used))
    shown = _fill(binding.url, in_path, None)
    if not url.lower().startswith(("http://", "https://")):
        raise BindingError("invalid_tool_definition", f"tool `{binding.tool}`: `http.url` should start with http:// or https://")
    _same_origin_as(url, origin, binding.tool)
    has_body = binding.method in BODY_METHODS
    params: list[tuple[str, str | int | float | bool | None]] = []
    body: dict[str, Any] = {}
    wire = dict(binding.rename)
    for name, value in arguments.items():
        if name in binding.path_params or name in binding.header_params:
            continue
        sent_as: str = wire.get(name) or name
        if has_body and name not in binding.query:
            body[sent_as] = value
        elif value is not None:
            for item in value if isinstance(value, list) else [value]:
                params.append((sent_as, _text(item)))
    headers: dict[str, str] = {}
    for name, value in binding.headers:
        if any(arguments.get(argument) is None for argument in _arguments_in(value)):
            continue  # an optional header argument the call does not give
        in_header = partial(_environment_value, binding=binding, where=f"header `{name}`", environ=environ, used=used)
        headers[name] = _fill(value, lambda argument: _text(arguments[argument]), in_header)
    return HttpRequest(binding.tool, binding.method, url, shown, params, headers, body, has_body, binding.timeout, tuple(used))


def _check_path_segments(binding: HttpBinding, in_path: Callable[[str], str]) -> None:
    """Refuse arguments that make a path segment ``.`` or ``..``: the client would resolve them,
    and ``/v1/items/{a}/{b}/{c}`` with ``..``, ``..``, ``x`` would become ``/x``."""
    path = binding.url.split("?", 1)[0].split("#", 1)[0]
    for segment in path.split("/"):
        names_in_segment = _arguments_in(segment)
        if not names_in_segment:
            continue
        filled = _fill(segment, in_path, None)
        if filled in (".", ".."):
            names = ", ".join(f"`{name}`" for name in names_in_segment)
            raise BindingError(
                "invalid_arguments",
                f"the URL of `{binding.tool}`: {names} makes the path segment `{filled}`, which would leave the URL's path",
                "ValueError",
            )


# --- limits on the network ----------------------------------------------------------------

_deadlines = threading.local()  # each call runs on one pool thread: its attempt's deadline lives there


def _remaining(timeout: float | None) -> float | None:
    """The socket timeout for the next operation: the per-operation one, cut to what is left of the attempt."""
    deadline: float | None = getattr(_deadlines, "value", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the attempt ran past its deadline")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read and write ends by the attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _remaining(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with streams that honour the attempt's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, _remaining(timeout), local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(path, _remaining(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def deadline_transport(limits: httpx.Limits, proxy: str | None = None) -> httpx.HTTPTransport:
    """httpx's own transport (through ``proxy``, if one), its sockets bound by each attempt's deadline."""
    try:
        transport = httpx.HTTPTransport(limits=limits, proxy=proxy)
    except ImportError:  # a socks:// proxy without httpx's `socks` extra
        raise ConfigError(
            f"the proxy `{proxy}` the environment names needs a package that is not installed",
            hint="install `httpx[socks]`, or unset the proxy variable (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY)",
        ) from None
    pool = transport._pool
    pool._network_backend = _DeadlineBackend(pool._network_backend)
    return transport


def proxy_mounts(limits: httpx.Limits) -> dict[str, httpx.BaseTransport | None]:
    """The environment's proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, minus ``NO_PROXY``) as httpx mounts.

    httpx reads them only when it makes its own transport; ours bounds every socket by the
    attempt's deadline, so the proxies are mounted here, each through a deadline transport too
    (a proxy trickling its reply is cut like a server doing so). ``None``: no proxy for that host.
    """
    found = urllib.request.getproxies()
    bypass = [host.strip() for host in found.get("no", "").split(",") if host.strip()]
    if "*" in bypass:
        return {}
    mounts: dict[str, httpx.BaseTransport | None] = {}
    for scheme in ("http", "https", "all"):
        url = found.get(scheme)
        if url:
            mounts[f"{scheme}://"] = deadline_transport(limits, url if "://" in url else f"http://{url}")
    if mounts:
        for host in bypass:  # as curl reads NO_PROXY, and httpx does
            if "://" in host:
                mounts[host] = None
            elif host.lower() == "localhost" or host.replace(".", "").isdigit():
                mounts[f"all://{host}"] = None
            elif ":" in host:
                mounts[f"all://[{host.strip('[]')}]"] = None
            else:
                mounts[f"all://*{host}"] = None
    return mounts


def _same_origin(first: httpx.URL, second: httpx.URL) -> bool:
    return (first.scheme, first.host, first.port) == (second.scheme, second.host, second.port)


class RedirectRefused(Exception):
    """A redirect the options say not to follow."""


# --- calling --------------------------------------------------------------------------


class RetryableStatus(Exception):
    """A reply worth trying again (408, 429, 5xx); carries the reply and its ``Retry-After`` in seconds."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after_seconds(response.headers)


def _retryable(error: BaseException) -> bool:
    return isinstance(error, (RetryableStatus, httpx.TransportError))


class HttpCaller:
    """One httpx client and a bounded pool of threads making calls with retries."""

    def __init__(self, options: HttpOptions, max_result_chars: int) -> None:
        self.options = options
        self.max_chars = max_result_chars
        limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
        self.client = httpx.Client(
            timeout=httpx.Timeout(options.timeout),
            limits=limits,
            transport=options.transport or deadline_transport(limits),
            mounts=None if options.transport else proxy_mounts(limits),
            follow_redirects=False,  # followed here, so that another origin never gets the environment's values
            headers={"User-Agent": f"apigen/{__version__}", "Accept-Encoding": ACCEPT_ENCODING},
        )
        self._threads = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="apigen-http")
        self.policy = RetryPolicy(
            attempts=options.retries + 1,
            max_seconds=options.total_seconds,
            statuses=frozenset({408, 429}),
            retry_after_cap=options.retry_after_cap,
            backoff=options.wait or exponential_backoff(cap=8.0),
        )

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    def submit(self, request: HttpRequest, pending: Pending, notify: Callable[[], None]) -> None:
        """Make the call on a pool thread; set ``pending.outcome`` and call ``notify`` when done."""

        def done(future: Future[Outcome]) -> None:
            if future.cancelled():
                pending.outcome = Outcome.failure("http_error", "Cancelled", "the run ended before the call was made")
            else:
                error = future.exception()
                if error is not None:
                    pending.outcome = Outcome.failure("http_error", type(error).__name__, str(error))
                else:
                    pending.outcome = future.result()
            notify()

        self._threads.submit(self.call, request).add_done_callback(done)

    def wait_before_retry(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.policy.wait_seconds(state, error.retry_after if isinstance(error, RetryableStatus) else None)

    def call(self, request: HttpRequest) -> Outcome:
        """Make one call, with retries; never raises for what the server or the network did.

        Environment values the request carried are cut out of what comes back (a server
        may echo a header), so they never reach a row.
        """
        return self._call(request).redacted(request.secrets)

    def _call(self, request: HttpRequest) -> Outcome:
        attempts = 0
        timeout = request.timeout or self.options.timeout
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.policy.attempts) | stop_after_delay(self.policy.max_seconds),
            wait=self.wait_before_retry,
            reraise=True,
        )
        where = f"{request.method} {request.shown_url}"
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    response = self._attempt(request, timeout)
                    status = response.status_code
                    if self.policy.retryable_status(status):
                        raise RetryableStatus(response)
        except RetryableStatus as error:
            return _status_failure(where, error.response, attempts)
        except ReplyTooLarge as error:
            return Outcome.failure(TOO_LARGE, "ReplyTooLarge", f"{where}: {error}")
        except UnsupportedEncoding as error:
            return Outcome.failure("http_error", "UnsupportedEncoding", f"{where}: {error}")
        except RedirectRefused as error:
            return Outcome.failure("http_error", "RedirectRefused", f"{where}: {error}")
        except httpx.TimeoutException:
            tries = f" ({attempts} attempts)" if attempts > 1 else ""
            return Outcome.failure("timeout", "Timeout", f"{where}: no reply within {timeout:g} s{tries}")
        except httpx.TransportError as error:
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            return Outcome.failure("http_error", type(error).__name__, f"{where}: {error or type(error).__name__}{tries}")
        if not 200 <= response.status_code < 300:
            return _status_failure(where, response, attempts)
        return recorded(_body(response), self.max_chars, response.content)

    def _attempt(self, request: HttpRequest, timeout: float) -> httpx.Response:
        """One attempt, redirects included, within one deadline; the body read with its size capped."""
        _deadlines.value = time.monotonic() + timeout
        try:
            url = httpx.URL(request.url)
            if request.params:  # merged into the URL's own query string, which is kept
                url = url.copy_merge_params(request.params)
            method, headers, has_body = request.method, dict(request.headers), request.has_body
            for _hop in range(_MAX_REDIRECTS + 1):
                with self.client.stream(
                    method, url, headers=headers, json=request.body if has_body else None, timeout=timeout
                ) as response:
                    location = response.headers.get("Location") if response.is_redirect else None
                    if location is None or self.options.redirects == "none":
                        return self._read(response)
                target = url.join(location)
                if not _same_origin(url, target):
                    if self.options.redirects == "same-origin":
                        raise RedirectRefused(f"redirected to another origin ({target.scheme}://{target.host}), not followed")
                    # Every header that took a value from the environment stays behind.
                    headers = {name: value for name, value in headers.items() if not _holds_secret(value, request.secrets)}
                if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                    method, has_body = "GET", False
                url = target
            raise RedirectRefused(f"more than {_MAX_REDIRECTS} redirects")
        finally:
            _deadlines.value = None

    def _read(self, response: httpx.Response) -> httpx.Response:
        limit = self.options.max_reply_bytes
        encoding = response.headers.get("Content-Encoding")
        if declared_too_large(response.headers.get("Content-Length"), encoding, limit):
            raise ReplyTooLarge(limit)
        collected = BoundedBody(encoding, limit)
        for chunk in response.iter_raw():
            collected.feed(chunk)
        headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _BODY_HEADERS]
        return httpx.Response(response.status_code, headers=headers, content=collected.content(), request=response.request)


def _holds_secret(value: str, secrets: tuple[str, ...]) -> bool:
    return any(secret and secret in value for secret in secrets)


def _body(response: httpx.Response) -> Any:
    content = response.content
    if not content:
        return None
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return response.text


def _status_failure(where: str, response: httpx.Response, attempts: int) -> Outcome:
    excerpt = response.text.strip().replace("\n", " ")
    if len(excerpt) > _BODY_EXCERPT:
        excerpt = excerpt[:_BODY_EXCERPT] + "…"
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    message = f"{where} returned {response.status_code} {response.reason_phrase}{tries}"
    if excerpt:
        message += f": {excerpt}"
    return Outcome.failure("http_error", f"HTTP {response.status_code}", message)
