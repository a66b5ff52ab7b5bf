"""How every command writes a file: nothing is replaced until there is something to replace it with.

A command's file (``-o``, ``--rejects``, ``--report``, an export, a library, a page) is
written to a temporary file beside it (same folder, so the rename is atomic) and
renamed over it only when the command ends well. When it fails or is stopped
(Ctrl-C, SIGTERM), the temporary is removed and the earlier file is left as it was;
rows already written (perhaps paid for) are not thrown away but kept as
``FILE.partial``, and the error says so. ``apigen run``'s resumable files are the
one exception, written in place (see ``OutputFile``'s ``in_place``).

Writability is checked before the work starts (``check_writable``), so a file that
cannot be written is an error before any request is sent.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Protocol

from ..errors import ApigenError, ConfigError, Interrupted
from .lock import OutputLock
from .side_files import create_exclusive

PARTIAL_SUFFIX = ".partial"
_HINT = "give a writable file path"


def is_replaceable(path: str) -> bool:
    """A regular file, or none yet: what can be written beside and renamed over (not `/dev/null`, a pipe)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def check_writable(path: str, flag: str = "--output") -> None:
    """Raise ``ConfigError`` naming ``flag`` and ``path`` unless the command could write ``path``.

    Made before any work, so that an unwritable file costs no request. Nothing is
    created: the nearest folder that exists must be writable, and an existing file too.
    """

    def refused(why: str) -> ConfigError:
        return ConfigError(f"`{flag}` cannot write `{path}`: {why}", hint=_HINT)

    if os.path.isdir(path):
        raise refused("it is a folder")
    if os.path.lexists(path) and not is_replaceable(path):
        if not os.access(path, os.W_OK):
            raise refused("permission denied")
        return  # a device or a pipe is written as it is
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise refused("the file is read-only")
    folder = os.path.dirname(os.path.abspath(_resolved(path)))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise refused(f"`{folder}` is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise refused(f"the folder `{folder}` is not writable")


def _resolved(path: str) -> str:
    """A symbolic link is replaced at its target, so the link stays a link."""
    return os.path.realpath(path) if os.path.islink(path) else path


class Replacement:
    """One file being written beside ``path``: ``commit`` renames it over ``path``; ``discard`` removes it.

    ``flag`` names the option in messages. The temporary gets the earlier file's
    permissions (or the usual ones for a new file), and is forced to disk before the
    rename, so a crash never leaves an empty file where a whole one was.
    """

    def __init__(self, path: str, flag: str = "--output") -> None:
        self.path = path
        self.flag = flag
        self.target = _resolved(path)
        self.temporary = f"{self.target}.part-{os.getpid()}"
        self._opened = False
        self._lock: OutputLock | None = None

    def open(self) -> IO[bytes]:
        """Lock the file and create the temporary (and its folder); ``ConfigError`` naming the file if it cannot be.

        The lock (``rows.lock``) is held until ``commit`` or ``discard``: another command
        writing the same file is refused, naming this one, rather than replacing its work.
        """
        if not is_replaceable(self.target):  # never rename a file over `/dev/null` (root may)
            raise ConfigError(f"`{self.flag}` cannot write `{self.path}`: it is not a regular file", hint=_HINT)
        self._lock = OutputLock.acquire(self.path, self.flag)
        try:
            return self._open_temporary()
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.release()

    def _open_temporary(self) -> IO[bytes]:
        try:
            folder = os.path.dirname(self.target)
            if folder:
                os.makedirs(folder, exist_ok=True)
            mode = stat.S_IMODE(os.stat(self.target).st_mode) if os.path.exists(self.target) else 0o666
            descriptor = create_exclusive(self.temporary, mode)  # never through a link planted at the name
            if os.path.exists(self.target):
                os.chmod(self.temporary, mode)  # the earlier file's own permissions, umask aside
        except OSError as error:
            raise ConfigError(f"`{self.flag}` cannot write `{self.path}`: {error.strerror or error}", hint=_HINT) from None
        self._opened = True
        return os.fdopen(descriptor, "wb")

    def commit(self, stream: IO[bytes] | None = None) -> None:
        """Close ``stream`` (forced to disk) and rename the temporary over the file."""
        if stream is not None:
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
        try:
            os.replace(self.temporary, self.target)
        except OSError as error:
            raise ConfigError(f"`{self.flag}` cannot replace `{self.path}`: {error.strerror or error}", hint=_HINT) from None
        finally:
            self._unlock()
        self._opened = False

    def discard(self, stream: IO[bytes] | None = None, *, keep: bool = False) -> str | None:
        """After a failure: the file is left as it was; ``keep`` renames what was written to a free ``.partial`` name.

        Returns the name it is kept under, else None.
        """
        if stream is not None:
            stream.close()
        try:
            if not self._opened:
                return None
            self._opened = False
            if keep:
                return _kept_apart(self.temporary, self.target)
            with suppress(FileNotFoundError):
                os.remove(self.temporary)
            return None
        finally:
            self._unlock()


def free_partial_name(target: str) -> str:
    """``FILE.partial``, or ``FILE.partial-2`` and so on: an earlier partial (perhaps paid for) is never replaced."""
    name, number = target + PARTIAL_SUFFIX, 1
    while os.path.lexists(name):
        number += 1
        name = f"{target}{PARTIAL_SUFFIX}-{number}"
    return name


def _kept_apart(temporary: str, target: str) -> str:
    """Give ``temporary`` the first free ``.partial`` name; a name taken meanwhile (even by a link) is never replaced."""
    while True:
        kept = free_partial_name(target)
        try:
            os.link(temporary, kept)  # fails if the name exists, whatever it is: unlike a rename, never replaces
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: the name was free a moment ago
            os.replace(temporary, kept)
            return kept
        os.remove(temporary)
        return kept


def write_whole(path: str, data: bytes, flag: str) -> None:
    """Write ``data`` to ``path`` whole or not at all (a report, a page, a card); a device is written as it is."""
    if not is_replaceable(path):
        try:
            with open(path, "wb") as device:
                device.write(data)
        except OSError as error:
            raise ConfigError(f"`{flag}` cannot write `{path}`: {error.strerror or error}", hint=_HINT) from None
        return
    replacement = Replacement(path, flag)
    stream = replacement.open()
    try:
        stream.write(data)
    except BaseException:
        replacement.discard(stream)
        raise
    replacement.commit(stream)


# --- settling a command's files together ---------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """Rows a failed command had written, kept apart from the file they were meant for."""

    path: str  # the file the command was writing, left as it was
    partial: str  # where the rows are
    rows: int


class Settled(Protocol):
    """A command's file: ``close`` when the command ended well, ``abandon`` otherwise (what it kept, if anything)."""

    def close(self) -> None: ...

    def abandon(self) -> Kept | None: ...


@contextmanager
def replaced_together(*files: Settled | None) -> Iterator[None]:
    """Run the block; when it ends well every file replaces its earlier one, else none does.

    After a failure the rows written so far are kept under ``.partial`` names, and the
    error says where: an ``ApigenError``'s message gains the names, Ctrl-C becomes
    ``Interrupted`` (a ``KeyboardInterrupt``, exit 130) naming them.
    """
    present = [file for file in files if file is not None]
    try:
        yield
    except BaseException as error:
        kept = [found for found in (file.abandon() for file in present) if found is not None]
        if not kept:
            raise
        said = kept_text(kept)
        if isinstance(error, KeyboardInterrupt):
            raise Interrupted(f"interrupted; every line already written is a complete row; {said}") from None
        if isinstance(error, ApigenError):
            error.message = f"{error.message}; {said}"
        raise
    for file in present:
        file.close()


def kept_text(kept: Sequence[Kept]) -> str:
    """``what was written is kept in `out.jsonl.partial` (3 rows); `out.jsonl` is left as it was``."""
    where = " and ".join(f"`{item.partial}` ({item.rows} row{'' if item.rows == 1 else 's'})" for item in kept)
    paths = " and ".join(f"`{item.path}`" for item in kept)
    left = "is left as it was" if len(kept) == 1 else "are left as they were"
    return f"what was written is kept in {where}; {paths} {left}"
