"""``apigen library check``: the paper's accessibility test, and a lint of the definitions.

APIGen keeps only the APIs that answer: each one is called once, with arguments
made from its schema (an example, else the default, else the first enum value,
else a placeholder of the right type), through the same ``Executor`` as
exec-check, so Python functions (``--functions``) and ``http`` bindings both
run. The lint finds what makes a library worse to generate from: duplicate
names, names endpoints refuse, empty or very long descriptions, parameters
nobody described.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..execution.calls import Outcome, Pending
from ..execution.executor import Executor
from ..problems import RowProblem
from ..schema.tools import Tool, compile_tool, tool_parts
from .loader import read_definitions
from .output import TOOL_NAME

LONG_DESCRIPTION = 1024  # characters; past this, a description crowds the generator's prompt
_PLACEHOLDERS = {"string": "example", "integer": 1, "number": 1.0, "boolean": True, "null": None}
_FORMATS = {"date": "2024-01-15", "date-time": "2024-01-15T12:00:00Z", "email": "user@example.com", "uri": "https://example.com"}
_MAX_DEPTH = 8


@dataclass
class Entry:
    """One API of the library, as given, with what checking it found."""

    where: str
    name: str
    definition: dict[str, Any]
    tool: Tool | None
    arguments: dict[str, Any] | None = None
    outcome: Outcome | None = None
    result_problem: str | None = None  # why a call that returned is still a failure (an error payload)

    @property
    def status(self) -> str:
        """``ok``, ``error``, ``timeout`` or ``not run``."""
        if self.outcome is None:
            return "not run"
        if self.outcome.ok:
            return "error" if self.result_problem else "ok"
        return "timeout" if self.outcome.code == "timeout" else "error"

    @property
    def http_status(self) -> str:
        if self.outcome is None:
            return ""
        kind = self.outcome.error_type
        if kind.startswith("HTTP "):
            return kind[5:]
        return "2xx" if self.outcome.ok and "http" in self.definition_body() else ""

    def definition_body(self) -> dict[str, Any]:
        body = self.definition.get("function")
        merged = dict(body) if isinstance(body, dict) else {}
        merged.update(self.definition)
        return merged


@dataclass(frozen=True)
class Finding:
    """One lint finding: which API (or ``where`` in the file), and what."""

    where: str
    name: str
    message: str


def read_entries(path: str) -> tuple[list[Entry], list[Finding]]:
    """The library's APIs, leniently: what does not compile is a finding, not a stop."""
    entries: list[Entry] = []
    findings: list[Finding] = []
    for position, (where, definition) in enumerate(read_definitions(path), start=1):
        if not isinstance(definition, dict):
            findings.append(Finding(where, "", "is not a JSON object"))
            continue
        try:
            tool: Tool | None = compile_tool(definition, position)
        except RowProblem as error:
            findings.append(Finding(where, "", error.problem.message))
            continue
        assert tool is not None
        entries.append(Entry(where, tool.name, definition, tool))
    if not entries and not findings:
        raise InputError(f"API library `{path}` holds no APIs", hint="one tool definition per line")
    return entries, findings


def lint(entries: Iterable[Entry]) -> list[Finding]:
    """Duplicate names, names outside ``^[A-Za-z0-9_-]{1,64}$``, descriptions empty or too long, undescribed parameters."""
    findings: list[Finding] = []
    first: dict[str, str] = {}
    for entry in entries:
        assert entry.tool is not None
        name = entry.name
        if name in first:
            findings.append(Finding(entry.where, name, f"the name is already used on {first[name]}"))
        else:
            first[name] = entry.where
        if not TOOL_NAME.match(name):
            findings.append(Finding(entry.where, name, "the name is not of the form ^[A-Za-z0-9_-]{1,64}$ that endpoints accept"))
        description = entry.tool.description.strip()
        if not description:
            findings.append(Finding(entry.where, name, "the description is empty"))
        elif len(description) > LONG_DESCRIPTION:
            findings.append(
                Finding(entry.where, name, f"the description is {len(description)} characters (over {LONG_DESCRIPTION})")
            )
        body, _name, parameters = tool_parts(entry.definition, 1)
        undescribed = [key for key, schema in _parameter_schemas(parameters).items() if not _described(schema)]
        if undescribed:
            listed = ", ".join(f"`{key}`" for key in undescribed)
            findings.append(Finding(entry.where, name, f"parameter(s) without a description: {listed}"))
    return findings


