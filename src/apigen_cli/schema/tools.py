"""Tool definitions in every dialect people use, compiled to one internal form.

Dialects read:

- OpenAI: ``{"type": "function", "function": {name, description, parameters}}``;
- bare JSON Schema: ``{name, description, parameters: {type: object, properties, required}}``
  with enums, nested objects and arrays, anyOf/oneOf, nullable types, additionalProperties;
- BFCL: the same shape with ``"dict"``, ``"float"``, ``"tuple"``, ``"any"`` as type names;
- xLAM: ``parameters`` maps each name straight to ``{"type": "str, optional" | "List[int]" ...,
  "description", "default"?}``; such a parameter may be omitted when its type ends in
  ``, optional`` or it has a usable default (present and not ``""``).

A type name that cannot be understood raises ``RowProblem`` with code
``unsupported_type``: the row that offers the tool is rejected, the run goes on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..problems import RowProblem
from .value_types import AnyType, ArrayType, ObjectType, ScalarType, Type, UnionType, nullable

#: Keys of a tool definition that are apigen's, not the model's: where it is executed
#: (``http``, ``mcp``, the environment's ``class``) and how the library groups it
#: (``category``). Neither the generator nor the judge sees them; rows keep the
#: bindings, since the checks that run the tools need them.
HIDDEN_FROM_MODEL = frozenset({"category", "http", "mcp", "class"})


def model_view(tool: Any) -> Any:
    """The tool definition as a model is shown it: without ``HIDDEN_FROM_MODEL`` keys (also inside ``function``)."""
    if not isinstance(tool, Mapping):
        return tool
    shown = {key: value for key, value in tool.items() if key not in HIDDEN_FROM_MODEL}
    function = shown.get("function")
    if isinstance(function, Mapping):
        shown["function"] = {key: value for key, value in function.items() if key not in HIDDEN_FROM_MODEL}
    return shown


def tool_binding(tool: Any, kind: str) -> tuple[str | None, Any]:
    """``(name, binding)``: the tool's name and its ``http`` or ``mcp`` binding (beside or inside ``function``), if any."""
    if not isinstance(tool, Mapping):
        return None, None
    wrapped = tool.get("function")
    body: Mapping[str, Any] = wrapped if isinstance(wrapped, Mapping) else tool
    name = body.get("name")
    return (name if isinstance(name, str) else None), tool.get(kind, body.get(kind))


@dataclass(frozen=True, slots=True)
class Tool:
    """One compiled tool: its name, description, parameter checker and original definition."""

    name: str
    description: str
    parameters: ObjectType
    definition: Mapping[str, Any]
    dialect: str


# --- JSON Schema and BFCL -------------------------------------------------------------

_SCHEMA_TYPE_NAMES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "char": "string",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "null": "null",
    "none": "null",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "set": "array",
    "object": "object",
    "dict": "object",
    "map": "object",
    "any": "any",
}


def compile_schema(schema: Any, where: str) -> Type:
    """Compile a JSON Schema (or BFCL) fragment; ``where`` names it in errors."""
    if schema is True or schema == {}:
        return AnyType()
    if not isinstance(schema, dict):
        raise RowProblem("invalid_tool_definition", f"parameter `{where}` should be a schema object, got {type(schema).__name__}")
    for combiner in ("anyOf", "oneOf"):
        options = schema.get(combiner)
        if isinstance(options, list) and options:
            compiled: Type = UnionType([compile_schema(option, where) for option in options])
            return _constrained(compiled, schema)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return compile_schema(all_of[0], where)
    declared = schema.get("type")
    if isinstance(declared, list):
        names = [name for name in declared if name != "null"]
        options = [_compile_named(name, schema, where) for name in names] or [ScalarType("null")]
        compiled = options[0] if len(options) == 1 else UnionType(options)
        if len(names) != len(declared):
            compiled = nullable(compiled)
    elif declared is None:
        if "properties" in schema:
            compiled = _compile_named("object", schema, where)
        elif "items" in schema:
            compiled = _compile_named("array", schema, where)
        else:
            compiled = AnyType()  # only an enum, a $ref or a description: say nothing of the type
    else:
        compiled = _compile_named(declared, schema, where)
    if schema.get("nullable") is True:
        compiled = nullable(compiled)
    return _constrained(compiled, schema)


