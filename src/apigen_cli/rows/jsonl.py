"""Reading and writing rows as JSON Lines.

Rows are read lazily, one line at a time, so memory stays flat however large the
input is. A file whose first non-blank character is ``[`` is read as one JSON
array instead (the layout of the released xlam-function-calling-60k file).
Rows are written as compact orjson bytes into a buffer that is flushed in
batches, and also whenever a little time has passed, so that ``apigen ... | head``
sees rows as they are made while a hot loop never pays for a flush per row.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO, Protocol

import orjson

from ..errors import ConfigError, InputError
from ..problems import TOO_DEEP, TOO_DEEP_TEXT, may_be_too_deep, too_deep, valid_text
from .lock import OutputLock
from .replacement import Kept, Replacement, is_replaceable, replaced_together

STDIO = "-"
_BOM = b"\xef\xbb\xbf"


def describe_source(path: str) -> str:
    """How a path is named in messages: standard input gets a name of its own."""
    return "<stdin>" if path == STDIO else path


def open_binary_input(path: str) -> BinaryIO:
    """Open ``path`` (or standard input for ``-``) for reading bytes, or raise ``InputError``."""
    if path == STDIO:
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(
            f"input file `{path}` does not exist", hint="check the path, or pass `-` to read standard input"
        ) from None
    except IsADirectoryError:
        raise InputError(f"input `{path}` is a folder, not a file", hint="name a .jsonl file") from None
    except PermissionError:
        raise InputError(f"input file `{path}` cannot be read: permission denied") from None


def loads(data: bytes | str) -> Any:
    """Parse strict JSON with orjson: NaN, Infinity and lone surrogates are errors.

    Integers wider than 64 bits come back as floats, as with JSON.parse and most JSON tools.
    """
    return orjson.loads(data)


def json_error_text(error: ValueError | RecursionError) -> str:
    """Turn a decoder error into a short phrase with the column, as people read it."""
    if isinstance(error, json.JSONDecodeError):
        document = error.doc if isinstance(error.doc, str) else bytes(error.doc).decode("utf-8", "replace")
        found = document[error.pos : error.pos + 1].strip()
        return f"{error.msg} at column {error.colno}" + (f" (`{found}`)" if found else " (the line ends too early)")
    return str(error)


class BadLine(Exception):
    """A line that is not a JSON object; raised or turned into a reject row."""

    def __init__(self, source: str, line: int, text: bytes, problem: str) -> None:
        super().__init__(problem)
        self.source = source
        self.line = line
        self.text = text
        self.problem = problem

    def as_input_error(self) -> InputError:
        return InputError(
            f"line {self.line} of `{self.source}` {self.problem}",
            hint="fix the line, or pass `--skip-bad-lines` to send it to the rejects and go on",
        )

    def as_reject_row(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "raw": self.text.decode("utf-8", "replace"),
            "rejected_by": "input",
            "reason": "invalid_json",
            "reason_detail": f"line {self.line} of `{self.source}` {self.problem}",
        }


def _not_utf8(raw: bytes) -> str | None:
    """``is not UTF-8: byte 0xe9 at column 14`` for a line that is not UTF-8, else None."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"is not UTF-8: byte 0x{raw[bad.start]:02x} at column {bad.start + 1}"
    return None


def _parse_line(source: str, number: int, raw: bytes) -> dict[str, Any]:
    try:
        value = loads(raw)
    except (ValueError, RecursionError) as error:
        if str(error).startswith("depth limit exceeded"):  # orjson's, past 1024 levels: valid JSON all the same
            return _too_deep_row(source, number, raw, "the row")
        value = _with_lone_surrogates(raw)
        if value is None:
            raise BadLine(source, number, raw, _not_utf8(raw) or f"is not valid JSON: {json_error_text(error)}") from None
    if not isinstance(value, dict):
        kind = type(value).__name__.replace("NoneType", "null").replace("dict", "object").replace("list", "array")
        raise BadLine(source, number, raw, f"is a JSON {kind}, not an object: each line must hold one row")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not JSON")


