"""One conversation's environment: fresh instances of a row's classes, their tools, their state.

A row names its environment as ``{"ClassName": {config...}, ...}``. Each class is made
with no arguments and its initial state loaded by ``load_state(config)`` when it has
one, else by ``_load_scenario(config)`` (the convention of BFCL's multi-turn classes,
so that those run as they are), else the instance is made as ``ClassName(**config)``.

The tools are the instances' public methods (no leading ``_``; ``state`` and
``load_state`` are the environment's own). A tool name two classes of one row both
define would make a call mean two things: the session refuses to start.

Pure given the classes: the worker runs it in the process that imported them, and
anything else (a replay in-process, a test) can run it the same way. A row's defect
is a ``RowProblem`` with its own code; a tool's exception is the result of its call.
"""

from __future__ import annotations

import copy
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..problems import RowProblem
from .binding import Binding, exception_text, type_name
from .state import DEFAULT_LIMITS, Limits, Reading, StateError, read_state, state_of

#: Method names that belong to the environment's machinery, never tools.
NOT_TOOLS = frozenset({"state", "load_state"})
#: How an initial state is loaded, in order of preference: a method called with the config.
LOADERS = ("load_state", "_load_scenario")


class ToolResult(NamedTuple):
    """A tool call's end: ``value`` when ``ok``, else a ``code`` (``no_implementation``,
    ``invalid_arguments``, ``exception``) with the error's type and message."""

    ok: bool
    value: Any = None
    code: str = ""
    error_type: str = ""
    message: str = ""


class Session:
    """Fresh instances of ``environment``'s classes (from ``classes``, by name), ready for calls.

    Raises ``RowProblem`` when the environment cannot start: ``environment_not_object``,
    ``unknown_environment_class``, ``environment_config_not_object``,
    ``environment_load_error``, ``ambiguous_tool``.

    Each class gets a deep copy of its config (``copy_config``): BFCL's classes keep the
    scenario's own lists and change them, which would change the row for the next session.
    The worker, whose config was just decoded for this one session, skips the copy.
    """

    def __init__(
        self,
        classes: Mapping[str, type],
        environment: Any,
        *,
        limits: Limits = DEFAULT_LIMITS,
        copy_config: bool = True,
        defaults: bool = False,
    ) -> None:
        self.limits = limits
        self.instances = make_instances(classes, environment, copy_config=copy_config, defaults=defaults)
        self.tools = tools_of(self.instances)
        self._bindings: dict[str, Binding] = {}
        self._readings: dict[str, Reading] = {}
        self._last: dict[str, Any] | None = None

    def state_again(self) -> dict[str, Any]:
        """``state``, but the very dict of the read before when no instance's state changed (``read_state``).

        For a session that reads its state after every call: an unchanged state costs no walk, and
        ``is`` tells it. The dict returned is shared with the next reads: never change it.
        """
        try:
            readings = {
                name: read_state(instance, root=name, limits=self.limits, previous=self._readings.get(name))
                for name, instance in sorted(self.instances.items())
            }
        except StateError as error:
            raise RowProblem("environment_state_error", f"the state cannot be compared: {error}") from None
        if self._last is None or any(reading is not self._readings.get(name) for name, reading in readings.items()):
            self._last = {name: reading.state for name, reading in readings.items()}
        self._readings = readings
        return self._last

    def state(self) -> dict[str, Any]:
        """The canonical state, per class name; ``RowProblem`` ``environment_state_error`` when it cannot be read."""
        try:
            return {name: state_of(instance, root=name, limits=self.limits) for name, instance in sorted(self.instances.items())}
        except StateError as error:
            raise RowProblem("environment_state_error", f"the state cannot be compared: {error}") from None

    def binding(self, name: str) -> Binding:
        """The tool ``name``, ready to check and call; ``KeyError`` when there is no such tool."""
        found = self._bindings.get(name)
        if found is None:
            _owner, method = self.tools[name]
            found = self._bindings[name] = Binding(method)
        return found

    def missing(self, name: Any) -> str:
        """Why ``name`` is not a tool of this environment, in words."""
        known = ", ".join(f"`{tool}`" for tool in sorted(self.tools)[:20]) or "none"
        return f"`{name}` is not a tool of the environment {_names(self.instances)} (its tools: {known})"

    def call(self, name: str, arguments: Any) -> ToolResult:
        """Call a tool with an arguments object; what it raises is the call's result, not an error of the session."""
        try:
            binding = self.binding(name)
        except (KeyError, TypeError):
            return ToolResult(False, None, "no_implementation", "NoImplementation", self.missing(name))
        if not isinstance(arguments, dict):
            return ToolResult(False, None, "invalid_arguments", "TypeError", "arguments are not an object")
        problem = binding.problem(arguments)
        if problem is not None:
            return ToolResult(False, None, "invalid_arguments", "TypeError", problem)
        try:
            return ToolResult(True, binding.call(arguments))
        except (Exception, SystemExit) as error:  # sys.exit() in a tool ends the call, not the caller
            return ToolResult(False, None, "exception", type_name(error), exception_text(error))


