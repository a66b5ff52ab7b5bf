"""``apigen library from-python``: tool definitions from the public functions and classes of Python code.

The functions are found and their signatures typed in a child process
(``execution/signatures.py``), by the rules exec-check's workers use, so every
tool written here is one ``exec-check --functions SPEC`` can call by its name.
The same child describes the classes (``python_classes.py``): each public method
of a class is a tool of a stateful environment, written with the class's name
in ``class``. This module turns those descriptions into tools: the docstring
(Google, NumPy or reST, read by ``docstring-parser``) gives the descriptions, a
default makes a parameter optional, the module (or the class) name gives the category.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import docstring_parser

from ..errors import FunctionsError
from ..execution.environment import worker_environment
from ..execution.signatures import DescribeError
from ..execution.worker import looks_like_module
from .output import TOOL_NAME, Imported
from .python_classes import describe_python

UNTYPED_CHOICES = ("skip", "loose")
_CATEGORY_SUFFIXES = ("_tools", "_utils", "_api", "_functions")


@dataclass(frozen=True)
class PythonImport:
    """How to import: what to do with what cannot be typed, and the child's limits."""

    untyped: str = "skip"  # "skip" the function, or type the parameter "loose"ly (any JSON value)
    timeout: float = 60.0
    memory_mb: int = 2048
    pass_env: tuple[str, ...] = ()
    category: str | None = None  # one category for every tool, instead of the module's
    classes: tuple[str, ...] = ()  # only the methods of these classes (no function); every class and function when empty


def category_of(module: str) -> str:
    """``sample.math_tools`` -> ``math``: the module's own name, without a ``_tools``-like suffix, words spaced."""
    name = module.rsplit(".", 1)[-1]
    for suffix in _CATEGORY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ").strip() or "uncategorised"


def class_category(name: str) -> str:
    """``OnlineStore`` -> ``online store``, ``TwitterAPI`` -> ``twitter api``: the class's words, lower case."""
    return _WORD_BREAK.sub(" ", name).replace("_", " ").lower().strip() or "uncategorised"


_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def from_python(specs: Sequence[str], options: PythonImport) -> Imported:
    """Tools for every public function and class method of each spec (a .py file, a folder of them, or a module name)."""
    result = Imported()
    environ = worker_environment(os.environ, options.pass_env)
    seen: dict[str, str] = {}
    found_classes: set[str] = set()
    for spec in specs:
        described = _describe(spec, environ, options)
        for name, owners in sorted(described.get("ambiguous", {}).items()):
            result.notes.append(f"`{name}` is defined in several modules ({', '.join(owners)}): each is named by its module")
        classes = described.get("classes", [])
        found_classes.update(entry["name"] for entry in classes)
        chosen = [entry for entry in classes if entry["name"] in options.classes or not options.classes]
        _refuse_shared_methods(spec, chosen)
        functions = [] if options.classes else described["functions"]
        methods = [method for entry in chosen for method in entry["methods"]]
        result.notes.extend(note for entry in chosen for note in entry["notes"])
        for function in [*functions, *methods]:
            tool = _tool(function, options, result)
            if tool is None:
                result.skipped += 1
                continue
            if tool["name"] in seen:
                result.notes.append(f"`{tool['name']}` of `{spec}` is skipped: `{seen[tool['name']]}` already has that name")
                result.skipped += 1
                continue
            seen[tool["name"]] = spec
            result.tools.append(tool)
    missing = [name for name in options.classes if name not in found_classes]
    if missing:
        defined = ", ".join(f"`{name}`" for name in sorted(found_classes)) or "none"
        raise FunctionsError(
            f"no class {', '.join(f'`{name}`' for name in missing)} in {', '.join(f'`{spec}`' for spec in specs)} (classes: {defined})",
            hint="pass `--class NAME` with a class the code defines, or leave `--class` out to import every class",
        )
    return result


def _describe(spec: str, environ: dict[str, str], options: PythonImport) -> dict[str, Any]:
    """The spec's functions and classes, described in a child process; a spec that cannot be imported is an error."""
    if not os.path.exists(spec) and not looks_like_module(spec):
        raise FunctionsError(
            f"`{spec}` is neither a file, a folder nor a module name",
            hint="pass a .py file, a folder of .py files, or an importable module (e.g. `mypackage.tools`)",
        )
    try:
        return describe_python(spec, environ, options.timeout, options.memory_mb)
    except DescribeError as error:
        where = f" ({error.where})" if error.where else ""
        raise FunctionsError(
            f"cannot import `{spec}`{where}: {error.message}",
            hint="check that `python -c 'import ...'` works for it; `--import-timeout` and `--memory-mb` set the limits",
        ) from None


