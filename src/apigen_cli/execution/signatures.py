"""Describing a Python library's functions (signatures as JSON Schema) in a child process.

``apigen library from-python`` must import the user's modules to see their
functions, and importing is running their code. This module does it the way the
exec-check workers do, so it runs no more of it than an import does:

- in a subprocess started by path (``python .../signatures.py SPEC``), with the
  workers' environment (the base variables and those passed), memory limit, no core
  dumps, and a time limit the parent enforces by killing its process tree; like a
  worker it is a subreaper, and ends what the import started before it exits;
- with the worker's loader (``worker.load_functions``), hence the same rule for what
  is public: a function whose name has no leading ``_``, defined (not imported) in
  a module of the library;
- without calling any library function, and without ``eval``: string annotations
  (``from __future__ import annotations``) are parsed with ``ast`` and only names,
  attributes, subscripts of known generics (``list``, ``typing.Optional``, ...),
  ``|`` and literals are resolved. ``typing.get_type_hints`` would ``eval`` them.

Only the standard library (and orjson, through the worker) is needed in the child,
so it starts as fast as a worker. pydantic models are described with their own
``model_json_schema`` when pydantic is importable in the user's environment.

The child writes one JSON document on a private descriptor (a file the parent reads
once the child has exited): ``{"functions": [...]}`` or ``{"error": {"type", "message",
"where"}}``. What the import prints goes to a pipe of which the parent keeps only the end.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # run by path: do not let apigen's own modules shadow the user's
    import os as _os

    if sys.path and _os.path.abspath(sys.path[0] or ".") == _os.path.dirname(_os.path.abspath(__file__)):
        sys.path[0] = _os.getcwd()

import ast
import builtins
import collections.abc
import dataclasses
import enum
import importlib.util
import inspect
import json
import os
import subprocess
import types
import typing
from pathlib import Path
from typing import Any

SCRIPT = str(Path(__file__))
_MAX_DEPTH = 12


class NoJsonForm(Exception):
    """An annotation that has no JSON Schema form; the message says which and why."""


# --- annotations to JSON Schema (in the child) ----------------------------------------

_SCALARS: dict[Any, str] = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
_ARRAYS: tuple[Any, ...] = (list, set, frozenset, collections.abc.Sequence, collections.abc.MutableSequence)
_ARRAYS += (collections.abc.Set, collections.abc.Iterable, collections.abc.Collection, collections.abc.MutableSet)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
# What a string annotation may subscript or `|`: the standard generics, never a user object.
_GENERIC_HOMES = ("builtins", "typing", "typing_extensions", "collections.abc", "types")


class SafeAnnotations:
    """Turns string annotations into typing objects without ``eval``: names are looked up, nothing is called."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def resolve(self, text: str) -> Any:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            raise NoJsonForm(f"the annotation {text!r} is not a Python expression") from None
        return self._node(tree.body, 0)

    def _node(self, node: ast.expr, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise NoJsonForm("the annotation nests too deeply")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return self.resolve(node.value)  # a forward reference inside an annotation
            if node.value is None:
                return None
            raise NoJsonForm(f"{node.value!r} is not a type")
        if isinstance(node, ast.Name):
            if node.id in self.namespace:
                return self.namespace[node.id]
            if hasattr(builtins, node.id):
                return getattr(builtins, node.id)
            raise NoJsonForm(f"the name `{node.id}` in an annotation is not defined in its module")
        if isinstance(node, ast.Attribute):
            owner = self._node(node.value, depth + 1)
            if not isinstance(owner, types.ModuleType) and not inspect.isclass(owner):
                raise NoJsonForm(f"`{ast.unparse(node)}` is not a module or class attribute")
            try:
                return inspect.getattr_static(owner, node.attr)
            except AttributeError:
                raise NoJsonForm(f"`{ast.unparse(node)}` is not defined") from None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            left, right = self._node(node.left, depth + 1), self._node(node.right, depth + 1)
            return typing.Union[left, right]
        if isinstance(node, ast.Subscript):
            origin = self._node(node.value, depth + 1)
            home = getattr(origin, "__module__", "")
            if home not in _GENERIC_HOMES:
                raise NoJsonForm(f"`{ast.unparse(node)}` subscripts something other than a standard generic")
            index = node.slice
            if origin is typing.Literal or getattr(origin, "_name", None) == "Literal":
                items = index.elts if isinstance(index, ast.Tuple) else [index]
                values = []
                for item in items:
                    if not isinstance(item, ast.Constant):
                        raise NoJsonForm(f"`{ast.unparse(node)}`: Literal takes constants only")
                    values.append(item.value)
                return typing.Literal[tuple(values)]
            if isinstance(index, ast.Tuple):
                arguments: Any = tuple(self._argument(item, depth + 1) for item in index.elts)
            else:
                arguments = self._argument(index, depth + 1)
            try:
                return origin[arguments]
            except TypeError as error:
                raise NoJsonForm(f"`{ast.unparse(node)}`: {error}") from None
        raise NoJsonForm(f"`{ast.unparse(node)}` is not a plain type annotation")

    def _argument(self, node: ast.expr, depth: int) -> Any:
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return ...
        if isinstance(node, ast.Constant) and not isinstance(node.value, str) and node.value is not None:
            return node.value  # Annotated metadata such as Annotated[int, 3]
        if isinstance(node, ast.List):
            return [self._node(item, depth) for item in node.elts]
        return self._node(node, depth)


class SchemaMaker:
    """JSON Schema for Python annotations; each class is followed once per path, so cycles end."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def schema(self, annotation: Any, namespace: dict[str, Any], trail: tuple[Any, ...] = ()) -> dict[str, Any]:
        if isinstance(annotation, str):
            annotation = SafeAnnotations(namespace).resolve(annotation)
        if isinstance(annotation, typing.ForwardRef):
            annotation = SafeAnnotations(namespace).resolve(annotation.__forward_arg__)
        if len(trail) > _MAX_DEPTH:
            raise NoJsonForm("the type nests too deeply")
        if annotation is None:
            return {"type": "null"}
        if annotation is typing.Any or annotation is object:
            return {}
        if annotation in _SCALARS:
            return {"type": _SCALARS[annotation]}
        supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            return self.schema(supertype, namespace, trail)
        origin = typing.get_origin(annotation)
        arguments = typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.schema(arguments[0], namespace, trail)
        if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
            options = [self.schema(option, namespace, trail) for option in arguments]
            return {"anyOf": options}
        if origin is typing.Literal:
            return _enum_schema(list(arguments), f"Literal{list(arguments)}")
        if annotation in _ARRAYS or origin in _ARRAYS:
            schema: dict[str, Any] = {"type": "array"}
            if arguments:
                schema["items"] = self.schema(arguments[0], namespace, trail)
            return schema
        if annotation is tuple or origin is tuple:
            if not arguments:
                return {"type": "array"}
            if len(arguments) == 2 and arguments[1] is Ellipsis:
                return {"type": "array", "items": self.schema(arguments[0], namespace, trail)}
            items = [self.schema(item, namespace, trail) for item in arguments]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        if annotation in _MAPPINGS or origin in _MAPPINGS:
            schema = {"type": "object"}
            if arguments:
                if arguments[0] is not str:
                    raise NoJsonForm(f"`{_shown(annotation)}` has keys that are not strings, which JSON objects cannot hold")
                schema["additionalProperties"] = self.schema(arguments[1], namespace, trail)
            return schema
        if inspect.isclass(annotation):
            return self._class_schema(annotation, trail)
        raise NoJsonForm(f"`{_shown(annotation)}` has no JSON form")

    def _class_schema(self, kind: type, trail: tuple[Any, ...]) -> dict[str, Any]:
        if kind in trail:
            self.notes.append(f"`{kind.__qualname__}` contains itself; the inner one is typed as any object")
            return {"type": "object"}
        trail = (*trail, kind)
        namespace = _module_namespace(kind)
        if issubclass(kind, enum.Enum):
            return _enum_schema([member.value for member in kind], kind.__qualname__)
        if typing.is_typeddict(kind):
            hints = _own_annotations(kind)
            required = getattr(kind, "__required_keys__", frozenset(hints))
            properties = {name: self.schema(hint, namespace, trail) for name, hint in hints.items()}
            return _object(kind, properties, [name for name in properties if name in required])
        if dataclasses.is_dataclass(kind):
            properties, required = {}, []
            for field in dataclasses.fields(kind):
                if not field.init:
                    continue
                properties[field.name] = self.schema(field.type, namespace, trail)
                missing = dataclasses.MISSING
                if field.default is missing and field.default_factory is missing:
                    required.append(field.name)
                elif field.default is not missing and _is_json(field.default):
                    properties[field.name]["default"] = field.default
            return _object(kind, properties, required)
        pydantic = sys.modules.get("pydantic")
        base = getattr(pydantic, "BaseModel", None) if pydantic is not None else None
        if isinstance(base, type) and issubclass(kind, base):
            try:
                produced = kind.model_json_schema()  # type: ignore[attr-defined]
            except Exception as error:
                raise NoJsonForm(f"pydantic cannot describe `{kind.__qualname__}`: {error}") from None
            return inline_refs(produced, self.notes, kind.__qualname__)
        raise NoJsonForm(
            f"`{kind.__qualname__}` is a class with no JSON form (not a dataclass, TypedDict, Enum or pydantic model)"
        )


def _object(kind: type, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    doc = kind.__dict__.get("__doc__")  # its own, not one inherited from dict or object
    if (
        isinstance(doc, str) and doc.strip() and not doc.startswith(kind.__name__ + "(")
    ):  # dataclasses make up a docstring from the signature
        schema["description"] = doc.strip().split("\n\n")[0]
    return schema


def _own_annotations(kind: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(kind.__mro__):
        hints.update(klass.__dict__.get("__annotations__", {}))
    return hints


def _module_namespace(value: Any) -> dict[str, Any]:
    module = sys.modules.get(getattr(value, "__module__", "") or "")
    return dict(vars(module)) if module is not None else {}


def _enum_schema(values: list[Any], shown: str) -> dict[str, Any]:
    if not values or not all(_is_json(value) for value in values):
        raise NoJsonForm(f"`{shown}` has values that are not JSON")
    kinds = {_SCALARS.get(type(value)) for value in values}
    schema: dict[str, Any] = {"enum": values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    return schema


def inline_refs(schema: dict[str, Any], notes: list[str], shown: str) -> dict[str, Any]:
    """A pydantic schema with its ``#/$defs/...`` references replaced by what they point to."""
    definitions = schema.get("$defs", {})

    def walk(value: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(value, list):
            return [walk(item, seen) for item in value]
        if not isinstance(value, dict):
            return value
        reference = value.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            name = reference[len("#/$defs/") :]
            if name in seen or name not in definitions:
                notes.append(f"`{shown}`: the reference to `{name}` is cyclic; the inner one is typed as any object")
                return {"type": "object"}
            return walk(definitions[name], (*seen, name))
        return {key: walk(item, seen) for key, item in value.items() if key not in ("$defs", "title")}

    return typing.cast(dict[str, Any], walk(schema, ()))


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _shown(annotation: Any) -> str:
    if inspect.isclass(annotation):
        return annotation.__qualname__
    return str(annotation).replace("typing.", "")


# --- one function (in the child) ------------------------------------------------------


def describe(function: Any) -> dict[str, Any]:
    """A function's name, docstring and parameters; a parameter that cannot be typed carries a ``problem``."""
    maker = SchemaMaker()
    target = inspect.unwrap(function)
    namespace = dict(getattr(target, "__globals__", {}))
    parameters: list[dict[str, Any]] = []
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as error:
        return {"doc": inspect.getdoc(function) or "", "parameters": [], "problem": f"it has no signature ({error})"}
    for parameter in signature.parameters.values():
        entry: dict[str, Any] = {"name": parameter.name, "kind": parameter.kind.name}
        if parameter.default is not parameter.empty:
            entry["has_default"] = True
            if _is_json(parameter.default):
                entry["default"] = parameter.default
            elif isinstance(parameter.default, enum.Enum) and _is_json(parameter.default.value):
                entry["default"] = parameter.default.value
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            entry["problem"] = f"it takes {'*' if parameter.kind == parameter.VAR_POSITIONAL else '**'}{parameter.name}"
        elif parameter.kind == parameter.POSITIONAL_ONLY:
            entry["problem"] = f"it takes `{parameter.name}` positional-only, which a call cannot name"
        elif parameter.annotation is parameter.empty:
            entry["problem"] = f"`{parameter.name}` has no annotation"
        else:
            try:
                entry["schema"] = maker.schema(parameter.annotation, namespace)
            except NoJsonForm as error:
                entry["problem"] = f"`{parameter.name}`: {error}"
            except RecursionError:
                entry["problem"] = f"`{parameter.name}`: the type nests too deeply"
        parameters.append(entry)
    return {"doc": inspect.getdoc(function) or "", "parameters": parameters, "notes": maker.notes}


def describe_library(spec: str, loader: Any) -> dict[str, Any]:
    """Every public function of the library, under the name exec-check's workers call it by."""
    library, _shown_spec = loader.load_functions(spec)
    by_function: dict[int, list[str]] = {}
    for name, function in library.functions.items():
        by_function.setdefault(id(function), []).append(name)
    described = []
    for names in by_function.values():
        function = library.functions[names[0]]
        bare = [name for name in names if "." not in name]
        module = getattr(function, "__module__", "") or ""
        qualified = min((name for name in names if "." in name), key=len, default=names[0])
        entry = describe(function)
        entry.update(
            name=bare[0] if bare else qualified,
            qualified=qualified,
            module=module,
            file=inspect.getsourcefile(function) or "",
            line=_first_line(function),
        )
        described.append(entry)
    described.sort(key=lambda entry: (entry["file"], entry["line"]))
    return {"functions": described, "ambiguous": library.ambiguous}


def _first_line(function: Any) -> int:
    code = getattr(inspect.unwrap(function), "__code__", None)
    return int(getattr(code, "co_firstlineno", 0))


def _load_worker() -> Any:
    """The worker module, loaded by path under a private name (it needs no package)."""
    spec = importlib.util.spec_from_file_location("_apigen_worker", Path(__file__).with_name("worker.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_apigen_worker"] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    worker = _load_worker()
    replies = os.dup(1)
    os.dup2(2, 1)  # what the library prints on import goes to stderr, never into the reply
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull)  # noqa: SIM115 (lives as long as the process)
    worker._die_with_parent()
    descendants = worker.descendants
    descendants.become_subreaper()  # what the import starts (a daemon, double-forked) stays below us
    worker._no_core_dumps()
    worker.isolation.give_up_reading_others()  # as root, the import could otherwise read apigen's memory
    worker._limit_memory(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    try:
        reply: dict[str, Any] = describe_library(sys.argv[1], worker)
    except worker.LoadError as error:
        reply = {"error": {"type": error.kind, "message": error.message, "where": error.where}}
    except BaseException as error:  # what the import machinery itself raised
        reply = {"error": {"type": type(error).__name__, "message": str(error), "where": ""}}
    data = json.dumps(reply, default=repr).encode()
    with os.fdopen(replies, "wb") as out:
        out.write(data)
    descendants.end_strays()  # nothing the import started outlives the description
    return 0


# --- the parent side ------------------------------------------------------------------


class DescribeError(Exception):
    """The library could not be described: it did not import, overran its time, or died."""

    def __init__(self, kind: str, message: str, where: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.where = where


_MAX_REPLY_BYTES = 256 * 1024 * 1024


def run_describe(spec: str, environ: dict[str, str], timeout: float, memory_mb: int, script: str = SCRIPT) -> dict[str, Any]:
    """Describe the library in a child process; raises ``DescribeError``. ``environ`` is the child's whole environment.

    ``script`` is the child: this file, or one that extends its reply (``library/python_classes.py``).

    The reply comes in a file; what the import prints goes through a pipe of which only the
    last 64 KB are kept (a module may print gigabytes). The parent waits for the child to
    exit, never for its pipes to close: a daemon the import started holds them open, and is
    ended by the child (a subreaper) before it exits, or with it at the time limit.
    """
    import contextlib
    import signal
    import tempfile

    from .descendants import kill_tree
    from .isolation import hide_this_process
    from .output_tail import Tail

    hide_this_process()  # the import runs the user's code: it must not read our environment or memory

    output = Tail("its output")
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as replies:
        try:
            process = subprocess.Popen(
                [sys.executable, script, spec, str(memory_mb)],
                stdin=subprocess.DEVNULL,
                stdout=replies,
                stderr=write_end,
                env=environ,
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        output.follow(read_end)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)  # the child and all below it, in a session of its own or not
            process.wait()
            raise DescribeError("Timeout", f"importing `{spec}` took longer than {timeout:g} s") from None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # a child that died before ending its strays leaves them here
        replies.seek(0)
        data = replies.read(_MAX_REPLY_BYTES + 1)
    output.catch_up()
    try:
        if len(data) > _MAX_REPLY_BYTES:
            raise ValueError("too large")
        reply = json.loads(data)
    except ValueError:
        said = output.ends() or f"; exit status {process.returncode}"
        raise DescribeError("Crashed", f"the process importing `{spec}` died{said}") from None
    if "error" in reply:
        error = reply["error"]
        raise DescribeError(str(error.get("type")), str(error.get("message")), str(error.get("where") or ""))
    return typing.cast(dict[str, Any], reply)


if __name__ == "__main__":
    sys.exit(main())
