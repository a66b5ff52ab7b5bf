"""The end of what a child process writes, kept in bounded memory.

An MCP server's stderr and what a module prints while ``library from-python``
imports it only explain a failure, and it is their last lines that do. A child
may write gigabytes: so the stream is read as it comes and only its last
``limit`` bytes are kept, never the whole of it, in memory or on disk.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading

TAIL_BYTES = 64 * 1024


class Tail:
    """The last ``limit`` bytes written to a stream, and how many were written in all."""

    def __init__(self, what: str, limit: int = TAIL_BYTES) -> None:
        self.what = what  # "its stderr", "its output": for messages
        self.limit = limit
        self.total = 0
        self._data = bytearray()
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # one reader at a time, so that chunks are kept in order
        self._descriptor: int | None = None

    def follow(self, descriptor: int) -> None:
        """Read ``descriptor`` (a pipe's read end, now ours) to its end on a daemon thread; closed at the end.

        A daemon thread: a process that escaped being ended may hold the other end open
        forever, and must not keep apigen from exiting.
        """
        os.set_blocking(descriptor, False)
        self._descriptor = descriptor
        threading.Thread(target=self._follow, name="apigen-output-tail", daemon=True).start()

    def _follow(self) -> None:
        while (descriptor := self._descriptor) is not None:
            with contextlib.suppress(OSError, ValueError):
                select.select([descriptor], [], [])
            self.catch_up(closing=True)

    def catch_up(self, *, closing: bool = False) -> None:
        """Keep what the pipe holds now: a message about a child that just died names its last words.

        Only the following thread closes the pipe at its end (``closing``), so that it never
        waits on a descriptor number the process has given to another file.
        """
        with self._reading:
            descriptor = self._descriptor
            while descriptor is not None:
                try:
                    chunk = os.read(descriptor, 65536)
                except BlockingIOError:
                    return
                except OSError:
                    chunk = b""
                if not chunk:  # the end: every writer is gone
                    if closing:
                        os.close(descriptor)
                        self._descriptor = None
                    return
                self.add(chunk)

    def add(self, chunk: bytes) -> None:
        with self._lock:
            self.total += len(chunk)
            self._data += chunk
            if len(self._data) > self.limit:
                del self._data[: len(self._data) - self.limit]

    def last_line(self) -> str:
        """The last non-blank line kept, at most 300 characters; empty when there is none."""
        with self._lock:
            text = self._data.decode("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""

    def ends(self) -> str:
        """``; its stderr ends: LINE`` for a message, saying so when only the tail of a flood was kept."""
        line = self.last_line()
        if not line:
            return ""
        if self.total > self.limit:
            kept = f" (apigen keeps only the last {self.limit // 1024} KB of {self.total:,} bytes)"
            return f"; {self.what} ends{kept}: {line}"
        return f"; {self.what} ends: {line}"