def _refuse_shared_methods(spec: str, classes: list[dict[str, Any]]) -> None:
    """A method name two classes of one import define: an environment holding both could not tell which to call."""
    owners: dict[str, str] = {}
    for entry in classes:
        for method in entry["methods"]:
            first = owners.setdefault(method["name"], entry["name"])
            if first != entry["name"]:
                raise FunctionsError(
                    f"`{method['name']}` is a method of both `{first}` and `{entry['name']}` in `{spec}`:"
                    " an environment with both could not tell which one a call means",
                    hint=f"pass `--class {entry['name']}` (or `--class {first}`) to import one of them, or rename one method",
                )


def _tool(function: dict[str, Any], options: PythonImport, result: Imported) -> dict[str, Any] | None:
    """One tool, or ``None`` (with a note) when the function cannot be typed and ``untyped`` is ``skip``."""
    name = str(function["name"])
    owner = function.get("class")
    where = (
        f"`{owner}.{name}` ({_shown_file(function)}:{function['line']})"
        if owner
        else f"`{name}` ({_shown_file(function)}:{function['line']})"
    )
    if function.get("problem"):
        result.notes.append(f"{where} is skipped: {function['problem']}")
        return None
    doc = docstring_parser.parse(function.get("doc") or "")
    described = {param.arg_name: (param.description or "").strip() for param in doc.params}
    properties: dict[str, Any] = {}
    required: list[str] = []
    open_object = False
    for parameter in function["parameters"]:
        problem = parameter.get("problem")
        kind = parameter["kind"]
        if problem is not None and (options.untyped == "skip" or kind == "POSITIONAL_ONLY"):
            result.notes.append(f"{where} is skipped: {problem}" + _loose_hint(kind, options))
            return None
        if kind == "VAR_POSITIONAL":
            result.notes.append(f"{where}: `*{parameter['name']}` is left out (a call names its arguments)")
            continue
        if kind == "VAR_KEYWORD":
            result.notes.append(f"{where}: `**{parameter['name']}` lets a call pass any other argument")
            open_object = True
            continue
        if problem is not None:
            result.notes.append(f"{where}: {problem}; typed as any JSON value")
        schema = dict(parameter.get("schema") or {})
        if parameter.get("has_default"):
            schema = _optional(schema, parameter)
        else:
            required.append(parameter["name"])
        text = described.get(parameter["name"])
        if text:
            schema = {**schema, "description": text}
        properties[parameter["name"]] = schema
    for note in function.get("notes", []):
        result.notes.append(f"{where}: {note}")
    if not TOOL_NAME.match(name):
        result.notes.append(f"{where}: the name `{name}` has characters some endpoints refuse in a tool name")
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if open_object:
        parameters["additionalProperties"] = True
    tool: dict[str, Any] = {"name": name, "description": _description(doc), "parameters": parameters}
    tool["category"] = options.category or (class_category(owner) if owner else category_of(str(function["module"])))
    if owner:
        tool["class"] = owner
    return tool


def _description(doc: docstring_parser.Docstring) -> str:
    """The docstring's text without its sections: the first paragraph, then the rest.

    docstring-parser's short description is the first line only; when no blank line follows it,
    the lines after it are the same paragraph (a first sentence wrapped at 79 columns), so they
    join it with spaces instead of starting a paragraph of their own.
    """
    short = (doc.short_description or "").strip()
    rest = (doc.long_description or "").strip()
    if short and rest and not doc.blank_after_short_description:
        continued, _, rest = rest.partition("\n\n")
        short = " ".join([short, *(line.strip() for line in continued.splitlines() if line.strip())])
    return "\n\n".join(part for part in (short, rest.strip()) if part)


def _optional(schema: dict[str, Any], parameter: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema: with its default; ``X | None = None`` is just ``X`` (a null means "not given")."""
    if "default" in parameter and parameter["default"] is None:
        options = schema.get("anyOf")
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            extra = {key: value for key, value in schema.items() if key != "anyOf"}
            schema = {**rest[0], **extra} if len(rest) == 1 else {"anyOf": rest, **extra}
        return schema
    if "default" in parameter:
        return {**schema, "default": parameter["default"]}
    return schema


def _loose_hint(kind: str, options: PythonImport) -> str:
    if kind == "POSITIONAL_ONLY" or options.untyped != "skip":
        return ""
    return " (pass `--untyped loose` to keep it, typed as any JSON value)"


def _shown_file(function: dict[str, Any]) -> str:
    """The function's file, relative to the working folder when it is inside it."""
    file = str(function.get("file") or "")
    if not file:
        return str(function["module"])
    relative = os.path.relpath(file)
    return file if relative.startswith("..") else relative
