"""Describing Python code's classes (each public method a tool) in the child that describes its functions.

A stateful environment is one or more classes whose public methods are its tools (the README's
"environment convention"). ``library from-python`` reads them as it reads functions, and in the
same child process: this file, run by path, loads ``execution/signatures.py`` by path, lets it
import the code and describe its functions exactly as before, then describes the classes of the
same modules with the same ``describe``. The code is imported once, under the same limits, and no
class is instantiated.

What counts, in the child:

- a class is one whose public name is bound in a module of the library and which is defined
  there (its ``__module__``), as for functions; an exception or an enum is a type, not an
  environment, and is left out;
- its tools are the public functions and static methods it defines, or inherits from a class
  defined in the library (not ``object``'s, ``dict``'s or pydantic's); ``state`` and
  ``load_state`` belong to the convention and are not tools, nor is a ``classmethod`` (it makes or
  configures the class, it does not act on one environment's state);
- ``self`` is not a parameter.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # run by path: do not let apigen's own modules shadow the user's
    import os as _os

    if sys.path and _os.path.abspath(sys.path[0] or ".") == _os.path.dirname(_os.path.abspath(__file__)):
        sys.path[0] = _os.getcwd()

import enum
import importlib.util
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, cast

SCRIPT = str(Path(__file__))
_SIGNATURES = Path(__file__).resolve().parent.parent / "execution" / "signatures.py"
#: Methods of the environment convention: how the state gets in and out, never a tool.
CONVENTION_METHODS = frozenset({"state", "load_state"})


# --- in the child ---------------------------------------------------------------------


def describe_classes(modules: Iterable[ModuleType], describe: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """Every class the modules define, with its methods described by ``describe`` (signatures.py's)."""
    modules = list(modules)
    homes = {module.__name__ for module in modules}
    seen: set[int] = set()
    described = []
    for module in modules:
        for attribute, value in list(vars(module).items()):
            if attribute.startswith("_") or not inspect.isclass(value) or value.__module__ != module.__name__:
                continue
            if id(value) in seen or issubclass(value, (BaseException, enum.Enum)):
                continue
            seen.add(id(value))
            methods, notes = _methods(value, homes, describe)
            described.append(
                {
                    "name": value.__name__,
                    "module": value.__module__,
                    "file": _source_file(value),
                    "line": _class_line(value),
                    "methods": methods,
                    "notes": notes,
                }
            )
    described.sort(key=lambda entry: (entry["file"], entry["line"], entry["name"]))
    return described


def _methods(kind: type, homes: set[str], describe: Callable[[Any], dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The class's tools, most derived definition first, and notes on public methods that are not tools."""
    methods: list[dict[str, Any]] = []
    notes: list[str] = []
    taken: set[str] = set()
    for owner in kind.__mro__:
        if owner is object or owner.__module__ not in homes:
            continue  # what a class inherits from outside the library is not the library's tool
        for name, raw in vars(owner).items():
            if name.startswith("_") or name in taken:
                continue
            taken.add(name)
            if name in CONVENTION_METHODS:
                continue
            if isinstance(raw, classmethod):
                notes.append(f"`{kind.__name__}.{name}` is a classmethod, not a tool")
                continue
            takes_self = inspect.isfunction(raw)
            function = raw.__func__ if isinstance(raw, staticmethod) else raw
            if not (takes_self or isinstance(raw, staticmethod)) or not callable(function):
                continue  # a property, a constant, a nested class: not a method
            entry = describe(function)
            parameters = entry.get("parameters", [])
            if takes_self and not entry.get("problem"):
                if parameters and parameters[0]["kind"] in ("POSITIONAL_OR_KEYWORD", "POSITIONAL_ONLY"):
                    entry["parameters"] = parameters[1:]
                else:
                    entry["problem"] = "it takes no `self`, so an instance cannot call it"
            entry.update(name=name, module=kind.__module__, file=_source_file(function), line=_code_line(function))
            entry["class"] = kind.__name__
            methods.append(entry)
    return methods, notes


def _source_file(value: Any) -> str:
    try:
        return inspect.getsourcefile(inspect.unwrap(value)) or ""
    except (TypeError, ValueError):
        return ""


def _class_line(kind: type) -> int:
    try:
        return inspect.getsourcelines(kind)[1]
    except Exception:  # no source (a class made at run time), or source inspect cannot parse: order it first
        return 0


def _code_line(function: Any) -> int:
    code = getattr(inspect.unwrap(function), "__code__", None)
    return int(getattr(code, "co_firstlineno", 0))


def _load_by_path(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    """signatures.py's child, which also answers ``classes``: the same import, the same reply channel."""
    signatures = _load_by_path("_apigen_signatures", _SIGNATURES)
    describe_functions = signatures.describe_library

    def describe_library(spec: str, loader: Any) -> dict[str, Any]:
        reply = cast(dict[str, Any], describe_functions(spec, loader))
        library, _shown = loader.load_functions(spec)  # imported already: the same modules, nothing runs again
        modules = [sys.modules[name] for name in sorted(library._modules) if name in sys.modules]
        reply["classes"] = describe_classes(modules, signatures.describe)
        return reply

    signatures.describe_library = describe_library
    return int(signatures.main())


# --- the parent side ------------------------------------------------------------------


def describe_python(spec: str, environ: dict[str, str], timeout: float, memory_mb: int) -> dict[str, Any]:
    """``{"functions", "ambiguous", "classes"}`` of the code ``spec`` names, from a child; raises ``DescribeError``."""
    from ..execution.signatures import run_describe  # here, not on top: this file also runs by path, outside the package

    return run_describe(spec, environ, timeout, memory_mb, script=SCRIPT)


if __name__ == "__main__":
    sys.exit(main())
