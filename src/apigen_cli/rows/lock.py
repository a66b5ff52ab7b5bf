"""One writer per file: an exclusive lock held while a command writes it.

Two commands writing one file would interleave their rows, or one would replace what
the other wrote (`format-check -o X` during `run -o X`). Every writer of a regular
file takes ``OutputLock.acquire(path)`` first (``rows.replacement`` and ``OutputFile``
do, so every command does): ``flock`` on ``PATH.apigen-lock`` without waiting; a second
writer is refused at once, naming the process that holds it. The kernel drops the lock
when its holder dies, even by ``kill -9``, so a stale lock file never blocks anyone.

The lock file is removed when the lock is released, so commands leave no litter. That
is safe because a writer that locked a file no longer under the name (removed by the
holder it waited behind) sees so (``st_ino`` differs) and tries again with the new one.

Within one process a lock is taken once and counted: ``run`` locks its output for the
whole run and its output file locks it again as it opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass

from ..errors import ConfigError
from .side_files import NotRegularFile, open_regular, side_file_error

LOCK_SUFFIX = ".apigen-lock"


def lock_path(output: str) -> str:
    """Beside the file itself: two names of one file (a link, `./x` and `x`) share one lock."""
    return os.path.realpath(output) + LOCK_SUFFIX


@dataclass
class _Held:
    fd: int
    count: int


_HELD: dict[str, _Held] = {}  # lock file -> this process's hold on it


class OutputLock:
    """A hold on a file's lock; ``release`` (or process exit) lets the next writer in."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._held = True

    @classmethod
    def acquire(cls, output: str, flag: str = "--output") -> OutputLock:
        """Lock ``output`` for this process, or raise ``ConfigError`` naming ``flag`` and the holder."""
        path = lock_path(output)
        held = _HELD.get(path)
        if held is not None:
            held.count += 1
            return cls(path)
        for _attempt in range(100):  # another writer removing the file as we lock it, again and again: not for ever
            fd = _open_lock_file(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                who = f"process {holder}" if holder else "another process"
                raise ConfigError(
                    f"`{flag}` names `{output}`, which another apigen command is writing ({who} holds `{path}`)",
                    hint=f"wait for that command to finish (or stop it), or pass another `{flag}` file",
                ) from None
            if _still_named(fd, path):
                break
            os.close(fd)  # its holder removed it as we waited: lock the file now under the name
        else:
            raise ConfigError(f"cannot take the lock `{path}`: it keeps being replaced", hint=f"pass another `{flag}` file")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[path] = _Held(fd, 1)
        return cls(path)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        held = _HELD[self.path]
        held.count -= 1
        if held.count:
            return
        del _HELD[self.path]
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: a writer that locked this inode sees it is gone
        os.close(held.fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _open_lock_file(path: str) -> int:
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        return open_regular(path, os.O_RDWR | os.O_CREAT)  # a link planted there is refused, never written through
    except NotRegularFile as error:
        raise side_file_error(path, error, "the lock file", "remove it (apigen makes it again), or pass another file") from None
    except OSError as error:
        raise ConfigError(
            f"cannot create the lock file `{path}`: {error.strerror or error}",
            hint="write to a folder apigen may write to",
        ) from None


def _still_named(fd: int, path: str) -> bool:
    try:
        named, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