def make_instances(
    classes: Mapping[str, type], environment: Any, *, copy_config: bool = True, defaults: bool = False
) -> dict[str, Any]:
    """One fresh instance per class the environment names, its initial state loaded (from a copy of its config).

    With ``defaults``, each is made with no arguments and nothing loaded: the class's own default state.
    """
    if not isinstance(environment, Mapping) or not environment:
        kind = "an empty object" if isinstance(environment, Mapping) else f"{_json_kind(environment)}"
        raise RowProblem(
            "environment_not_object",
            f"`environment` must be an object of class names to their initial state, not {kind}",
        )
    instances: dict[str, Any] = {}
    for name, config in environment.items():
        found = classes.get(name) if isinstance(name, str) else None
        if found is None:
            bare = sorted(known for known in classes if "." not in known) or sorted(classes)
            known = ", ".join(f"`{known}`" for known in bare[:20]) or "none"
            raise RowProblem(
                "unknown_environment_class", f"`{name}` is not a class of the environment's library (its classes: {known})"
            )
        if not isinstance(config, Mapping):
            raise RowProblem(
                "environment_config_not_object",
                f"the initial state of `{name}` must be an object, not {_json_kind(config)}",
            )
        if defaults:
            instances[name] = _load_default(name, found)
            continue
        instances[name] = _load(name, found, copy.deepcopy(dict(config)) if copy_config else dict(config))
    return instances


def _load(name: str, klass: type, config: dict[str, Any]) -> Any:
    loader = next((method for method in LOADERS if callable(inspect.getattr_static(klass, method, None))), None)
    how = f"{name}(**config)" if loader is None else f"{name}().{loader}(config)"
    try:
        if loader is None:
            return klass(**config)
        instance = klass()
        getattr(instance, loader)(config)
        return instance
    except (Exception, SystemExit) as error:
        raise RowProblem("environment_load_error", f"`{how}` raised {type_name(error)}: {exception_text(error)}") from None


def _load_default(name: str, klass: type) -> Any:
    try:
        return klass()
    except (Exception, SystemExit) as error:
        raise RowProblem("environment_load_error", f"`{name}()` raised {type_name(error)}: {exception_text(error)}") from None


def tools_of(instances: Mapping[str, Any]) -> dict[str, tuple[str, Callable[..., Any]]]:
    """Each tool's name to its class's name and the bound method; a name two classes share is refused."""
    owners: dict[str, list[str]] = {}
    tools: dict[str, tuple[str, Callable[..., Any]]] = {}
    for class_name, instance in instances.items():
        for name in public_methods(type(instance)):
            owners.setdefault(name, []).append(class_name)
            tools[name] = (class_name, getattr(instance, name))
    shared = {name: classes for name, classes in owners.items() if len(classes) > 1}
    if shared:
        name, classes = sorted(shared.items())[0]
        named = " and ".join(f"`{owner}`" for owner in sorted(classes))
        raise RowProblem(
            "ambiguous_tool",
            f"the tool `{name}` is defined by both {named}; the classes of one environment must not share a tool name",
        )
    return tools


def public_methods(klass: type) -> list[str]:
    """The names of a class's tools: public methods (static and class methods too), never properties or data."""
    names = []
    for name in dir(klass):
        if name.startswith("_") or name in NOT_TOOLS:
            continue
        if isinstance(inspect.getattr_static(klass, name, None), (types.FunctionType, staticmethod, classmethod)):
            names.append(name)
    return names


def _names(instances: Mapping[str, Any]) -> str:
    return " + ".join(f"`{name}`" for name in sorted(instances))


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"
