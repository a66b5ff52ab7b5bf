"""A JSONL file that several processes append to at once, each line whole (``--log-llm``).

Unlike an output (one writer, ``rows.lock.OutputLock`` refuses a second), a log is meant
to be shared: shards of one run, or two runs, may name the same file, as they share a
``--cache``. Each line therefore goes out in one ``write`` on an ``O_APPEND`` descriptor,
under an exclusive ``flock`` of the file held for just that write. ``O_APPEND`` alone
keeps whole lines apart only for a regular file written in one piece; the lock also
covers a write the kernel splits: one to a FIFO or pipe (over ``PIPE_BUF`` bytes a pipe
takes a line in pieces, between which another writer's pieces land) and a short write
finished by a second call. Nothing is buffered, so a killed process loses no line.
"""

from __future__ import annotations

import fcntl
import os
import threading


class SharedLog:
    """Appends whole lines to ``path``; other processes appending to it never split one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        self._thread_lock = threading.Lock()  # flock is per open file: threads of this process share it

    def append(self, line: bytes) -> None:
        """Write ``line`` (ending in a newline) after every line written before it, by any process."""
        with self._thread_lock:
            locked = _lock(self._fd)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
            finally:
                if locked:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def _lock(fd: int) -> bool:
    """Wait for the file's lock; False where the file takes none (a file system without ``flock``)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        return False
    return True