def _parameter_schemas(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        return {}
    properties = parameters.get("properties")
    if isinstance(properties, dict) and isinstance(parameters.get("type", "object"), str):
        return properties
    return parameters  # xLAM: name -> spec


def _described(schema: Any) -> bool:
    return isinstance(schema, dict) and isinstance(schema.get("description"), str) and bool(schema["description"].strip())


def example_arguments(definition: dict[str, Any]) -> dict[str, Any]:
    """Arguments for one call: every required parameter, valued from its schema."""
    _body, _name, parameters = tool_parts(definition, 1)
    if not isinstance(parameters, dict):
        return {}
    if isinstance(parameters.get("properties"), dict):
        required = parameters.get("required") or []
        properties = parameters["properties"]
        return {key: example_value(properties[key]) for key in properties if key in required}
    # xLAM: required unless the type says optional or a default is given
    found = {}
    for key, spec in parameters.items():
        if not isinstance(spec, dict):
            continue
        kind = str(spec.get("type", ""))
        if kind.endswith("optional") or spec.get("default") not in (None, ""):
            continue
        found[key] = example_value({"type": _xlam_kind(kind), **{k: v for k, v in spec.items() if k != "type"}})
    return found


def _xlam_kind(text: str) -> Any:
    head = text.split("[")[0].split(",")[0].strip().lower()
    return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array", "dict": "object"}.get(
        head, head
    )


def example_value(schema: Any, depth: int = 0) -> Any:
    """A value for a schema: its example, default, const or first enum value, else a placeholder of its type."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "example"
    for key in ("examples",):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    for key in ("example", "default", "const"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combiner in ("anyOf", "oneOf"):
        options = schema.get(combiner)
        if isinstance(options, list) and options:
            usable = [option for option in options if not (isinstance(option, dict) and option.get("type") == "null")]
            return example_value((usable or options)[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind == "array" or (kind is None and "items" in schema):
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [example_value(item, depth + 1) for item in prefix]
        # Two items unless the schema says otherwise: a mean, a spread or a pair needs more than one.
        fewest, most = schema.get("minItems"), schema.get("maxItems")
        count = max(fewest if isinstance(fewest, int) else 2, 1)
        if isinstance(most, int) and most >= 0:
            count = min(count, most)
        item = example_value(schema.get("items", {"type": "string"}), depth + 1)
        return [_varied(item, index) for index in range(min(count, 8))]
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {key: example_value(value, depth + 1) for key, value in properties.items() if key in required}
    if kind in ("integer", "number"):
        low: Any = schema.get("minimum")
        value: Any = low if isinstance(low, (int, float)) and not isinstance(low, bool) else _PLACEHOLDERS[kind]
        high: Any = schema.get("maximum")
        if isinstance(high, (int, float)) and not isinstance(high, bool) and value > high:
            value = high
        return int(value) if kind == "integer" else value
    if kind == "string" and schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    return _PLACEHOLDERS.get(str(kind), "example")


def _varied(value: Any, index: int) -> Any:
    """The ``index``-th item of a placeholder array: numbers differ (1, 2, ...), so a spread is not zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value + index


def call_each(entries: list[Entry], executor: Executor, judge: Callable[[Any], str | None] | None = None) -> None:
    """Call every API once, all in flight together (the executor bounds how many).

    ``judge`` says why a result that came back is a failure all the same (exec-check's
    policy on error payloads and empty results), or ``None`` when it is not.
    """
    started: list[tuple[Entry, Pending]] = []
    for entry in entries:
        entry.arguments = example_arguments(entry.definition)
        http = entry.definition_body().get("http")
        started.append((entry, executor.submit(entry.name, entry.arguments, http)))
        executor.poll()
    executor.wait([pending for _entry, pending in started])
    for entry, pending in started:
        entry.outcome = pending.outcome
        if judge is not None and entry.outcome is not None and entry.outcome.ok:
            entry.result_problem = judge(entry.outcome.result)
