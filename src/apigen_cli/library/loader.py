"""The API library that ``generate`` samples from: tool definitions with categories.

A library file is JSONL (one tool definition per line) or one JSON array of them,
in any dialect ``tools.py`` reads, each with an optional ``category``. It is small
and read whole; a bad entry is an error naming the file, the line and the field.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..problems import MAX_DEPTH, RowProblem, too_deep
from ..rows.jsonl import json_error_text, loads
from ..schema.tools import Tool, compile_tool, model_view

UNCATEGORISED = "uncategorised"
# Keys that belong to apigen's handling of a tool, not to what the model is shown.


@dataclass(frozen=True)
class Api:
    """One API of the library: its tool definition as given, its category, its compiled form."""

    name: str
    category: str
    definition: dict[str, Any]
    tool: Tool

    @property
    def row_definition(self) -> dict[str, Any]:
        """The definition as a row carries it: without ``category``, with any ``http``/``mcp`` binding (exec-check needs it)."""
        return {key: value for key, value in self.definition.items() if key != "category"}

    @property
    def shown_definition(self) -> dict[str, Any]:
        """The definition as the generator model sees it: no category, no execution binding."""
        shown: dict[str, Any] = model_view(self.definition)
        return shown


def _numbered_objects(path: str, data: bytes | None = None) -> list[tuple[str, Any]]:
    try:
        if data is None:
            data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"API library `{path}` does not exist", hint="pass a JSONL file of tool definitions, e.g. sample_data/apis.jsonl"
        ) from None
    except OSError as error:
        raise InputError(f"API library `{path}` cannot be read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:  # never a silent U+FFFD in a tool's description
        line_number = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(
            f"line {line_number} of `{path}` is not UTF-8: byte 0x{data[error.start]:02x} at column {column}",
            hint="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        ) from None
    if text.lstrip().startswith("["):
        try:
            items = loads(text)
        except (ValueError, RecursionError) as error:
            raise InputError(f"`{path}` starts with `[` but is not a valid JSON array: {json_error_text(error)}") from None
        return [_within_depth(path, f"item {index}", item) for index, item in enumerate(items, start=1)]
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(_within_depth(path, f"line {number}", loads(line)))
        except (ValueError, RecursionError) as error:
            raise InputError(
                f"line {number} of `{path}` is not valid JSON: {json_error_text(error)}", hint="fix the line"
            ) from None
    return found


#: Rows carry a tool two levels down (``tools[0]``): a tool may nest two levels less than a row.
MAX_TOOL_DEPTH = MAX_DEPTH - 2


def _within_depth(path: str, where: str, definition: Any) -> tuple[str, Any]:
    """``(where, definition)``, or an ``InputError`` for a definition nested past what its rows could carry."""
    deep = too_deep(definition, MAX_TOOL_DEPTH)
    if deep is not None:
        raise InputError(
            f"{where} of `{path}`: `{deep}` is nested deeper than {MAX_TOOL_DEPTH} levels, the most a tool definition may",
            hint="no real API nests so deep: fix or remove the definition",
        )
    return where, definition


def read_definitions(path: str) -> list[tuple[str, Any]]:
    """Every entry of a library file with where it is (``line 3``), not yet checked: for ``check`` and ``merge``.

    ``-`` reads standard input, so that an importer can pipe into them.
    """
    if path == "-":
        return _numbered_objects("<stdin>", sys.stdin.buffer.read())
    return _numbered_objects(path)


def load_library(path: str) -> list[Api]:
    """Read and compile every API of a library file; any unusable entry stops the command."""
    apis: list[Api] = []
    seen: dict[str, str] = {}
    for where, definition in _numbered_objects(path):
        if not isinstance(definition, dict):
            raise InputError(f"{where} of `{path}` is not a JSON object", hint="each entry is one tool definition")
        try:
            tool = compile_tool(definition, len(apis) + 1)
        except RowProblem as error:
            raise InputError(
                f"{where} of `{path}`: {error.problem.message}", hint="fix the tool definition (see the README's tool dialects)"
            ) from None
        if tool.name in seen:
            raise InputError(
                f"{where} of `{path}`: the API name `{tool.name}` is already used on {seen[tool.name]}",
                hint="API names must be unique",
            )
        seen[tool.name] = where
        category = definition.get("category", UNCATEGORISED)
        if not isinstance(category, str) or not category.strip():
            raise InputError(f"{where} of `{path}`: `category` should be a non-empty string", hint="or leave it out")
        apis.append(Api(tool.name, category.strip(), definition, tool))
    if not apis:
        raise InputError(f"API library `{path}` holds no APIs", hint="one tool definition per line")
    return apis
