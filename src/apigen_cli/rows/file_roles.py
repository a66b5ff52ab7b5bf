"""One file, one role: a command never writes a file it also reads, or writes one file twice.

`--report out.jsonl -o out.jsonl` would leave a report where the dataset was; `--log-llm`
naming `-o` would mix exchanges into rows; `--rejects` naming `--examples` would destroy the
examples the run reads. Every file a command reads or writes is named here with its flag
(``FileUse``), and ``check_files_apart`` compares each with every other before any work:
by the file itself (device and inode: hard and symbolic links included) when it exists,
by its resolved path when it does not yet. Two reads of one file are fine; anything
written may share its file with nothing else.

A folder apigen fills with files of its own (``--cache``, ``--batch-dir``) is written as a
whole: nothing else written may be it or lie inside it, another such folder included. Its
files are apigen's to replace (`vllm run-batch` writes ``results.jsonl`` into the batch
folder) and the folder is there to delete (the cache is cleared so), so a dataset, log or
run state kept in it would be lost with it. Reading from inside one is fine.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

from ..errors import ConfigError
from .jsonl import STDIO


@dataclass(frozen=True)
class FileUse:
    """A file a command uses: the flag (or argument) naming it, the path, and whether it is written."""

    flag: str
    path: str
    writes: bool
    folder: bool = False  # a folder apigen fills with its own files: written as a whole


def check_files_apart(uses: Iterable[FileUse]) -> None:
    """``ConfigError`` naming both flags when a file written is named by another use too."""
    uses = [use for use in uses if use.path and use.path != STDIO]
    _check_folders_apart(uses)
    known = [(use, _identity(use.path)) for use in uses]
    for (first, first_id), (second, second_id) in combinations(
        [(use, identity) for use, identity in known if identity is not None], 2
    ):
        if not (first.writes or second.writes) or not _same(first_id, second_id):
            continue
        if first.flag == second.flag:
            said = f"`{first.flag}` names `{first.path}` twice"
            if first.path != second.path:
                said = f"`{first.flag}` names one file twice (`{first.path}` and `{second.path}`)"
            raise ConfigError(said, hint=f"give `{first.flag}` each file once")
        shown = f"`{first.path}`" if first.path == second.path else f"one file (`{first.path}` and `{second.path}`)"
        if first.writes and second.writes:
            raise ConfigError(
                f"`{first.flag}` and `{second.flag}` both name {shown}: one would overwrite the other",
                hint=f"give `{first.flag}` and `{second.flag}` a file each",
            )
        writer, reader = (first, second) if first.writes else (second, first)
        raise ConfigError(
            f"`{writer.flag}` and `{reader.flag}` both name {shown}: it would be overwritten while it is read",
            hint=f"give `{writer.flag}` another file",
        )


def _check_folders_apart(uses: list[FileUse]) -> None:
    """``ConfigError`` when something written is a folder apigen fills, or lies inside one."""
    for folder in (use for use in uses if use.folder):
        where = os.path.realpath(folder.path)
        for other in uses:
            if other is folder or not other.writes:
                continue
            path = os.path.realpath(other.path)
            if path == where:
                first, second = sorted((other, folder), key=uses.index)
                hint = (
                    f"give `{first.flag}` and `{second.flag}` a folder each"
                    if other.folder
                    else f"give `{other.flag}` a file outside `{folder.path}`, or `{folder.flag}` another folder"
                )
                raise ConfigError(
                    f"`{first.flag}` and `{second.flag}` both name `{folder.path}`, the folder apigen fills with its own files",
                    hint=hint,
                )
            if os.path.commonpath([path, where]) == where:
                kind = "folder" if other.folder else "file"
                raise ConfigError(
                    f"`{other.flag}` names `{other.path}`, inside `{folder.path}`, the `{folder.flag}` folder, "
                    "which apigen fills with its own files",
                    hint=f"give `{other.flag}` a {kind} outside `{folder.path}`, or `{folder.flag}` another folder",
                )


_Identity = tuple[tuple[int, int] | None, str]


def _identity(path: str) -> _Identity | None:
    """The file's (device, inode) if it exists, and its resolved path; None for what is not a file or folder
    (`/dev/null`, a pipe: written by several at once as they are)."""
    try:
        found = os.stat(path)
    except OSError:
        return None, os.path.realpath(path)
    if not (stat.S_ISREG(found.st_mode) or stat.S_ISDIR(found.st_mode)):
        return None
    return (found.st_dev, found.st_ino), os.path.realpath(path)


def _same(first: _Identity, second: _Identity) -> bool:
    (first_inode, first_path), (second_inode, second_path) = first, second
    if first_inode is not None and second_inode is not None:
        return first_inode == second_inode
    return first_path == second_path