def _constrained(compiled: Type, schema: dict[str, Any]) -> Type:
    enum = schema.get("enum")
    if "const" in schema:
        enum = [schema["const"]]
    bounds = numeric_bounds(schema)
    return compiled.with_constraints(
        enum=enum if isinstance(enum, list) and enum else None,
        minimum=bounds.get("minimum"),
        maximum=bounds.get("maximum"),
        exclusive_minimum=bounds.get("exclusiveMinimum"),
        exclusive_maximum=bounds.get("exclusiveMaximum"),
    )


def numeric_bounds(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A schema's numeric bounds as JSON Schema says them today (``exclusiveMinimum: 0``).

    Draft 4, Swagger 2 and OpenAPI 3.0 write an exclusive bound as a flag on the inclusive one
    (``minimum: 0, exclusiveMinimum: true``): it becomes the number it qualifies.
    """
    bounds: dict[str, Any] = {}
    for inclusive, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        bound, flag = schema.get(inclusive), schema.get(exclusive)
        if isinstance(flag, (int, float)) and not isinstance(flag, bool):
            bounds[exclusive] = flag
        if isinstance(bound, (int, float)) and not isinstance(bound, bool):
            bounds[exclusive if flag is True else inclusive] = bound
    return bounds


def _compile_named(name: Any, schema: dict[str, Any], where: str) -> Type:
    kind = _SCHEMA_TYPE_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
    if kind is None:
        raise RowProblem(
            "unsupported_type", f"parameter `{where}` has type {orjson.dumps(name).decode()}, which apigen does not understand"
        )
    if kind == "any":
        return AnyType()
    if kind == "array":
        return _compile_array(schema, where)
    if kind == "object":
        return _compile_object(schema, where, top_level=False)
    return ScalarType(kind)


def _compile_array(schema: dict[str, Any], where: str) -> ArrayType:
    items = schema.get("items")
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        array = ArrayType(prefix=[compile_schema(item, f"{where}[{index}]") for index, item in enumerate(prefix)])
    elif isinstance(items, list) and items:  # draft-4 tuple form
        array = ArrayType(prefix=[compile_schema(item, f"{where}[{index}]") for index, item in enumerate(items)])
    elif items is not None:
        array = ArrayType(items=compile_schema(items, f"{where}[]"))
    else:
        array = ArrayType()
    if isinstance(schema.get("minItems"), int):
        array.min_items = schema["minItems"]
    if isinstance(schema.get("maxItems"), int):
        array.max_items = schema["maxItems"]
    return array


def _compile_object(schema: dict[str, Any], where: str, *, top_level: bool) -> ObjectType:
    properties = schema.get("properties") or {}
    if not isinstance(properties, dict):
        raise RowProblem("invalid_tool_definition", f"parameter `{where or '(top level)'}`: `properties` should be an object")
    required = schema.get("required") or []
    if not isinstance(required, list):
        required = []
    prefix = "" if top_level else where + "."
    compiled = {key: compile_schema(value, f"{prefix}{key}") for key, value in properties.items()}
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        additional_type: bool | Type | None = compile_schema(additional, f"{where}.*")
    elif isinstance(additional, bool):
        additional_type = additional
    else:
        additional_type = False if top_level else None
    return ObjectType(compiled, frozenset(key for key in required if isinstance(key, str)), additional_type)


# --- xLAM type strings ----------------------------------------------------------------

_XLAM_NAMES: dict[str, str] = {
    "str": "string",
    "string": "string",
    "text": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "double": "number",
    "decimal": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "none": "null",
    "nonetype": "null",
    "null": "null",
    "list": "array",
    "sequence": "array",
    "iterable": "array",
    "array": "array",
    "set": "array",
    "frozenset": "array",
    "tuple": "tuple",
    "dict": "object",
    "mapping": "object",
    "object": "object",
    "any": "any",
    "object_any": "any",
    "optional": "optional",
    "union": "union",
    "literal": "literal",
    # A callable can only travel in JSON as text (its name or a lambda); take a string.
    "callable": "string",
    "function": "string",
}
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][\w.]*)|(?P<punct>\.\.\.|[\[\],|])|(?P<str>'[^']*'|\"[^\"]*\")|(?P<num>-?\d+(?:\.\d+)?))"
)


class _TypeExpression:
    """A tiny recursive-descent parser for Python-style type strings (``Dict[str, List[int]]``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip() == "":
                    break
                raise ValueError(f"unexpected {text[position : position + 10]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def parse(self) -> Type:
        result = self._union()
        if self.index != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.index][1]!r}")
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise ValueError("type ends too early")
        token = self.tokens[self.index]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, got {token[1]!r}")
        self.index += 1
        return token

    def _union(self) -> Type:
        options = [self._single()]
        while self._peek() in ("|", "or"):
            self._take()
            options.append(self._single())
        return options[0] if len(options) == 1 else UnionType(options)

    def _arguments(self) -> list[Type]:
        self._take("[")
        arguments: list[Type] = []
        while self._peek() != "]":
            if self._peek() == "[":  # Callable[[float], float]: a parameter list
                arguments.append(ArrayType(prefix=self._arguments()))
            elif self._peek() == "...":  # Tuple[int, ...]
                self._take()
                arguments.append(AnyType())
            else:
                arguments.append(self._union())
            if self._peek() == ",":
                self._take()
        self._take("]")
        return arguments

    def _single(self) -> Type:
        kind, token = self._take()
        if kind != "name":
            raise ValueError(f"unexpected {token!r}")
        base = token.rsplit(".", 1)[-1].lower()  # typing.List, t.Dict
        meaning = _XLAM_NAMES.get(base)
        if meaning is None:
            raise ValueError(f"unknown type name {token!r}")
        if meaning == "literal":
            return self._literal()
        arguments = self._arguments() if self._peek() == "[" else []
        if meaning == "optional":
            return nullable(arguments[0] if arguments else AnyType())
        if meaning == "union":
            return UnionType(arguments) if arguments else AnyType()
        if meaning == "any":
            return AnyType()
        if meaning == "array":
            return ArrayType(items=arguments[0] if arguments else None)
        if meaning == "tuple":
            if len(arguments) == 2 and self.tokens[self.index - 2][1] == "...":
                return ArrayType(items=arguments[0])
            return ArrayType(prefix=arguments) if arguments else ArrayType()
        if meaning == "object":
            values = arguments[1] if len(arguments) == 2 else None
            return ObjectType(additional=values if values is not None and not isinstance(values, AnyType) else True)
        return ScalarType(meaning)

    def _literal(self) -> Type:
        self._take("[")
        values: list[Any] = []
        while self._peek() != "]":
            kind, token = self._take()
            if kind == "str":
                values.append(token[1:-1])
            elif kind == "num":
                values.append(float(token) if "." in token else int(token))
            elif token in ("True", "False"):
                values.append(token == "True")
            if self._peek() == ",":
                self._take()
        self._take("]")
        return AnyType().with_constraints(enum=values)


def parse_xlam_type(text: str) -> tuple[Type, bool]:
    """Parse an xLAM type string into (type, marked optional). Raises ``ValueError``."""
    head, optional = text, False
    # "str, optional", "int, default=5", "List[int], optional": split at the first top-level comma.
    depth = 0
    for position, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            head, rest = text[:position], text[position + 1 :]
            optional = "optional" in rest.lower() or "default" in rest.lower()
            break
    head = head.strip()
    if head.lower().startswith("optional[") or head.lower() == "optional":
        optional = True
    return _TypeExpression(head).parse(), optional


def _compile_xlam_parameters(parameters: dict[str, Any], tool_name: str) -> ObjectType:
    properties: dict[str, Type] = {}
    required: set[str] = set()
    for name, spec in parameters.items():
        if not isinstance(spec, dict):
            raise RowProblem(
                "invalid_tool_definition", f"tool `{tool_name}`: parameter `{name}` should be an object with a `type`"
            )
        declared = spec.get("type")
        compiled: Type
        if declared is None:
            compiled, optional = AnyType(), False
        elif isinstance(declared, str):
            try:
                compiled, optional = parse_xlam_type(declared)
            except ValueError as error:
                raise RowProblem(
                    "unsupported_type",
                    f"tool `{tool_name}`: parameter `{name}` has type {declared!r}, which apigen does not understand ({error})",
                ) from None
        else:
            raise RowProblem("unsupported_type", f"tool `{tool_name}`: parameter `{name}` has a type that is not a string")
        enum = spec.get("enum")
        if isinstance(enum, list) and enum:
            compiled.with_constraints(enum=enum)
        has_usable_default = "default" in spec and spec["default"] != ""
        if not optional and not has_usable_default and spec.get("required", True) is not False:
            required.add(name)
        properties[name] = compiled
    return ObjectType(properties, frozenset(required), additional=False)


# --- whole tools ----------------------------------------------------------------------


def _is_json_schema_parameters(parameters: dict[str, Any]) -> bool:
    """Tell a JSON Schema ``parameters`` object from an xLAM name → spec mapping.

    An xLAM tool may well have a parameter called ``type`` or ``properties``, so
    look at the values: in JSON Schema ``type`` is a string (or list) and
    ``properties`` maps names to schema objects.
    """
    declared = parameters.get("type")
    if isinstance(declared, (str, list)):
        return True
    properties = parameters.get("properties")
    if isinstance(properties, dict) and not isinstance(properties.get("type"), str):
        return all(isinstance(value, dict) for value in properties.values())
    return False


def tool_parts(definition: Any, position: int) -> tuple[dict[str, Any], str, Any]:
    """The function body of a definition (inside OpenAI's wrapper), its name and its raw ``parameters``.

    ``parameters`` is also read from Anthropic's ``input_schema`` and Gemini's
    ``parameters_json_schema``; ``position`` (1-based) names the tool in errors.
    """
    if not isinstance(definition, dict):
        raise RowProblem("invalid_tool_definition", f"tool {position} should be an object, got {type(definition).__name__}")
    body = definition
    if isinstance(definition.get("function"), dict):
        body = definition["function"]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RowProblem("invalid_tool_definition", f"tool {position} has no `name`")
    parameters = body.get("parameters")
    if parameters is None:
        parameters = body.get("input_schema", body.get("parameters_json_schema"))  # Anthropic, Gemini
    return body, name, parameters


def compile_tool(definition: Any, position: int) -> Tool:
    """Compile one tool definition of any dialect; ``position`` (1-based) names it in errors."""
    body, name, parameters = tool_parts(definition, position)
    description = body.get("description")
    if parameters is None or parameters == {}:
        return Tool(name, str(description or ""), ObjectType(additional=False), definition, "json_schema")
    if not isinstance(parameters, dict):
        raise RowProblem("invalid_tool_definition", f"tool `{name}`: `parameters` should be an object")
    if _is_json_schema_parameters(parameters):
        if parameters.get("type") not in (None, "object", "dict", "Object", "Dict"):
            raise RowProblem(
                "invalid_tool_definition", f"tool `{name}`: `parameters` should have type object, not {parameters.get('type')!r}"
            )
        try:
            compiled = _compile_object(parameters, "", top_level=True)
        except RowProblem as error:
            raise RowProblem(error.problem.code, f"tool `{name}`: {error.problem.message}") from None
        except RecursionError:
            raise RowProblem("invalid_tool_definition", f"tool `{name}`: `parameters` nest too deeply") from None
        return Tool(name, str(description or ""), compiled, definition, "json_schema")
    return Tool(name, str(description or ""), _compile_xlam_parameters(parameters, name), definition, "xlam")


class Catalogue(dict[str, Tool]):
    """The tools a row offers, by name."""


def compile_tools(definitions: Any) -> Catalogue:
    """Compile a row's ``tools`` list. Raises ``RowProblem`` for the first unusable tool."""
    if not isinstance(definitions, list):
        raise RowProblem("invalid_tools", f"`tools` should be a list of tool definitions, got {type(definitions).__name__}")
    catalogue = Catalogue()
    for position, definition in enumerate(definitions, start=1):
        tool = compile_tool(definition, position)
        catalogue[tool.name] = tool
    return catalogue


class CatalogueCache:
    """Compiled catalogues keyed by the tools' JSON bytes.

    Rows of one generation run share a few tool sets, so compiling each set once
    takes most of the per-row cost out of checking. Bounded, so memory stays flat.
    """

    def __init__(self, max_entries: int = 2048) -> None:
        self._entries: dict[bytes, Catalogue | RowProblem] = {}
        self._max_entries = max_entries

    def get(self, definitions: Any) -> Catalogue:
        try:
            key = orjson.dumps(definitions)
        except TypeError:
            return compile_tools(definitions)
        found = self._entries.get(key)
        if found is None:
            try:
                found = compile_tools(definitions)
            except RowProblem as error:
                found = error
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = found
        if isinstance(found, RowProblem):
            raise found
        return found