def _with_lone_surrogates(raw: bytes) -> Any:
    """A line orjson refused only for its lone surrogate escapes (``"\\udcff"``, as older tools wrote a file
    name that is not UTF-8), read with U+FFFD in their place; ``None`` for any other fault."""
    if b"\\u" not in raw:
        return None
    try:
        return valid_text(json.loads(raw, parse_constant=_refuse_constant))
    except (ValueError, RecursionError):
        return None


def read_rows(path: str, *, skip_bad_lines: bool = False) -> Iterator[dict[str, Any]]:
    """Yield the rows of a JSONL file (or a JSON array file), one dict per row.

    A malformed line raises ``InputError`` naming the file and line, unless
    ``skip_bad_lines`` is set: then it is yielded as a reject row (with
    ``rejected_by: "input"``), which every stage passes straight through.
    """
    source = describe_source(path)
    stream = open_binary_input(path)  # opened now, so a missing file fails before any output is made
    return _iter_rows(source, stream, skip_bad_lines)


def _iter_rows(source: str, stream: BinaryIO, skip_bad_lines: bool) -> Iterator[dict[str, Any]]:
    try:
        lines = iter(stream)
        number = 0
        for raw in lines:  # up to the first line with content: is this an array file?
            number += 1
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            stripped = raw.strip()
            if not stripped:
                continue
            if stripped[:1] == b"[":
                yield from _read_array(source, stripped + stream.read(), skip_bad_lines)
                return
            yield _parse_or_reject(source, number, stripped, skip_bad_lines)
            break
        for raw in lines:  # the hot loop: orjson skips the newline itself
            number += 1
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                if not raw.strip():
                    continue
                yield _parse_or_reject(source, number, raw.strip(), skip_bad_lines)
                continue
            if type(value) is not dict:
                yield _parse_or_reject(source, number, raw.strip(), skip_bad_lines)
            elif may_be_too_deep(raw):
                yield _within_depth(source, number, raw.strip(), value)
            else:
                yield value
    except OSError as error:
        raise InputError(f"reading `{source}` failed: {error.strerror or error}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _parse_or_reject(source: str, number: int, raw: bytes, skip_bad_lines: bool) -> dict[str, Any]:
    """Parse a line the slow, careful way: a row, a reject row, or an ``InputError``."""
    try:
        return _within_depth(source, number, raw, _parse_line(source, number, raw))
    except BadLine as bad:
        if not skip_bad_lines:
            raise bad.as_input_error() from None
        return bad.as_reject_row()


def _within_depth(source: str, number: int, raw: bytes, row: dict[str, Any]) -> dict[str, Any]:
    """``row``, or its reject row when it nests deeper than apigen reads: valid JSON, but no stage could write it on.

    A reject, never an error: one row does not stop a file. It keeps the line as text, as a bad line's does.
    """
    path = too_deep(row)
    if path is None:
        return row
    rejected = _too_deep_row(source, number, raw, f"`{path}`")
    if isinstance(row.get("id"), str):
        rejected["id"] = row["id"]
    return rejected


def _too_deep_row(source: str, number: int, raw: bytes, where: str) -> dict[str, Any]:
    detail = f"{where} is {TOO_DEEP_TEXT}"
    rejected = BadLine(source, number, raw, detail).as_reject_row()
    rejected.update(reason=TOO_DEEP, reason_detail=f"line {number} of `{source}`: {detail}")
    return rejected


def _read_array(source: str, data: bytes, skip_bad_lines: bool) -> Iterator[dict[str, Any]]:
    """Rows of a whole-file JSON array; positions are given as item numbers."""
    try:
        items = loads(data)
    except (ValueError, RecursionError) as error:
        raise InputError(
            f"`{source}` starts with `[` but is not a valid JSON array: {json_error_text(error)}",
            hint="a JSON array file must hold one array of row objects; otherwise write one JSON object per line",
        ) from None
    if not isinstance(items, list):
        raise InputError(f"`{source}` is not a JSON array of rows")
    for index, item in enumerate(items, start=1):
        if isinstance(item, dict):
            path = too_deep(item)
            if path is None:
                yield item
            else:
                detail = f"item {index} of the JSON array in `{source}`: `{path}` is {TOO_DEEP_TEXT}"
                yield {"item": index, "rejected_by": "input", "reason": TOO_DEEP, "reason_detail": detail}
            continue
        problem = f"item {index} of the JSON array in `{source}` is not an object"
        if not skip_bad_lines:
            raise InputError(problem, hint="fix the item, or pass `--skip-bad-lines` to send it to the rejects and go on")
        yield {"item": index, "raw": item, "rejected_by": "input", "reason": "invalid_row", "reason_detail": problem}


def _dumps_fallback(row: Any) -> bytes:
    # orjson refuses non-string keys, some Python types a caller may have put in a row, and lone
    # surrogates, which no UTF-8 file can hold: written as escapes, they would be a line every reader refuses.
    return (json.dumps(valid_text(row), ensure_ascii=True, default=repr, separators=(",", ":")) + "\n").encode()


class ByteSink(Protocol):
    """Where a writer's bytes go: a binary file, or a file emptied on its first write."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class _EmptiedOnFirstWrite:
    """An in-place file that starts afresh: emptied when its first bytes come (or ``empty`` is called), not on opening."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self._earlier_bytes = True

    def empty(self) -> None:
        if self._earlier_bytes:
            self._earlier_bytes = False
            self.stream.truncate(0)
            self.stream.seek(0)

    def write(self, data: bytes, /) -> int:
        self.empty()
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()


class JsonlWriter:
    """Buffered writer of one compact JSON object per line.

    Flushes every ``batch_rows`` rows, and on the first write after
    ``max_delay`` seconds, so slow stages still stream to a reader.
    """

    def __init__(self, stream: ByteSink, *, batch_rows: int = 512, max_delay: float = 0.2) -> None:
        self._stream = stream
        self._buffer: list[bytes] = []
        self._batch_rows = batch_rows
        self._max_delay = max_delay
        self._last_flush = time.monotonic()
        self.rows_written = 0
        self.bytes_written = 0

    def write(self, row: Any) -> None:
        data = self._encode(row)
        buffer = self._buffer
        buffer.append(data)
        self.rows_written += 1
        self.bytes_written += len(data)
        if len(buffer) >= self._batch_rows or time.monotonic() - self._last_flush >= self._max_delay:
            self.flush()

    def _encode(self, row: Any) -> bytes:
        try:
            return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            return _dumps_fallback(row)

    def flush(self) -> None:
        if self._buffer:
            self._stream.write(b"".join(self._buffer))
            self._buffer.clear()
        self._stream.flush()
        self._last_flush = time.monotonic()

    def finish(self) -> None:
        """Write whatever closes the output (nothing, for JSON Lines)."""


class JsonArrayWriter(JsonlWriter):
    """One JSON array written as it goes: ``[``, then rows separated by a comma and a newline, then ``]``."""

    def _encode(self, row: Any) -> bytes:
        return (b",\n" if self.rows_written else b"[") + super()._encode(row)[:-1]

    def finish(self) -> None:
        self._buffer.append(b"]\n" if self.rows_written else b"[]\n")


class OutputFile:
    """A JSONL destination (or, with ``array``, one JSON array): a path or ``-`` for standard output.

    A file is written beside its path and renamed over it by ``close``, when the
    command ended well; ``abandon`` (after an error or Ctrl-C) leaves the earlier
    file as it was and keeps the rows written so far as ``FILE.partial`` (see
    ``replacement``). A device or a pipe (`/dev/null`) is written as it is.
    """

    def __init__(
        self, path: str, *, array: bool = False, resume_at: int | None = None, in_place: bool = False, flag: str = "--output"
    ) -> None:
        """``in_place``: written in the file itself, as rows come (``apigen run``'s resumable files).

        Then ``resume_at`` keeps the first that many bytes of the file and appends after
        them; without it, an earlier file is emptied on the run's first row (``start``,
        or the first write), so a run that fails before it leaves the file as it was.
        """
        self.path = path
        self.array = array
        self.resume_at = resume_at
        self.flag = flag
        self.in_place = path != STDIO and (in_place or not is_replaceable(path))
        self._replacement = Replacement(path, flag) if path != STDIO and not self.in_place else None
        self._stream: IO[bytes] | None = None
        self._fresh: _EmptiedOnFirstWrite | None = None  # an in-place file emptied on the first row
        self._writer: JsonlWriter | None = None
        self._lock: OutputLock | None = None  # an in-place file's (a replaced one's is its Replacement's)

    @property
    def writer(self) -> JsonlWriter:
        if self._writer is None:
            self._stream = self._open()
            sink: ByteSink = self._stream
            if self.in_place and self.resume_at is None and stat.S_ISREG(os.fstat(self._stream.fileno()).st_mode):
                sink = self._fresh = _EmptiedOnFirstWrite(self._stream)
            self._writer = JsonArrayWriter(sink) if self.array else JsonlWriter(sink)
        return self._writer

    def _open(self) -> IO[bytes]:
        if self.path == STDIO:
            return sys.stdout.buffer
        if self._replacement is not None:
            return self._replacement.open()
        if is_replaceable(self.path):  # a regular file has one writer at a time (`rows.lock`); a device or a pipe is shared
            self._lock = OutputLock.acquire(self.path, self.flag)
        try:
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            stream = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666), "wb")
            if self.resume_at is not None:
                stream.truncate(self.resume_at)  # drop what was written after the last checkpoint
                stream.seek(self.resume_at)
            return stream
        except OSError as error:
            self._unlock()
            raise ConfigError(
                f"`{self.flag}` cannot write `{self.path}`: {error.strerror or error}",
                hint="check that the folder exists and is writable",
            ) from None

    def _unlock(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.release()

    def start(self) -> None:
        """The first row is coming: an in-place file that starts afresh is emptied now (its first write would too)."""
        if self._fresh is not None:
            self._fresh.empty()

    def write(self, row: Any) -> None:
        self.writer.write(row)

    def close(self) -> None:
        """The command ended well: finish and flush; a file replaces the earlier one, even with no row (the run ended)."""
        writer = self.writer
        self.start()  # an in-place file that got no row is emptied too: it holds this run now
        writer.finish()
        writer.flush()
        if self._replacement is not None:
            self._replacement.commit(self._stream)
        elif self._stream is not None and self._stream is not sys.stdout.buffer:
            self._stream.close()
        self._unlock()

    def abandon(self) -> Kept | None:
        """After a failure: close without finishing; the earlier file stays, the rows written are kept (returned)."""
        writer = self._writer
        if writer is not None and (writer.rows_written or self._replacement is None):
            writer.flush()
        if self._replacement is not None:
            keep = writer is not None and writer.rows_written > 0
            partial = self._replacement.discard(self._stream, keep=keep)
            return Kept(self.path, partial, writer.rows_written) if partial and writer is not None else None
        if self._stream is not None and self._stream is not sys.stdout.buffer:
            self._stream.close()
        self._unlock()
        return None


def write_jsonl(path: str, rows: Iterable[Any], *, flag: str = "--output") -> int:
    """Write ``rows`` to ``path`` (``-`` for standard output), replacing it only once all are written; returns the count."""
    output = OutputFile(path, flag=flag)
    count = 0
    with replaced_together(output):
        for row in rows:
            output.write(row)
            count += 1
    return count
