"""The files apigen names itself, beside the user's: opened so that nothing planted there can steer them.

A run's lock (``OUT.apigen-lock``), its state (``OUT.apigen-run.json``) and every
temporary (``OUT.apigen-run.json.tmp``, ``FILE.part-PID``) sit in a folder others may
write to. A symbolic link planted under one of those names must never make apigen
write through it to a file the user never named, and a FIFO or a folder there must be
an error, never a hang. So:

- ``create_exclusive`` makes a temporary that did not exist (``O_CREAT | O_EXCL``,
  which never follows a link); whatever was under the name before (the temporary of a
  run killed mid-write, or something planted) is removed first, as a name, not followed.
- ``open_regular`` opens a file that stays (the lock, the state) without following a
  link and without blocking on a FIFO, and refuses anything but a regular file.
"""

from __future__ import annotations

import fcntl
import os
import stat

from ..errors import ConfigError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class NotRegularFile(OSError):
    """A side file's name holds a symbolic link, a FIFO, a folder or a device."""


def create_exclusive(path: str, mode: int = 0o666) -> int:
    """A new file at ``path`` for writing (its descriptor), never a link's target nor a file opened by another.

    What ``path`` named before is removed first; a folder there is left alone and is an
    ``OSError`` (``IsADirectoryError``) for the caller to name.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    try:
        return os.open(path, flags, mode)
    except FileExistsError:
        if os.path.isdir(path) and not os.path.islink(path):
            raise IsADirectoryError(21, "a folder is in the way", path) from None
        os.unlink(path)  # a link is removed itself, never followed
        return os.open(path, flags, mode)  # planted again in between: FileExistsError, an error for the caller


def open_regular(path: str, flags: int, mode: int = 0o644) -> int:
    """Open the regular file at ``path`` (created if ``flags`` say so); ``NotRegularFile`` for anything else.

    ``O_NONBLOCK`` keeps a FIFO from holding the open until a writer or reader comes;
    it is cleared again before the descriptor is returned.
    """
    try:
        descriptor = os.open(path, flags | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as error:
        if os.path.islink(path):
            raise NotRegularFile(error.errno, "it is a symbolic link, not a file apigen made", path) from None
        raise
    kind = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(kind):
        os.close(descriptor)
        raise NotRegularFile(0, f"it is {_kind_name(kind)}, not a regular file", path)
    fcntl.fcntl(descriptor, fcntl.F_SETFL, fcntl.fcntl(descriptor, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return descriptor


def read_regular(path: str) -> bytes | None:
    """The bytes of the regular file at ``path``, or None when there is none; ``NotRegularFile`` otherwise."""
    try:
        descriptor = open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read()


def side_file_error(path: str, error: OSError, what: str, hint: str) -> ConfigError:
    """``ConfigError`` for a side file that cannot be used: ``what`` (e.g. "the run state") and why."""
    why = error.strerror or str(error)
    return ConfigError(f"{what} `{path}` cannot be used: {why}", hint=hint)


def _kind_name(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
