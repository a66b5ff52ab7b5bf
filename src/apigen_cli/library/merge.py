"""``apigen library merge``: several API libraries as one, every name unique.

An API that appears twice with the same definition is kept once. Two different
APIs with one name keep their definitions (and ``http`` bindings) and the later
one is renamed ``name_2``; a renamed Python function is noted, since exec-check's
workers call it by its own name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import InputError
from ..problems import RowProblem
from ..schema.tools import compile_tool
from .loader import read_definitions
from .output import Imported, UniqueNames


def merge(paths: Sequence[str]) -> Imported:
    """The APIs of every library in ``paths``, in order, with clashing names renamed."""
    result = Imported()
    names = UniqueNames()
    kept: dict[str, tuple[bytes, str]] = {}  # name -> (definition bytes, where)
    for path in paths:
        for position, (where, definition) in enumerate(read_definitions(path), start=1):
            place = f"{where} of `{path}`"
            try:
                tool = compile_tool(definition, position)
            except RowProblem as error:
                raise InputError(
                    f"{place}: {error.problem.message}", hint="fix it, or run `apigen library check` on the file"
                ) from None
            key = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)
            if tool.name in kept and kept[tool.name][0] == key:
                result.notes.append(f"{place}: `{tool.name}` is the same API as on {kept[tool.name][1]}; kept once")
                result.skipped += 1
                continue
            name = names.claim(tool.name)
            if name != tool.name:
                definition = _renamed(definition, name)
                note = f"{place}: `{tool.name}` clashes with the API on {kept[tool.name][1]}; renamed `{name}`"
                if not _has_binding(definition):
                    note += " (it has no `http` binding: exec-check's workers call a Python function by its own name)"
                result.notes.append(note)
            kept.setdefault(tool.name, (key, place))
            kept.setdefault(name, (key, place))
            result.tools.append(definition)
    return result


def _renamed(definition: dict[str, Any], name: str) -> dict[str, Any]:
    if isinstance(definition.get("function"), dict):
        return {**definition, "function": {**definition["function"], "name": name}}
    return {**definition, "name": name}


def _has_binding(definition: dict[str, Any]) -> bool:
    body = definition.get("function")
    return "http" in definition or (isinstance(body, dict) and "http" in body)
