"""Reading an API description file (JSON or YAML) and following its local ``$ref`` s.

Shared by the OpenAPI importer; kept apart because it knows nothing of OpenAPI:
a document, JSON pointers into it, and errors that name the file and the pointer.
YAML is read with ``yaml.safe_load`` only: a spec is data, never objects to build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..rows.jsonl import json_error_text, loads

_MAX_BYTES = 64 * 1024 * 1024


def read_document(path: str) -> Any:
    """The parsed file: JSON when it looks like JSON, YAML otherwise; ``InputError`` naming the line when it is neither."""
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
    if text.lstrip().startswith("{") or path.endswith(".json"):
        try:
            return loads(text)
        except ValueError as error:
            raise InputError(f"`{path}` is not valid JSON: {json_error_text(error)}", hint="fix the file") from None
    import yaml

    try:
        return yaml.load(text, Loader=_safe_loader())  # a SafeLoader: data only, never Python objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(f"`{path}` is not valid YAML{where}: {problem}", hint="fix the file") from None


def _safe_loader() -> Any:
    """``yaml.SafeLoader`` with dates and times left as strings, as JSON would carry them (built once, on first use)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        # libyaml's SafeLoader when the wheel has it (several times faster), the pure-Python one otherwise.
        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class Loader(base):  # type: ignore[valid-type,misc]
            pass

        Loader.yaml_implicit_resolvers = {
            key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        _LOADER = Loader
    return _LOADER


_LOADER: Any = None


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
