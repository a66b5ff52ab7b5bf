"""A JSONL file that several processes append to at once, each line whole (``--log-llm``).

Unlike an output (one writer, ``rows.lock.OutputLock`` refuses a second), a log is meant
to be shared: shards of one run, or two runs, may name the same file, as they share a
``--cache``. Each line therefore goes out in one ``write`` on an ``O_APPEND`` descriptor,
under an exclusive ``flock`` of the file held for just that write. ``O_APPEND`` alone
keeps whole lines apart only for a regular file written in one piece; the lock also
covers a write the kernel splits: one to a FIFO or pipe (over ``PIPE_BUF`` bytes a pipe
takes a line in pieces, between which another writer's pieces land) and a short write
finished by a second call. Nothing is buffered, so a killed process loses no line.

The wait for the lock is bounded (``LOCK_WAIT_SECONDS``): a writer stopped mid-write
(SIGSTOP, a debugger, a FIFO whose reader stopped reading) would otherwise hold up every
other writer for good. A line whose lock is not had in time is left out rather than
written without the lock, which could split it or the stopped writer's half line; the
caller is told, so it can warn. Once a line has been left out, the next ones try the lock
once without waiting, so a run is not slowed by a full wait per line, until the lock is
had again. ``flock`` has no timeout, so the wait polls ``LOCK_NB``, as ``filelock`` does.
"""

from __future__ import annotations

import enum
import fcntl
import os
import threading
import time

#: how long a line waits for a lock another process holds before it is left out
LOCK_WAIT_SECONDS = 10.0
_POLL_FIRST, _POLL_MOST = 0.001, 0.05  # seconds between tries of the lock: doubling, capped


class SharedLog:
    """Appends whole lines to ``path``; other processes appending to it never split one."""

    def __init__(self, path: str, *, lock_wait: float | None = None) -> None:
        self.path = path
        self.lock_wait = LOCK_WAIT_SECONDS if lock_wait is None else lock_wait
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        self._thread_lock = threading.Lock()  # flock is per open file: threads of this process share it
        self._missed = False  # the last line was left out: the next tries the lock once

    def append(self, line: bytes) -> bool:
        """Write ``line`` (ending in a newline) after every line written before it, by any process.

        False when another process held the file's lock too long and the line was left out.
        """
        with self._thread_lock:
            lock = _lock(self._fd, 0.0 if self._missed else self.lock_wait)
            self._missed = lock is _Lock.MISSED
            if self._missed:
                return False
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
            finally:
                if lock is _Lock.HELD:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            return True

    def close(self) -> None:
        os.close(self._fd)


class _Lock(enum.Enum):
    HELD = "held"
    MISSED = "missed"  # another process held it for the whole wait
    NONE = "none"  # the file takes no lock (a file system without ``flock``): written without


def _lock(fd: int, wait: float) -> _Lock:
    """Take the file's lock, trying for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    pause = _POLL_FIRST
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return _Lock.MISSED
            time.sleep(min(pause, left))
            pause = min(pause * 2, _POLL_MOST)
        except OSError:
            return _Lock.NONE
        else:
            return _Lock.HELD
