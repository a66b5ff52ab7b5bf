"""The worker process that runs a user's Python functions; only ``executor.py`` starts it.

The parent runs ``python .../apigen_cli/execution/worker.py`` (by path, not ``-m apigen_cli.execution.worker``,
which would import the whole package first: this file needs only the standard
library and orjson, so a fresh worker is ready in a few tens of milliseconds, which
is what a timeout or a crash costs on top of the call itself). The few apigen modules
it shares with the package (``environments/``, ``descendants``) are as pure, and come
in through ``_load_pure``.

Protocol: frames of a 4-byte big-endian length and an orjson payload, over the
worker's original stdin/stdout, which are moved to private descriptors before any
user code runs. fd 0 then reads ``/dev/null`` and fd 1 goes where fd 2 goes (the
parent captures it), so nothing a function prints can reach the parent's stdout
or corrupt the protocol.

- parent → worker, once: ``{"functions": PATH, "memory_mb": N|null, "max_result_chars": N}``;
- worker → parent: ``{"ready": true, "functions": [...], "ambiguous": {...}, "refused": {...}}``,
  or ``{"ready": false, "error": {"type", "message", "where"}}`` when the library cannot load;
- parent → worker: ``[[call_id, name, arguments], ...]``, a batch of calls, where an item
  may instead be a session: ``{"session": call_id, "environment": {...}, "calls": [[name, arguments], ...]}``
  (with ``"defaults": true``, the classes are made with no arguments and nothing loaded);
- worker → parent, one frame per call as soon as it ends, in order:
  ``[call_id, null, result, truncated, seconds]`` or ``[call_id, code, {"type", "message"}, false, seconds]``;
- for a session, one frame per step (``run_session``), all with its ``call_id``:
  ``[id, "start", problem|null, initial_state]``, then per call
  ``[id, "call", code|null, result|{"type", "message"}, truncated, seconds, changed, changes, omitted]``,
  then ``[id, "end", problem|null, final_state, digest, seconds]``; or, when the session's
  process died or failed, ``[id, "ended", code, error_type, message, seconds]``. A problem is
  ``[code, message]``; a start with a problem is the session's last frame.
- with ``"live_sessions": FD`` in its setup, the worker takes no batches: it forks a live
  session for each connection passed over the Unix socket FD (``serve_live_sessions``).

Results are written one by one so the parent knows which call is running and
since when: that is how a per-call timeout works over a pipelined batch.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    # Run by path, Python put this file's folder first on sys.path, where apigen's own
    # modules (`rest`, `executor`) would be importable by the user's code under plain
    # names. Put the working folder there instead, as `python -m` does.
    import os as _os

    if sys.path and _os.path.abspath(sys.path[0] or ".") == _os.path.dirname(_os.path.abspath(__file__)):
        sys.path[0] = _os.getcwd()

import contextlib
import dataclasses
import datetime
import decimal
import enum
import fractions
import gc
import importlib
import importlib.util
import inspect
import json
import math
import os
import pkgutil
import signal
import struct
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path, PurePath
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import orjson


def _load_pure(*names: str) -> list[ModuleType]:
    """apigen modules that need only the standard library and orjson, imported without the package.

    They come in under a private package name whose folder is apigen's own, so that
    their relative imports work while ``apigen_cli/__init__`` (the whole command
    line, typer, httpx...) never runs in a worker.
    """
    root = "_apigen_pure"
    if root not in sys.modules:
        package = ModuleType(root)
        package.__path__ = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        sys.modules[root] = package
    return [importlib.import_module(f"{root}.{name}") for name in names]


if TYPE_CHECKING or __package__:  # imported as apigen_cli.execution.worker: by the pool, by tests
    from .. import problems
    from ..environments import binding, session, state
    from . import descendants, isolation
else:  # run by path: the worker
    problems, binding, session, state, descendants, isolation = _load_pure(
        "problems",
        "environments.binding",
        "environments.session",
        "environments.state",
        "execution.descendants",
        "execution.isolation",
    )

exception_text, type_name, safe_text = binding.exception_text, binding.type_name, binding.safe_text

_HEADER = struct.Struct(">I")


# --- frames ---------------------------------------------------------------------------


def encode_frame(value: Any) -> bytes:
    """One protocol frame, valid UTF-8: a lone surrogate (a file name that is not UTF-8) becomes U+FFFD.

    Integers wider than 64 bits go through the stdlib encoder.
    """
    try:
        data = orjson.dumps(value)
    except TypeError:
        value = problems.valid_text(value)  # orjson refuses lone surrogates, and so would every reader of the row
        try:
            data = orjson.dumps(value)
        except TypeError:
            data = json.dumps(value, separators=(",", ":"), default=repr).encode()
    return _HEADER.pack(len(data)) + data


def decode_payload(data: bytes) -> Any:
    """A frame's value; what orjson refuses (a wide integer, a lone surrogate's escape) is read by the stdlib, made valid UTF-8."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return problems.valid_text(json.loads(data))


