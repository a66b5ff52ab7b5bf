"""Converting one tool definition between the xLAM parameter dialect and JSON Schema.

Every dialect ``tools.py`` reads is read here too (OpenAI's wrapper, bare JSON
Schema, BFCL's type names, Anthropic's ``input_schema``, xLAM), and two are written:

- JSON Schema, as OpenAI function definitions use it: ``{"name", "description",
  "parameters": {"type": "object", "properties", "required"}}`` with standard type
  names only (BFCL's ``dict``/``float``/``tuple``/``any`` become ``object``/``number``/
  ``array``/no type);
- xLAM: ``{"name", "description", "parameters": {"p": {"description", "type": "int,
  optional", "default"?}}}``.

The two say most things alike: ``str`` ↔ ``string``, ``int`` ↔ ``integer``, ``float`` ↔
``number``, ``bool`` ↔ ``boolean``, ``List[int]`` ↔ an array of integers, ``Dict[str, int]``
↔ an object with ``additionalProperties``, ``Union``/``Optional`` ↔ ``anyOf`` (with
``{"type": "null"}``), ``Tuple[..]`` ↔ ``prefixItems``, ``Literal[..]`` ↔ ``enum``, ``,
optional`` or a usable default ↔ not in ``required``; descriptions, defaults and enums
are kept. What the target cannot say (bounds, formats, nested descriptions and
``required`` going into xLAM) is left out and reported as a ``Note``.

xLAM has two spellings for "may be omitted" (``int, optional`` and a usable default),
and many spellings of one type (``list``, ``List[Any]``); JSON Schema has one. With
``keep_xlam_spelling=True`` the original type string rides along as ``"x-xlam-type"``
where the JSON Schema alone would not give it back, so xLAM → JSON Schema → xLAM
returns the very same definition. Nothing is lost without it but the spelling.

Type strings are parsed by ``tools.parse_xlam_type`` and JSON Schema fragments by
``tools.compile_schema``: one parser per dialect, shared with the format check.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from ..problems import RowProblem
from .tools import _SCHEMA_TYPE_NAMES, compile_schema, compile_tool, parse_xlam_type, tool_parts
from .value_types import AnyType, ArrayType, ObjectType, ScalarType, Type, UnionType, flatten_union, is_plain_any, type_schema

XLAM = "xlam"
SPELLING_KEY = "x-xlam-type"
TOOL_KEYS = ("name", "description", "parameters")


@dataclass(frozen=True)
class Note:
    """Something a conversion could not carry: ``kind`` is the same text wherever it happens."""

    kind: str
    where: str


@dataclass
class Converted:
    """A converted tool definition and what it could not carry."""

    tool: dict[str, Any]
    notes: list[Note] = field(default_factory=list)


def dialect_of(definition: Any, position: int = 1) -> str:
    """``"xlam"`` or ``"json_schema"`` (OpenAI, BFCL, bare), as the format check reads it. Raises ``RowProblem``."""
    return compile_tool(definition, position).dialect


# --- whole tools ----------------------------------------------------------------------


def to_json_schema(definition: Any, *, keep_xlam_spelling: bool = False, position: int = 1) -> Converted:
    """The tool as a bare JSON Schema function definition ``{"name", "description", "parameters"}``."""
    dialect = dialect_of(definition, position)
    body, name, parameters = tool_parts(definition, position)
    notes = _dropped_tool_keys(definition, body, name)
    if dialect == XLAM:
        schema = _xlam_parameters_to_schema(parameters, name, keep_xlam_spelling)
    else:
        schema = _normalised_parameters(parameters, keep_xlam_spelling)
    return Converted(_tool(name, body, schema), notes)


def to_openai(definition: Any, *, keep_xlam_spelling: bool = False, position: int = 1) -> Converted:
    """The tool as OpenAI writes it: ``{"type": "function", "function": {...}}``."""
    converted = to_json_schema(definition, keep_xlam_spelling=keep_xlam_spelling, position=position)
    return Converted({"type": "function", "function": converted.tool}, converted.notes)


def to_xlam(definition: Any, *, position: int = 1) -> Converted:
    """The tool in the xLAM dialect; an xLAM tool comes back as it is (without OpenAI's wrapper)."""
    dialect = dialect_of(definition, position)
    body, name, parameters = tool_parts(definition, position)
    notes = _dropped_tool_keys(definition, body, name)
    if dialect == XLAM:
        return Converted(_tool(name, body, copy.deepcopy(parameters)), notes)
    return Converted(_tool(name, body, _schema_parameters_to_xlam(parameters or {}, name, notes)), notes)


def _tool(name: str, body: dict[str, Any], parameters: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name}
    if "description" in body:
        tool["description"] = body["description"]
    tool["parameters"] = parameters
    return tool


def _dropped_tool_keys(definition: dict[str, Any], body: dict[str, Any], name: str) -> list[Note]:
    carried = {*TOOL_KEYS, "input_schema", "parameters_json_schema"}
    notes = [
        Note(f"tool key `{key}` (only name, description and parameters are written)", f"tool `{name}`")
        for key in body
        if key not in carried
    ]
    if body is not definition:
        notes += [
            Note(f"tool key `{key}` (only name, description and parameters are written)", f"tool `{name}`")
            for key in definition
            if key not in ("type", "function")
        ]
    return notes


# --- xLAM → JSON Schema ---------------------------------------------------------------


def _xlam_parameters_to_schema(parameters: dict[str, Any], tool_name: str, keep_spelling: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in parameters.items():
        schema, is_required = _xlam_parameter_to_schema(name, spec, tool_name)
        if keep_spelling and isinstance(spec.get("type"), str):
            back = _schema_parameter_to_xlam(name, schema, is_required, tool_name, [])
            if back.get("type") != spec["type"]:
                schema[SPELLING_KEY] = spec["type"]
        properties[name] = schema
        if is_required:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def _xlam_parameter_to_schema(name: str, spec: dict[str, Any], tool_name: str) -> tuple[dict[str, Any], bool]:
    declared = spec.get("type")
    optional = False
    schema: dict[str, Any] = {}
    if isinstance(declared, str):
        try:
            compiled, optional = parse_xlam_type(declared)
        except ValueError as error:  # compile_tool has vetted the tool; kept for direct callers
            message = f"tool `{tool_name}`: parameter `{name}` has type {declared!r} ({error})"
            raise RowProblem("unsupported_type", message) from None
        schema = type_schema(compiled)
    for key, value in spec.items():
        if key not in ("type", "required"):
            schema[key] = copy.deepcopy(value)
    has_usable_default = "default" in spec and spec["default"] != ""
    required = not optional and not has_usable_default and spec.get("required", True) is not False
    return schema, required


def _is_null(compiled: Type) -> bool:
    return isinstance(compiled, ScalarType) and compiled.name == "null"


# --- JSON Schema → JSON Schema (standard names) ---------------------------------------


def _normalised_parameters(parameters: Any, keep_spelling: bool) -> dict[str, Any]:
    if not isinstance(parameters, dict) or not parameters:
        return {"type": "object", "properties": {}}
    schema: dict[str, Any] = normalise_schema(parameters, keep_spelling=keep_spelling)
    schema["type"] = "object"
    schema.setdefault("properties", {})
    return schema


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def normalise_schema(schema: Any, *, keep_spelling: bool = False) -> Any:
    """A copy of a JSON Schema (or BFCL) fragment with standard type names; other keys kept as they are."""
    if not isinstance(schema, dict):
        return copy.deepcopy(schema)
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            continue
        if key == SPELLING_KEY and not keep_spelling:
            continue
        if key == "properties" and isinstance(value, dict):
            result[key] = {name: normalise_schema(item, keep_spelling=keep_spelling) for name, item in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            result[key] = normalise_schema(value, keep_spelling=keep_spelling)
        elif (key in _SUBSCHEMA_LISTS or key == "items") and isinstance(value, list):
            result[key] = [normalise_schema(item, keep_spelling=keep_spelling) for item in value]
        else:
            result[key] = copy.deepcopy(value)
    declared = schema.get("type")
    names = [_standard_name(name) for name in (declared if isinstance(declared, list) else [declared])]
    if declared is not None and None not in names:  # "any" anywhere in the type means no type at all
        result = {"type": names if isinstance(declared, list) else names[0], **result}
    if isinstance(result.get("items"), list):  # draft-4 tuples and BFCL tuples: prefixItems
        result["prefixItems"] = result.pop("items")
        result.setdefault("items", False)
    return result


def _standard_name(name: Any) -> str | None:
    """The standard JSON Schema name of a type name; ``None`` for "any" (no type at all)."""
    kind = _SCHEMA_TYPE_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
    if kind is None:  # compile_tool has already refused it; keep it as it is
        return name if isinstance(name, str) else None
    return None if kind == "any" else kind


# --- JSON Schema → xLAM ---------------------------------------------------------------

_NESTED_LOSSES = {
    "description": "descriptions of nested values",
    "required": "which keys of a nested object are required",
    "properties": "the keys of a nested object (xLAM writes it as `Dict[str, Any]`)",
    "default": "defaults of nested values",
}
_CARRIED = {
    "type",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "items",
    "prefixItems",
    "additionalProperties",
    "nullable",
    "properties",
    "required",
    "description",
    "default",
}
# At the top level an `x-xlam-type` spelling and an `optional` flag may stand too; the
# `properties` and `required` of a parameter belong to nested objects only.
_TOP_CARRIED = (_CARRIED - {"properties", "required"}) | {SPELLING_KEY, "optional"}


def _schema_parameters_to_xlam(parameters: dict[str, Any], tool_name: str, notes: list[Note]) -> dict[str, Any]:
    properties = parameters.get("properties") or {}
    required = parameters.get("required") or []
    if parameters.get("additionalProperties") not in (None, False):
        notes.append(Note("arguments beyond the declared parameters (xLAM tools take only their own)", f"tool `{tool_name}`"))
    for key in parameters:
        if key not in ("type", "properties", "required", "additionalProperties", "description", "title", "optional"):
            notes.append(Note(f"`{key}` on a tool's parameters object", f"tool `{tool_name}`"))
    return {
        name: _schema_parameter_to_xlam(name, schema, name in required, tool_name, notes) for name, schema in properties.items()
    }


def _schema_parameter_to_xlam(name: str, schema: Any, required: bool, tool_name: str, notes: list[Note]) -> dict[str, Any]:
    where = f"tool `{tool_name}`, parameter `{name}`"
    if not isinstance(schema, dict):
        schema = {}
    compiled = compile_schema(schema, name)
    spec: dict[str, Any] = {}
    if "description" in schema:
        spec["description"] = schema["description"]
    spec["type"] = _top_level_xlam_type(compiled, schema, required, where, notes)
    hint = schema.get(SPELLING_KEY)
    if isinstance(hint, str):
        spec["type"] = _checked_hint(hint, spec["type"], schema, required, where, notes)
    if "default" in schema:
        spec["default"] = copy.deepcopy(schema["default"])
        if required and schema["default"] != "":
            notes.append(Note("a required parameter's default (xLAM reads a usable default as 'may be omitted')", where))
    if compiled.enum is not None and not isinstance(compiled, AnyType):
        spec["enum"] = list(compiled.enum)
    for key in schema:
        if key == "required":
            notes.append(Note(_NESTED_LOSSES["required"], where))
        elif key not in _TOP_CARRIED and key != "properties":
            notes.append(Note(_loss_kind(key, nested=False), where))
    _scan_subschemas(schema, where, notes)
    return spec


def _top_level_xlam_type(compiled: Type, schema: dict[str, Any], required: bool, where: str, notes: list[Note]) -> str:
    usable_default = "default" in schema and schema["default"] != ""
    if isinstance(compiled, UnionType) and compiled.enum is None:
        options = flatten_union(compiled)
        if any(_is_null(option) for option in options):
            others = [option for option in options if not _is_null(option)]
            inner = _union_text(others, where, notes)
            if required:
                return f"Union[{inner}, None]" if others else "None"
            return f"Optional[{inner}]"
    text = xlam_type_of(compiled, where, notes, top_level=True)
    if not required and not usable_default:
        text += ", optional"
    return text


def _union_text(options: list[Type], where: str, notes: list[Note]) -> str:
    if len(options) == 1:
        return xlam_type_of(options[0], where, notes)
    return "Union[" + ", ".join(xlam_type_of(option, where, notes) for option in options) + "]"


def _checked_hint(hint: str, canonical: str, schema: dict[str, Any], required: bool, where: str, notes: list[Note]) -> str:
    """The original xLAM spelling, when it still says what the schema says; else the canonical type."""
    try:
        parsed, optional = parse_xlam_type(hint)
    except ValueError:
        notes.append(Note(f"an `{SPELLING_KEY}` that is not a valid xLAM type (ignored)", where))
        return canonical
    usable_default = "default" in schema and schema["default"] != ""
    hinted_required = not optional and not usable_default
    if hinted_required != required or _top_level_xlam_type(parsed, schema, required, where, []) != canonical:
        notes.append(Note(f"an `{SPELLING_KEY}` that no longer matches the schema (ignored)", where))
        return canonical
    return hint


def _scan_nested(schema: Any, where: str, notes: list[Note]) -> None:
    """Note what a schema nested inside a parameter says that an xLAM type string cannot."""
    if not isinstance(schema, dict):
        return
    for key in schema:
        if key in _NESTED_LOSSES and key != "properties":
            notes.append(Note(_NESTED_LOSSES[key], where))
        elif key not in _CARRIED:
            notes.append(Note(_loss_kind(key, nested=True), where))
    _scan_subschemas(schema, where, notes)


def _scan_subschemas(schema: dict[str, Any], where: str, notes: list[Note]) -> None:
    for key, value in schema.items():
        if key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            _scan_nested(value, where, notes)
        elif key in ("items", "prefixItems", "anyOf", "oneOf", "allOf") and isinstance(value, list):
            for item in value:
                _scan_nested(item, where, notes)
        elif key == "properties" and isinstance(value, dict):
            notes.append(Note(_NESTED_LOSSES["properties"], where))
            for item in value.values():
                _scan_nested(item, where, notes)


def _loss_kind(key: str, *, nested: bool) -> str:
    return f"`{key}`{' inside a parameter' if nested else ''} (xLAM has no way to say it)"


_XLAM_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
_LITERAL_NUMBER = re.compile(r"-?\d+(?:\.\d+)?\Z")


def xlam_type_of(compiled: Type, where: str, notes: list[Note], *, top_level: bool = False) -> str:
    """A compiled type written as an xLAM type string (without ``, optional``).

    At the top level an enum is left to the parameter's ``enum`` key; inside a
    type it becomes ``Literal[...]``.
    """
    if compiled.enum is not None and (not top_level or isinstance(compiled, AnyType)):
        literal = _literal_text(compiled.enum)
        if literal is not None:
            return literal
        notes.append(Note("enum values that an xLAM `Literal[...]` cannot hold", where))
    if isinstance(compiled, UnionType):
        options = flatten_union(compiled)
        others = [option for option in options if not _is_null(option)]
        if len(others) < len(options):
            return f"Optional[{_union_text(others, where, notes)}]" if others else "None"
        return _union_text(others, where, notes)
    if isinstance(compiled, AnyType):
        return "Any"
    if isinstance(compiled, ScalarType):
        return _XLAM_SCALARS[compiled.name]
    if isinstance(compiled, ArrayType):
        if compiled.prefix is not None:
            text = "Tuple[" + ", ".join(xlam_type_of(item, where, notes) for item in compiled.prefix) + "]"
        elif compiled.items is not None and not is_plain_any(compiled.items):
            text = f"List[{xlam_type_of(compiled.items, where, notes)}]"
        else:
            text = "List[Any]"
        return text
    if isinstance(compiled, ObjectType):
        if isinstance(compiled.additional, Type) and not compiled.properties:
            return f"Dict[str, {xlam_type_of(compiled.additional, where, notes)}]"
        return "Dict[str, Any]"
    raise TypeError(f"cannot write {type(compiled).__name__} as an xLAM type")  # pragma: no cover


def _literal_text(values: list[Any]) -> str | None:
    parts = []
    for value in values:
        if isinstance(value, bool):
            parts.append("True" if value else "False")
        elif isinstance(value, (int, float)) and _LITERAL_NUMBER.match(repr(value)):
            parts.append(repr(value))
        elif isinstance(value, str) and "'" not in value:
            parts.append(f"'{value}'")
        elif isinstance(value, str) and '"' not in value:
            parts.append(f'"{value}"')
        else:
            return None
    return "Literal[" + ", ".join(parts) + "]"
