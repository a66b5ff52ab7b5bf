"""What every importer hands back, and how a library is written: JSONL that ``loader.py`` reads.

Each importer returns an ``Imported``: the tool definitions (bare JSON Schema
dialect, with ``category`` and, for REST APIs, an ``http`` binding) and notes
for people (what was skipped or changed, and why). ``write_library`` compiles
every definition before writing it, so an importer can never emit a line that
``generate`` or ``exec-check`` would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, InputError
from ..problems import RowProblem
from ..rows.jsonl import write_jsonl
from ..schema.tools import compile_tool

#: Tool names OpenAI-compatible endpoints accept (and the paper's library uses).
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Imported:
    """An importer's result: tools to write, notes to show on stderr."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0


def sanitise_name(raw: str, fallback: str = "api") -> str:
    """``raw`` made into a tool name: runs of other characters become ``_``, cut to 64 characters."""
    name = _NOT_NAME.sub("_", raw).strip("_") or fallback
    return name[:64]


class UniqueNames:
    """Hands out tool names, adding ``_2``, ``_3`` ... to a name already taken (still within 64 characters)."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken = set(taken)

    def claim(self, name: str) -> str:
        found, number = name, 1
        while found in self.taken:
            number += 1
            suffix = f"_{number}"
            found = name[: 64 - len(suffix)] + suffix
        self.taken.add(found)
        return found


def check_base_url(value: str | None) -> None:
    """``--base-url`` must be an http(s) URL: calls are made to it."""
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise ConfigError(f"`--base-url` is {value!r}, not an http(s) URL", hint="pass `--base-url https://host/prefix`")


def check_env_name(value: str | None, flag: str) -> None:
    """A flag that names an environment variable must name one (the value itself never goes in a flag)."""
    if value is not None and not _ENV_NAME.match(value):
        raise ConfigError(
            f"`{flag}` is {value!r}, not the name of an environment variable",
            hint=f"pass `{flag} NAME`, e.g. `{flag} RAPIDAPI_KEY`",
        )


def write_library(tools: Iterable[dict[str, Any]], path: str, *, flag: str = "--output") -> int:
    """Write tool definitions as JSONL to ``path`` (``-`` for stdout), replacing it once all are; returns how many."""
    return write_jsonl(path, _compiled(tools), flag=flag)


def _compiled(tools: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for position, tool in enumerate(tools, start=1):
        try:
            compile_tool(tool, position)
        except RowProblem as error:  # an importer's bug, never the user's: say which tool
            raise InputError(f"tool {position} would not load: {error.problem.message}") from None
        yield tool