def take_frame(buffer: bytearray) -> bytes | None:
    """The payload of the first frame in ``buffer``, taken out of it; ``None`` until that frame has come whole."""
    if len(buffer) < _HEADER.size:
        return None
    end = _HEADER.size + int.from_bytes(buffer[: _HEADER.size], "big")
    if len(buffer) < end:
        return None
    payload = bytes(buffer[_HEADER.size : end])
    del buffer[:end]
    return payload


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if data is None or len(data) < size:
        return None
    return data


def read_frame(stream: BinaryIO) -> Any:
    """The next frame's value, or ``None`` at end of input (the parent closed the pipe)."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    payload = _read_exactly(stream, size)
    return None if payload is None else decode_payload(payload)


# --- results as JSON values -----------------------------------------------------------

_MAX_DEPTH = 64


def to_json(value: Any, max_items: int = 100_000, _depth: int = 0) -> Any:
    """A JSON value for whatever a function returned.

    Tuples, sets and generators become lists (sets sorted, so output is stable);
    dates and times ISO 8601 strings; timedeltas seconds; Decimals and Fractions
    their exact string; enums their value; dataclasses, named tuples and pydantic
    models objects; bytes UTF-8 text (base64 when not UTF-8); NaN and infinities
    the strings JavaScript uses; numpy-like values through ``tolist()``. Anything
    else becomes its ``repr``. Containers are cut at ``max_items`` entries.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else _float_text(value)
    if _depth >= _MAX_DEPTH:
        return repr(value)
    depth = _depth + 1
    if kind is list or kind is tuple:
        return [to_json(item, max_items, depth) for item in value[:max_items]]
    if kind is dict:
        return {_key(key): to_json(item, max_items, depth) for key, item in _first(value.items(), max_items)}
    if isinstance(value, enum.Enum):
        return to_json(value.value, max_items, depth)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return to_json(float(value), max_items, depth)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, fractions.Fraction, uuid.UUID, PurePath, complex)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_text(bytes(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_json(getattr(value, field.name), max_items, depth) for field in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a named tuple
        return to_json(dict(value._asdict()), max_items, depth)
    if isinstance(value, Mapping):
        return {_key(key): to_json(item, max_items, depth) for key, item in _first(value.items(), max_items)}
    if isinstance(value, AbstractSet):
        return _sorted([to_json(item, max_items, depth) for item in _first(value, max_items)])
    if isinstance(value, (Sequence, Iterator)):  # lists, tuples, deques, ranges, generators
        return [to_json(item, max_items, depth) for item in _first(value, max_items)]
    converted = _by_method(value)
    if converted is not _NO_METHOD:
        return to_json(converted, max_items, depth)
    return repr(value)


_NO_METHOD = object()


def _by_method(value: Any) -> Any:
    """pydantic's ``model_dump``, numpy's and pandas' ``tolist``: known ways out to plain data."""
    for method in ("model_dump", "tolist"):
        function = getattr(value, method, None)
        if callable(function) and not isinstance(value, type):
            try:
                return function()
            except Exception:
                return _NO_METHOD
    return _NO_METHOD


def _first(items: Any, limit: int) -> Iterator[Any]:
    for count, item in enumerate(items):
        if count >= limit:
            return
        yield item


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    if isinstance(key, enum.Enum):
        return _key(key.value)
    return str(key)


def _bytes_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        import base64

        return "base64:" + base64.b64encode(data).decode("ascii")


def _sorted(items: list[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda item: orjson.dumps(item, default=repr))


def shorten(value: Any, max_chars: int) -> tuple[Any, bool]:
    """Cut a JSON value to about ``max_chars`` characters of JSON; says whether it was cut.

    A long string keeps its first characters; any other value too long becomes the
    start of its JSON text (a string), marked so that a reader sees it was cut.
    """
    if isinstance(value, str):
        if len(value) <= max_chars:
            return value, False
        return value[:max_chars] + f"… [truncated, {len(value)} characters]", True
    if value is None or isinstance(value, (bool, int, float)):
        return value, False
    text = encode_frame(value)[_HEADER.size :].decode("utf-8")
    if len(text) <= max_chars:
        return value, False
    return text[:max_chars] + f"… [truncated, {len(text)} characters of JSON]", True


# --- the library ----------------------------------------------------------------------


class LoadError(Exception):
    """The library cannot be loaded; ``where`` names the file (and line) at fault."""

    def __init__(self, kind: str, message: str, where: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.where = where


class Functions:
    """The functions and classes a library defines, under every name a call or a row may use.

    A function is eligible when it is public (no leading ``_``), callable, not a
    class, and defined in a module of the library (its ``__module__``): what a
    module merely imports (``from os import system``) never runs. Each function
    answers to ``module.name`` (relative to the library, and fully qualified) and
    to its bare ``name`` when no other library function has that name. Public
    classes defined in the library are named the same way, for environments.
    """

    def __init__(self) -> None:
        self.functions: dict[str, Callable[..., Any]] = {}
        self.ambiguous: dict[str, list[str]] = {}
        self.refused: dict[str, str] = {}
        self._modules: set[str] = set()
        self._bare: dict[str, dict[int, str]] = {}
        self._imported: list[tuple[list[str], str, Any]] = []
        self._bindings: dict[str, binding.Binding] = {}
        self.classes: dict[str, type] = {}
        self._bare_classes: dict[str, dict[int, type]] = {}

    def add_module(self, relative: str, module: ModuleType) -> None:
        self._modules.add(module.__name__)
        for attribute, value in list(vars(module).items()):
            if attribute.startswith("_"):
                continue
            qualified = f"{relative}.{attribute}" if relative else attribute
            names = sorted({qualified, f"{module.__name__}.{attribute}"})
            reason = _refusal(value, module)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for name in names:
                    self.classes[name] = value
                self._bare_classes.setdefault(attribute, {})[id(value)] = value
            if reason is None:
                for name in names:
                    self.functions[name] = value
                self._bare.setdefault(attribute, {})[id(value)] = qualified
                continue
            if reason.startswith("is imported"):
                self._imported.append((names, attribute, value))
            for name in names:
                self.refused.setdefault(name, f"`{name}` {reason}")
            self.refused.setdefault(attribute, f"`{attribute}` in `{relative or module.__name__}` {reason}")

    def finish(self) -> Functions:
        """Name functions by their bare names, and let a package re-export its own functions."""
        eligible = {id(function) for function in self.functions.values()}
        for names, _attribute, value in self._imported:
            if id(value) in eligible and getattr(value, "__module__", None) in self._modules:
                for name in names:
                    self.functions.setdefault(name, value)
                    self.refused.pop(name, None)
        for attribute, owners in self._bare.items():
            if len(owners) == 1:
                self.functions.setdefault(attribute, self.functions[next(iter(owners.values()))])
            elif attribute not in self.functions:
                self.ambiguous[attribute] = sorted(owners.values())
        for attribute, classes in self._bare_classes.items():
            if len(classes) == 1:
                self.classes.setdefault(attribute, next(iter(classes.values())))
        return self

    def binding(self, name: str) -> binding.Binding:
        found = self._bindings.get(name)
        if found is None:
            found = self._bindings[name] = binding.Binding(self.functions[name])
        return found

    def missing(self, name: Any) -> str:
        return f"`{name}` is not in the library"


def _refusal(value: Any, module: ModuleType) -> str | None:
    """Why a public name of a library module may not be called, or ``None`` when it may."""
    if isinstance(value, ModuleType):
        return f"is the module `{value.__name__}`, not a function"
    if isinstance(value, type):
        return "is a class, not a function"
    if not callable(value):
        return "is not a function"
    origin = getattr(value, "__module__", None)
    if origin != module.__name__:
        where = "Python's builtins" if origin in (None, "builtins") else f"`{origin}`"
        return f"is imported from {where}, not defined in the library"
    try:
        target = inspect.unwrap(value)
    except ValueError:
        target = value
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        return "is not a function"
    return None


def load_functions(spec: str) -> tuple[Functions, str]:
    """Import the functions named by ``spec``: a ``.py`` file, a folder of them, or a module name."""
    library = Functions()
    path = Path(spec)
    if path.is_file():
        if path.suffix != ".py":
            raise LoadError("NotPython", f"`{spec}` is not a .py file")
        _add_folder_to_path(path.parent)
        library.add_module(path.stem, _import_file(path))
        return library.finish(), str(path)
    if path.is_dir():
        if (path / "__init__.py").is_file():
            _add_folder_to_path(path.resolve().parent)
            _add_package(library, _import_module(path.resolve().name, str(path / "__init__.py")))
            return library.finish(), str(path)
        _add_folder_to_path(path)
        files = sorted(item for item in path.glob("*.py") if not item.name.startswith("_"))
        if not files:
            raise LoadError("EmptyLibrary", f"the folder `{spec}` holds no .py file")
        for item in files:
            library.add_module(item.stem, _import_file(item))
        return library.finish(), str(path)
    if looks_like_module(spec):
        _add_package(library, _import_module(spec, spec))
        return library.finish(), spec
    raise LoadError("NotFound", f"`{spec}` is neither a file, a folder nor an importable module")


def looks_like_module(spec: str) -> bool:
    """``pkg.tools`` names a module; ``tools.py`` or ``lib/tools`` names a path."""
    return not spec.endswith(".py") and all(part.isidentifier() for part in spec.split("."))


def _add_folder_to_path(folder: Path) -> None:
    """Let the library's modules import one another, as they do when run as scripts."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _import_file(path: Path) -> ModuleType:
    name = path.stem
    if not name.isidentifier():
        raise LoadError("BadModuleName", f"`{path}` cannot be imported: `{name}` is not a valid module name", str(path))
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    loaded = sys.modules.get(name)
    if loaded is not None and _same_file(getattr(loaded, "__file__", None), path):
        return loaded  # another module of the library imported it first
    if name in stdlib or loaded is not None:
        raise LoadError(
            "ShadowsModule",
            f"`{path}` has the name of the module `{name}` (standard library or already imported); rename the file",
            str(path),
        )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError("ImportError", f"`{path}` cannot be imported", str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        sys.modules.pop(name, None)
        raise _load_error(error, str(path)) from None
    return module


def _same_file(first: str | None, second: Path) -> bool:
    try:
        return first is not None and os.path.samefile(first, second)
    except OSError:
        return False


def _import_module(name: str, shown: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except BaseException as error:
        raise _load_error(error, shown) from None


def _add_package(library: Functions, root: ModuleType) -> None:
    library.add_module("", root)
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=root.__name__ + "."):
        relative = info.name[len(root.__name__) + 1 :]
        if any(part.startswith("_") for part in relative.split(".")):
            continue
        module = _import_module(info.name, info.name)
        library.add_module(relative, module)


def _load_error(error: BaseException, shown: str) -> LoadError:
    """Name the exception and the line of the library where it happened."""
    where = shown
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{error.filename}, line {error.lineno}"
    else:
        frames = traceback.extract_tb(error.__traceback__)
        user_frames = [frame for frame in frames if "importlib" not in frame.filename and frame.filename != __file__]
        if user_frames:
            last = user_frames[-1]
            where = f"{last.filename}, line {last.lineno}"
    if isinstance(error, SystemExit):
        message = f"the library called sys.exit({error.code!r}) while being imported"
    elif isinstance(error, SyntaxError):
        message = f"{type(error).__name__}: {error.msg}"
    else:
        message = f"{type(error).__name__}: {safe_text(error)}" if safe_text(error) else type(error).__name__
    return LoadError(type_name(error), message, where)


# --- running calls --------------------------------------------------------------------


class Tools(Protocol):
    """What a runner calls: the library's functions, or the tools of one session."""

    def binding(self, name: str) -> binding.Binding: ...

    def missing(self, name: Any) -> str: ...


class Runner:
    """Runs one call at a time and turns what happened into a protocol frame."""

    def __init__(self, tools: Tools, max_result_chars: int, memory_limited: bool) -> None:
        self.tools = tools
        self.max_chars = max_result_chars
        self.memory_limited = memory_limited

    def run(self, call_id: Any, name: Any, arguments: Any) -> list[Any]:
        started = time.perf_counter()
        try:
            bound = self.tools.binding(name)
        except (KeyError, TypeError):
            return _failure(call_id, "no_implementation", "NoImplementation", self.tools.missing(name))
        if not isinstance(arguments, dict):
            return _failure(call_id, "invalid_arguments", "TypeError", "arguments are not an object")
        problem = bound.problem(arguments)
        if problem is not None:
            return _failure(call_id, "invalid_arguments", "TypeError", problem)
        try:
            value, truncated = shorten(to_json(bound.call(arguments), self.max_chars), self.max_chars)
        except MemoryError:
            code = "memory_limit" if self.memory_limited else "exception"
            message = "the call ran out of memory (MemoryError)"
            if self.memory_limited:
                message = "the call went over the memory limit (MemoryError); raise `--memory-mb` if it is legitimate"
            return [call_id, code, {"type": "MemoryError", "message": message}, False, time.perf_counter() - started]
        except SystemExit as error:
            message = f"the function called sys.exit({error.code!r})"
            return [call_id, "crashed", {"type": "SystemExit", "message": message}, False, time.perf_counter() - started]
        except KeyboardInterrupt:
            message = "the function raised KeyboardInterrupt"
            return [call_id, "crashed", {"type": "KeyboardInterrupt", "message": message}, False, time.perf_counter() - started]
        except BaseException as error:  # the call's own failure, whatever it is
            return [
                call_id,
                "exception",
                {"type": type_name(error), "message": exception_text(error)},
                False,
                time.perf_counter() - started,
            ]
        return [call_id, None, value, truncated, time.perf_counter() - started]


def _failure(call_id: Any, code: str, kind: str, message: str, seconds: float = 0.0) -> list[Any]:
    return [call_id, code, {"type": kind, "message": message}, False, seconds]


# --- sessions -------------------------------------------------------------------------

#: A call's changes are sent at most this many, each value cut to this many characters of JSON.
CHANGES_PER_CALL = 20
CHANGE_VALUE_CHARS = 400
_MORE, _LAST = b"\0", b"\1"  # the tag before each frame from a session's process: is it the last one?


def run_session(item: dict[str, Any], library: Functions, runner: Runner, replies: int, inherited: Sequence[int] = ()) -> None:
    """One session in a process forked for it: fresh instances, its calls in order, its states.

    The fork is what keeps sessions apart: a class attribute, a module global, a cache
    that one session changes dies with its process, and the next session forks from
    the worker as the library left it at import. Forking costs about a millisecond,
    where a fresh interpreter would cost tens and the library's import again.

    The session's process writes its frames to a pipe of its own; this process passes
    each complete frame on, so a session that dies mid-frame cannot corrupt the
    protocol, and says how it ended when it ends without its last frame. ``inherited``:
    descriptors the session's process must not keep (the worker's protocol).
    """
    session_id = item.get("session")
    started = time.perf_counter()
    _flush_output()
    gc.freeze()  # what the worker holds stays shared with the fork, not copied when its GC runs
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as error:
        os.close(read_end)
        os.close(write_end)
        message = f"could not start the session's process: {error}"
        _write_all(replies, encode_frame([session_id, "ended", "crashed", "OSError", message, 0.0]))
        return
    if pid == 0:  # the session's process
        os.close(read_end)
        for descriptor in inherited:
            os.close(descriptor)
        _SessionRun(item, library, runner, write_end).run_to_end()
    os.close(write_end)
    finished = _relay(read_end, replies)
    os.close(read_end)
    _pid, status = os.waitpid(pid, 0)
    descendants.end_strays()  # whatever the session's process left behind, re-parented to us
    if not finished:
        code = os.waitstatus_to_exitcode(status)
        frame = [session_id, "ended", "crashed", exit_type(code), exit_text(code), time.perf_counter() - started]
        _write_all(replies, encode_frame(frame))


def _relay(source: int, replies: int) -> bool:
    """Pass on each complete frame from ``source``; whether the last one came."""
    buffer = bytearray()
    while True:
        data = os.read(source, 1 << 16)
        if not data:
            return False
        buffer += data
        while len(buffer) > _HEADER.size:
            end = 1 + _HEADER.size + int.from_bytes(buffer[1 : 1 + _HEADER.size], "big")
            if len(buffer) < end:
                break
            _write_all(replies, bytes(buffer[1:end]))
            if buffer[0] == _LAST[0]:
                return True
            del buffer[:end]


class _SessionRun:
    """In the session's process: make the instances, run the calls, send each step's frame."""

    def __init__(self, item: dict[str, Any], library: Functions, runner: Runner, out: int, live: int | None = None) -> None:
        self.item = item
        self.session_id = item.get("session")
        self.library = library
        self.runner = runner
        self.out = out
        self.live = live
        self.started = time.perf_counter()
        self.calls = 0

    def send(self, frame: list[Any], last: bool = False) -> None:
        if self.live is not None:  # straight to the parent, which reads the end of the connection as the process's
            _write_all(self.out, encode_frame(frame))
        else:  # to ``_relay``, which must know the last frame
            _write_all(self.out, (_LAST if last else _MORE) + encode_frame(frame))

    def run_to_end(self) -> None:
        """Run the session and end this process, whatever happens: it must never return into the worker's loop."""
        status = 0
        try:
            _die_with_parent()
            descendants.become_subreaper()
            self.run()
        except BaseException as error:  # apigen's own failure here, or memory: the session ends, saying why
            status = 1
            with contextlib.suppress(BaseException):
                code = "memory_limit" if isinstance(error, MemoryError) else "crashed"
                message = f"the session failed: {type_name(error)}: {exception_text(error)}"
                self.send([self.session_id, "ended", code, type_name(error), message, self.elapsed()], last=True)
        finally:
            _flush_output()
            os._exit(status)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def run(self) -> None:
        if self.live is not None:
            requests = os.fdopen(self.live, "rb")
            opening = read_frame(requests)  # a live session's first frame: its environment
            if not isinstance(opening, dict):
                return
            self.item = {**opening, "session": self.session_id}
            if self.begin():
                self.serve(requests)
            return
        if not self.begin():
            return
        for name, arguments in self.item.get("calls") or ():
            if not self.call(name, arguments):
                return
        self.finish()

    def serve(self, requests: BinaryIO) -> None:
        """A live session's calls, as they come: ``{"calls": [[name, arguments], ...]}``, until ``{"end": true}`` (or the
        end of input: the parent let the session go, and its state is not wanted). Its first frame was
        ``{"environment": ..., "defaults": bool}``."""
        while True:
            request = read_frame(requests)
            if not isinstance(request, dict):
                return
            if request.get("end"):
                self.finish()
                return
            for name, arguments in request.get("calls") or ():
                if not self.call(name, arguments):
                    return

    def begin(self) -> bool:
        """Make the instances and send the initial state; whether the session could start."""
        try:
            self.environment = session.Session(
                self.library.classes, self.item.get("environment"), copy_config=False, defaults=self.item.get("defaults") is True
            )
            self.before = self.environment.state_again()
        except problems.RowProblem as error:
            self.send([self.session_id, "start", list(error.problem), None], last=True)
            return False
        self.send([self.session_id, "start", None, self.before])
        self.call_runner = Runner(self.environment, self.runner.max_chars, self.runner.memory_limited)
        self.before_json = state.canonical_json(self.before)
        return True

    def call(self, name: Any, arguments: Any) -> bool:
        """One call and what it changed; whether the session goes on (its state could be read after it)."""
        sid = self.session_id
        _call_id, code, payload, truncated, seconds = self.call_runner.run(self.calls, name, arguments)
        self.calls += 1
        descendants.end_strays()
        try:
            after = self.environment.state_again()
        except problems.RowProblem as error:
            self.send([sid, "call", code, payload, truncated, seconds, None, [], 0])
            self.send([sid, "end", list(error.problem), None, None, self.elapsed()], last=True)
            return False
        if after is self.before:  # the same plain data as the read before: unchanged, without a walk or a diff
            self.send([sid, "call", code, payload, truncated, seconds, False, [], 0])
            return True
        after_json = state.canonical_json(after)
        changed = after_json != self.before_json
        changes = state.diff_canonical(self.before, after, CHANGES_PER_CALL) if changed else state.Diff()
        shown = [[change.path, change.kind, _cut(change.before), _cut(change.after)] for change in changes]
        self.send([sid, "call", code, payload, truncated, seconds, changed, shown, changes.omitted])
        self.before, self.before_json = after, after_json
        return True

    def finish(self) -> None:
        final_digest = state.json_digest(self.before_json)  # its canonical JSON is at hand: no second walk
        self.send([self.session_id, "end", None, self.before, final_digest, self.elapsed()], last=True)


def serve_live_sessions(control: int, library: Functions, runner: Runner, inherited: Sequence[int]) -> int:
    """The live sessions' fork server: for each connection the parent hands over, the session's process forked for it.

    A live session (``live.py``) lasts a whole conversation: its instances are made once, and the
    calls come one step at a time over the connection, a socket whose other end the parent keeps.
    The session's process says its pid (the parent kills its tree on a timeout), then runs the
    session as ``run_session`` does a worker's, reading the calls from the connection and writing
    its frames to it. Nothing waits on a parked session: this process only forks, and reaps each
    session's process as it exits (so that the time it took counts in apigen's own, as a pool
    worker's sessions do), telling the parent how it ended on the control socket:
    ``[serial, exit code]``, ``serial`` counting the connections from 1 (``null`` for a process
    that could not be forked). A parent that reads the end of a session without its last frame
    waits for that report to say why. No keeper stands between: a fork less per session.
    """
    import socket

    server = socket.socket(fileno=control)
    sessions: dict[int, int] = {}  # pid -> serial, of the sessions' processes still running
    child_signal = {signal.SIGCHLD}

    def report(serial: int, code: int | None) -> None:
        with contextlib.suppress(OSError):  # the parent is gone: nobody is waiting
            server.sendall(encode_frame([serial, code]))

    def reap(_signum: int, _frame: Any) -> None:
        ended: list[tuple[int, int]] = []
        with contextlib.suppress(ChildProcessError):
            while True:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if not pid:
                    break
                if pid in sessions:
                    ended.append((sessions.pop(pid), os.waitstatus_to_exitcode(status)))
        if any(code != 0 for _serial, code in ended):
            _end_strays_beside(sessions)  # a session that died mid-call may have left what the call started
        for serial, code in ended:
            report(serial, code)

    signal.signal(signal.SIGCHLD, reap)
    serial = 0
    while True:
        try:
            message, connections, _flags, _address = socket.recv_fds(server, 64, 16)
        except OSError:
            return 1
        if not message and not connections:
            return 0  # the parent closed its end: the run is over
        for connection in connections:
            serial += 1
            _flush_output()
            gc.freeze()  # what the server holds stays shared with the fork, not copied when its GC runs
            signal.pthread_sigmask(signal.SIG_BLOCK, child_signal)  # reaped only once it is known as a session
            try:
                pid = os.fork()
            except OSError:
                pid = -1
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the session's process reaps what its calls leave
                signal.pthread_sigmask(signal.SIG_UNBLOCK, child_signal)
                server.close()
                for descriptor in inherited:
                    os.close(descriptor)
                _run_live_session(connection, library, runner)
            if pid > 0:
                sessions[pid] = serial
            signal.pthread_sigmask(signal.SIG_UNBLOCK, child_signal)
            os.close(connection)  # the session's process holds it; its end is the end of the session
            if pid < 0:
                report(serial, None)


def _end_strays_beside(sessions: Mapping[int, int]) -> None:
    """In the fork server: end every child that is not a session's process (what a dead session left, re-parented here)."""
    for pid in descendants.children(os.getpid()):
        if pid not in sessions:
            descendants.kill_tree(pid)


def _run_live_session(connection: int, library: Functions, runner: Runner) -> None:
    """In the session's process: say the pid, run the session, end this process."""
    with contextlib.suppress(BaseException):
        _write_all(connection, encode_frame([os.getpid()]))
    _SessionRun({"session": 0}, library, runner, connection, live=connection).run_to_end()


def _cut(value: Any) -> Any:
    return shorten(value, CHANGE_VALUE_CHARS)[0]


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def exit_text(status: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if status is None:
        return "it closed its pipes"
    if status < 0:
        try:
            name = signal.Signals(-status).name
            description = signal.strsignal(-status) or name
        except (ValueError, AttributeError):
            return f"killed by signal {-status}"
        return f"killed by {name} ({description.lower()})"
    return f"the process exited with status {status} (os._exit, or native code ending the process)"


def exit_type(status: int | None) -> str:
    if status is not None and status < 0:
        try:
            return signal.Signals(-status).name
        except ValueError:
            return f"signal {-status}"
    return "ProcessExit"


# --- the process ----------------------------------------------------------------------


def _isolate_descriptors() -> tuple[BinaryIO, int]:
    """Move the protocol off fds 0/1; return the request reader and the reply descriptor."""
    protocol_in = os.dup(0)
    protocol_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # prints land in the stream the parent captures, never in the protocol
    sys.stdin = open(os.devnull)  # noqa: SIM115 (lives as long as the process)
    sys.stdout = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
    return os.fdopen(protocol_in, "rb", buffering=1 << 16), protocol_out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker if the parent dies without closing it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def _no_core_dumps() -> None:
    """A function that segfaults should cost a row, not leave a core file in the working folder."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ImportError, ValueError, OSError):
        pass


def _limit_memory(memory_mb: Any) -> bool:
    if not isinstance(memory_mb, int) or memory_mb <= 0:
        return False
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        return False
    return True


def _refuse(replies: int, kind: str, message: str, where: str) -> int:
    _write_all(replies, encode_frame({"ready": False, "error": {"type": kind, "message": message, "where": where}}))
    return 1


def main() -> int:
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    if os.getppid() != parent:
        return 1
    import faulthandler

    faulthandler.enable()  # a segfault leaves a traceback in the captured stderr
    requests, replies = _isolate_descriptors()
    setup = read_frame(requests)
    if not isinstance(setup, dict):
        return 1
    _no_core_dumps()
    isolation.give_up_reading_others()  # as root, user code could otherwise read apigen's memory and environment
    descendants.become_subreaper()  # what a call double-forks stays below us, to be ended after it
    memory_limited = _limit_memory(setup.get("memory_mb"))
    try:
        library, _shown = load_functions(str(setup["functions"]))
    except LoadError as error:
        return _refuse(replies, error.kind, error.message, error.where)
    except BaseException as error:  # anything the import machinery itself raised
        return _refuse(replies, type_name(error), str(error), "")
    if not library.functions and not library.classes:
        return _refuse(replies, "EmptyLibrary", f"`{setup['functions']}` defines no public function or class", "")
    ready = {
        "ready": True,
        "functions": sorted(library.functions),
        "classes": sorted(library.classes),
        "ambiguous": library.ambiguous,
        "refused": library.refused,
        "memory_limited": memory_limited,
    }
    _write_all(replies, encode_frame(ready))
    runner = Runner(library, int(setup.get("max_result_chars") or 4000), memory_limited)
    if isinstance(setup.get("live_sessions"), int):  # this worker forks live sessions instead of taking batches
        return serve_live_sessions(setup["live_sessions"], library, runner, (requests.fileno(), replies))
    while True:
        batch = read_frame(requests)
        if batch is None:
            return 0
        for item in batch:
            if isinstance(item, dict):
                run_session(item, library, runner, replies, inherited=(requests.fileno(), replies))
                continue
            call_id, name, arguments = item
            reply = runner.run(call_id, name, arguments)
            descendants.end_strays()  # before the next call: nothing a call started outlives it
            _write_all(replies, encode_frame(reply))


if __name__ == "__main__":
    sys.exit(main())
