"""One run per output file: an exclusive lock held for the whole run.

Two ``apigen run`` on one output would interleave their rows and fight over the
state file. ``OutputLock.acquire(output)`` takes ``flock`` on ``OUTPUT.apigen-lock``
(beside the state file) without waiting; a second run is refused at once, naming
the process that holds it. The kernel drops the lock when its holder dies, even by
``kill -9``, so a stale lock file never blocks a rerun. The file itself stays
(removing it would let a third run lock a file that no longer has a name).
"""

from __future__ import annotations

import fcntl
import os

from ..errors import ConfigError
from .side_files import NotRegularFile, open_regular, side_file_error

LOCK_SUFFIX = ".apigen-lock"


def lock_path(output: str) -> str:
    return output + LOCK_SUFFIX


class OutputLock:
    """The held lock; ``release`` (or process exit) lets the next run in."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, output: str) -> OutputLock:
        """Lock ``output`` for this process, or raise ``ConfigError`` naming the holder."""
        path = lock_path(output)
        try:
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            fd = open_regular(path, os.O_RDWR | os.O_CREAT)  # a link planted there is refused, never written through
        except NotRegularFile as error:
            raise side_file_error(
                path, error, "the lock file", "remove it (apigen makes it again), or pass another `--output`"
            ) from None
        except OSError as error:
            raise ConfigError(
                f"cannot create the lock file `{path}`: {error.strerror or error}",
                hint="write to a folder apigen may write to (`--output`)",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise ConfigError(
                f"`{output}` is being written by another apigen run ({who} holds `{path}`)",
                hint="wait for that run to finish (or stop it), or pass another `--output` file",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
