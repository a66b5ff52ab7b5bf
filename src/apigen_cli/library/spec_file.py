"""Reading an API description file (JSON or YAML) and following its local ``$ref`` s.

Shared by the OpenAPI importer; kept apart because it knows nothing of OpenAPI:
a document, JSON pointers into it, and errors that name the file and the pointer.
YAML is read as YAML 1.2 by ruamel.yaml's safe loader: a spec is data, never objects to build,
and only data that JSON can hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..rows.jsonl import json_error_text, loads

_MAX_BYTES = 64 * 1024 * 1024


def read_document(path: str) -> Any:
    """The parsed file, JSON or YAML whatever its name says; ``InputError`` naming the line when it is neither."""
    try:
        size = Path(path).stat().st_size
        if size > _MAX_BYTES:
            raise InputError(f"`{path}` is {size // (1024 * 1024)} MB, more than an API description should be")
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"spec `{path}` does not exist", hint="pass the path of an OpenAPI or Swagger file (JSON or YAML)"
        ) from None
    except IsADirectoryError:
        raise InputError(f"spec `{path}` is a folder, not a file", hint="pass one OpenAPI or Swagger file") from None
    except OSError as error:
        raise InputError(f"spec `{path}` cannot be read: {error.strerror or error}") from None
    text = data.decode("utf-8-sig", "replace")
    # By content, not by name: published specs have YAML under a `.json` name. JSON is YAML 1.2,
    # so a file that looks like JSON is read by the fast JSON parser first.
    if text.lstrip().startswith(("{", "[")):
        try:
            return loads(text)
        except ValueError as error:
            json_problem = _json_problem(error)
        try:
            document = _load_yaml(text)  # flow-style YAML, `{openapi: 3.0.0, ...}`, starts with `{` too
        except _NotYaml:
            raise InputError(f"`{path}` is not valid JSON: {json_problem}", hint="fix the file") from None
    else:
        try:
            document = _load_yaml(text)
        except _NotYaml as error:
            read_as = " (read as YAML: it does not start with `{`)" if path.lower().endswith(".json") else ""
            raise InputError(f"`{path}` is not valid YAML{error}{read_as}", hint="fix the file") from None
    _check_alias_expansion(path, document)
    return document


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno}, column {error.colno}"
    return json_error_text(error)


class _NotYaml(Exception):
    """What is wrong, and where: `` at line 2, column 5: found ...``."""


def _load_yaml(text: str) -> Any:
    """YAML 1.2, as JSON sees it: ``16:9``, ``yes`` and ``off`` stay strings, ``0777`` is 777, dates stay text."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return _yaml_reader().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _NotYaml(f"{where}: {error.problem or error.context or str(error).splitlines()[0]}") from None
    except YAMLError as error:
        raise _NotYaml(f": {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise _NotYaml(": it is nested too deeply to be an API description") from None


def _yaml_reader() -> Any:
    """ruamel.yaml's safe, pure-Python YAML 1.2 reader, its tags limited to what JSON can hold (built once, on first use).

    Not PyYAML: it reads YAML 1.1, where the unquoted enum value ``16:9`` is the
    sexagesimal integer 969 and ``no`` is false. Not libyaml's parser either: it
    scans ``16:9`` in a flow list as an error.
    """
    global _READER
    if _READER is None:
        from ruamel.yaml import YAML
        from ruamel.yaml.constructor import ConstructorError, SafeConstructor

        def no_json_form(constructor: Any, node: Any) -> Any:
            raise ConstructorError(None, None, f"the tag `{node.tag}` makes a value JSON cannot hold", node.start_mark)

        class JsonConstructor(SafeConstructor):
            pass

        JsonConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
        for tag in ("binary", "set", "omap", "pairs"):
            JsonConstructor.add_constructor(f"tag:yaml.org,2002:{tag}", no_json_form)
        reader = YAML(typ="safe", pure=True)
        reader.Constructor = JsonConstructor
        reader.allow_duplicate_keys = True  # the last one wins, as with JSON (and as before)
        _READER = reader
    return _READER


_READER: Any = None

# A value reached through aliases counts once per alias: a 779-byte "billion laughs" expands to a
# billion strings, which the tools written would spell out. Up to this many values, or ten times
# the values written in the file, is an ordinary use of anchors.
_MAX_EXPANDED_VALUES = 1_000_000
_MAX_EXPANSION = 10


def _check_alias_expansion(path: str, document: Any) -> None:
    """``InputError`` when aliases make the document contain itself or expand it far past its own size."""
    sizes: dict[int, int] = {}  # id of a list or mapping -> its values, aliases expanded
    open_nodes: set[int] = set()  # the lists and mappings being counted: the way down to the current one
    written = 0
    stack: list[tuple[Any, bool]] = [(document, False)] if isinstance(document, (dict, list)) else []
    while stack:
        node, counted = stack.pop()
        children = list(node.values()) if isinstance(node, dict) else node
        if counted:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes.get(id(child), 1) for child in children)
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            raise InputError(
                f"`{path}` contains itself through a YAML alias", hint="fix the file: an alias may not name a value it is inside"
            )
        open_nodes.add(id(node))
        written += 1 + len(children)
        stack.append((node, True))
        stack.extend((child, False) for child in children if isinstance(child, (dict, list)))
    expanded = sizes.get(id(document), 1)
    if expanded > max(_MAX_EXPANDED_VALUES, _MAX_EXPANSION * written):
        raise InputError(
            f"`{path}` holds {written:,} values, which its YAML aliases expand to {expanded:,} (a 'billion laughs')",
            hint="fix the file: write the repeated parts out, or use `$ref`s",
        )


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) to ``parts``: ``/paths/~1pets~1{id}/get``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


class Document:
    """A parsed spec and its file name, with ``$ref`` lookup that names where it went wrong."""

    def __init__(self, path: str, root: Any) -> None:
        self.path = path
        self.root = root

    def error(self, where: str, message: str, hint: str | None = None) -> InputError:
        return InputError(f"`{self.path}` at `{where or '/'}`: {message}", hint=hint or "fix the spec")

    def lookup(self, reference: str, where: str) -> Any:
        """The value a local ``$ref`` (``#/components/schemas/Pet``) points to."""
        if not reference.startswith("#"):
            raise self.error(
                where,
                f"the $ref `{reference}` points into another file, which apigen does not follow",
                hint="bundle the spec into one file first (for example `npx @redocly/cli bundle`)",
            )
        node = self.root
        for raw in reference[1:].split("/")[1:] if reference != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise self.error(where, f"the $ref `{reference}` points to nothing")
        return node

    def deref(self, value: Any, where: str, seen: tuple[str, ...] = ()) -> tuple[Any, str]:
        """Follow ``$ref`` s until a value that is not one; returns it and the pointer it lives at."""
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            reference = value["$ref"]
            if reference in seen:
                raise self.error(where, f"the $ref `{reference}` refers back to itself")
            seen = (*seen, reference)
            value = self.lookup(reference, where)
            where = reference[1:]
        return value, where
