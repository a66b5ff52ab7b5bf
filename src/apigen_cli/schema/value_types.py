"""The internal type form that every tool-schema dialect compiles to, and its checks.

A compiled type checks a JSON value and answers ``None`` (fine) or a
``Problem`` naming what is wrong and where. The rules are the ones a careful
function-calling checker applies (BFCL's AST checker among them): an int is a
valid float/number, a bool is never an int, a float is never an int, ``null``
is accepted for an optional parameter, enums compare by JSON equality.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..problems import Problem, show_value


def json_kind(value: Any) -> str:
    """The JSON name of a value's type, as messages say it."""
    kind = type(value)
    if kind is bool:
        return "boolean"
    if kind is int:
        return "integer"
    if kind is float:
        return "number"
    if kind is str:
        return "string"
    if value is None:
        return "null"
    if kind is list:
        return "array"
    if kind is dict:
        return "object"
    return kind.__name__


def _wrong_type(where: str, expected: str, value: Any) -> Problem:
    return Problem("wrong_type", f"argument `{where}` should be {expected}, got {json_kind(value)} {show_value(value)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _enum_key(value: Any) -> tuple[str, Any]:
    """A hashable key under which JSON-equal values meet (1 == 1.0, but True != 1)."""
    kind = type(value)
    if kind is bool:
        return ("b", value)
    if kind is int or kind is float:
        return ("n", value)
    if kind is str:
        return ("s", value)
    if value is None:
        return ("z", None)
    return ("j", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


class Type:
    """Base of the compiled types. ``name`` reads well in messages ("array of integer")."""

    __slots__ = ("name", "enum", "enum_keys", "minimum", "maximum", "exclusive_minimum", "exclusive_maximum", "plain_types")

    def __init__(self, name: str) -> None:
        self.name = name
        self.enum: list[Any] | None = None
        self.enum_keys: frozenset[tuple[str, Any]] | None = None
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.exclusive_minimum: float | None = None
        self.exclusive_maximum: float | None = None
        # Python types that pass this type outright (no constraint to look at): the fast path.
        self.plain_types: tuple[type, ...] = ()

    def with_constraints(
        self,
        enum: Sequence[Any] | None = None,
        minimum: Any = None,
        maximum: Any = None,
        exclusive_minimum: Any = None,
        exclusive_maximum: Any = None,
    ) -> Type:
        if enum is not None:
            self.enum = list(enum)
            self.enum_keys = frozenset(_enum_key(item) for item in enum)
        self.minimum = minimum if _is_number(minimum) else self.minimum
        self.maximum = maximum if _is_number(maximum) else self.maximum
        self.exclusive_minimum = exclusive_minimum if _is_number(exclusive_minimum) else self.exclusive_minimum
        self.exclusive_maximum = exclusive_maximum if _is_number(exclusive_maximum) else self.exclusive_maximum
        bounds = (self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum)
        if self.enum_keys is not None or any(bound is not None for bound in bounds):
            self.plain_types = ()
        return self

    def check(self, value: Any, where: str) -> Problem | None:
        problem = self.check_shape(value, where)
        if problem is not None:
            return problem
        if self.enum_keys is not None and _enum_key(value) not in self.enum_keys:
            allowed = ", ".join(show_value(item, 30) for item in (self.enum or [])[:12])
            return Problem("invalid_enum_value", f"argument `{where}` is {show_value(value)}, not one of: {allowed}")
        if self.minimum is not None and type(value) in (int, float) and value < self.minimum:
            return Problem("out_of_range", f"argument `{where}` is {show_value(value)}, below the minimum {self.minimum}")
        if self.maximum is not None and type(value) in (int, float) and value > self.maximum:
            return Problem("out_of_range", f"argument `{where}` is {show_value(value)}, above the maximum {self.maximum}")
        if self.exclusive_minimum is not None and type(value) in (int, float) and value <= self.exclusive_minimum:
            return Problem("out_of_range", f"argument `{where}` is {show_value(value)}, not above {self.exclusive_minimum}")
        if self.exclusive_maximum is not None and type(value) in (int, float) and value >= self.exclusive_maximum:
            return Problem("out_of_range", f"argument `{where}` is {show_value(value)}, not below {self.exclusive_maximum}")
        return None

    def check_shape(self, value: Any, where: str) -> Problem | None:
        raise NotImplementedError

    def accepts_null(self) -> bool:
        return False


class AnyType(Type):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("any value")

    def check_shape(self, value: Any, where: str) -> Problem | None:
        return None

    def accepts_null(self) -> bool:
        return True


class ScalarType(Type):
    """string, integer, number, boolean, null: checked by exact Python type."""

    __slots__ = ("accepted",)

    _ACCEPTED = {
        "string": (str,),
        "integer": (int,),
        "number": (int, float),
        "boolean": (bool,),
        "null": (type(None),),
    }

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.accepted = self._ACCEPTED[name]
        self.plain_types = self.accepted

    def check_shape(self, value: Any, where: str) -> Problem | None:
        if type(value) in self.accepted:
            return None
        return _wrong_type(where, self.name, value)

    def accepts_null(self) -> bool:
        return self.name == "null"


class ArrayType(Type):
    """A JSON array: ``items`` for every element, or ``prefix`` for fixed positions (tuples)."""

    __slots__ = ("items", "prefix", "min_items", "max_items")

    def __init__(self, items: Type | None = None, prefix: list[Type] | None = None) -> None:
        if prefix is not None:
            name = "array of [" + ", ".join(item.name for item in prefix) + "]"
        elif items is not None and not isinstance(items, AnyType):
            name = f"array of {items.name}"
        else:
            name = "array"
        super().__init__(name)
        self.items = items
        self.prefix = prefix
        self.min_items: int | None = None
        self.max_items: int | None = None

    def check_shape(self, value: Any, where: str) -> Problem | None:
        if type(value) is not list:
            return _wrong_type(where, self.name, value)
        if self.prefix is not None:
            if len(value) != len(self.prefix):
                return Problem(
                    "wrong_type", f"argument `{where}` should have {len(self.prefix)} items ({self.name}), got {len(value)}"
                )
            for index, (item_type, item) in enumerate(zip(self.prefix, value, strict=True)):
                problem = item_type.check(item, f"{where}[{index}]")
                if problem is not None:
                    return problem
        elif self.items is not None:
            item_type = self.items
            for index, item in enumerate(value):
                problem = item_type.check(item, f"{where}[{index}]")
                if problem is not None:
                    return problem
        if self.min_items is not None and len(value) < self.min_items:
            return Problem("out_of_range", f"argument `{where}` has {len(value)} items, fewer than the minimum {self.min_items}")
        if self.max_items is not None and len(value) > self.max_items:
            return Problem("out_of_range", f"argument `{where}` has {len(value)} items, more than the maximum {self.max_items}")
        return None


class ObjectType(Type):
    """A JSON object. With declared ``properties`` it is closed unless ``additional`` says otherwise.

    The top level of a tool's parameters is an ObjectType too, so the same code
    finds missing required arguments and unknown arguments at every depth.
    """

    __slots__ = ("properties", "required", "required_in_order", "additional", "values")

    def __init__(
        self,
        properties: Mapping[str, Type] | None = None,
        required: frozenset[str] = frozenset(),
        additional: bool | Type | None = None,
    ) -> None:
        super().__init__("object")
        self.properties = dict(properties or {})
        self.required = frozenset(required)
        # Declared properties first, in their order, so that messages (and anything drawn
        # from this list) do not depend on set order, which varies from process to process.
        self.required_in_order = tuple(
            [key for key in self.properties if key in self.required]
            + sorted(key for key in self.required if key not in self.properties)
        )
        # None: the schema said nothing; closed when properties are declared, open otherwise.
        if additional is None:
            additional = not self.properties
        self.additional = additional

    def check_shape(self, value: Any, where: str) -> Problem | None:
        if type(value) is not dict:
            return _wrong_type(where, "object", value)
        return self.check_members(value, where + ".")

    def check_members(self, value: dict[str, Any], prefix: str) -> Problem | None:
        """Check an object's keys and values; ``prefix`` is how member names are shown."""
        properties = self.properties
        for key in self.required_in_order:
            if key not in value:
                return Problem("missing_required_argument", f"required argument `{prefix}{key}` is missing")
        for key, item in value.items():
            declared = properties.get(key)
            if declared is not None and type(item) in declared.plain_types:
                continue
            if declared is None:
                additional = self.additional
                if additional is True:
                    continue
                if additional is False:
                    known = ", ".join(f"`{name}`" for name in properties) or "none"
                    return Problem("unknown_argument", f"argument `{prefix}{key}` is not a parameter (known: {known})")
                declared = additional
            if item is None and key not in self.required and not declared.accepts_null():
                continue  # an explicit null for an optional parameter means "not given"
            problem = declared.check(item, prefix + key)
            if problem is not None:
                return problem
        return None


class UnionType(Type):
    """One of several types (anyOf/oneOf, JSON Schema type lists, Union[...] and Optional[...])."""

    __slots__ = ("options",)

    def __init__(self, options: list[Type]) -> None:
        super().__init__(" or ".join(option.name for option in options))
        self.options = options

    def check_shape(self, value: Any, where: str) -> Problem | None:
        first_deep: Problem | None = None
        for option in self.options:
            problem = option.check(value, where)
            if problem is None:
                return None
            # Prefer a problem found inside a value of the right outer kind (e.g. a bad
            # array item) over "wrong type", since it says more.
            if first_deep is None and problem.code != "wrong_type":
                first_deep = problem
        return first_deep or _wrong_type(where, self.name, value)

    def accepts_null(self) -> bool:
        return any(option.accepts_null() for option in self.options)


def nullable(inner: Type) -> Type:
    """``inner`` or null."""
    if inner.accepts_null():
        return inner
    return UnionType([inner, ScalarType("null")])


def type_schema(compiled: Type, *, strict_objects: bool = False) -> dict[str, Any]:
    """A compiled type written as JSON Schema with standard type names.

    An object with declared properties is closed in apigen's reading of a schema, so it is
    written without ``additionalProperties`` (a round trip gives the same schema back);
    ``strict_objects`` writes ``"additionalProperties": false`` on it all the same, as
    structured-output endpoints want it said.
    """
    schema: dict[str, Any]
    if isinstance(compiled, UnionType):
        schema = {"anyOf": [type_schema(option, strict_objects=strict_objects) for option in flatten_union(compiled)]}
    elif isinstance(compiled, AnyType):
        schema = {}
    elif isinstance(compiled, ScalarType):
        schema = {"type": compiled.name}
    elif isinstance(compiled, ArrayType):
        schema = {"type": "array"}
        if compiled.prefix is not None:
            schema["prefixItems"] = [type_schema(item, strict_objects=strict_objects) for item in compiled.prefix]
            schema["items"] = False
        elif compiled.items is not None and not is_plain_any(compiled.items):
            schema["items"] = type_schema(compiled.items, strict_objects=strict_objects)
        if compiled.min_items is not None:
            schema["minItems"] = compiled.min_items
        if compiled.max_items is not None:
            schema["maxItems"] = compiled.max_items
    elif isinstance(compiled, ObjectType):
        schema = {"type": "object"}
        if compiled.properties:
            schema["properties"] = {
                key: type_schema(value, strict_objects=strict_objects) for key, value in compiled.properties.items()
            }
            schema["required"] = [key for key in compiled.properties if key in compiled.required]
            if compiled.additional is True:
                schema["additionalProperties"] = True
            elif compiled.additional is False and strict_objects:
                schema["additionalProperties"] = False
        elif compiled.additional is False:
            schema["additionalProperties"] = False
        if isinstance(compiled.additional, Type):
            schema["additionalProperties"] = type_schema(compiled.additional, strict_objects=strict_objects)
    else:  # pragma: no cover - every Type subclass is handled above
        raise TypeError(f"cannot write {type(compiled).__name__} as JSON Schema")
    if compiled.enum is not None:
        schema["enum"] = list(compiled.enum)
    if compiled.minimum is not None:
        schema["minimum"] = compiled.minimum
    if compiled.maximum is not None:
        schema["maximum"] = compiled.maximum
    if compiled.exclusive_minimum is not None:
        schema["exclusiveMinimum"] = compiled.exclusive_minimum
    if compiled.exclusive_maximum is not None:
        schema["exclusiveMaximum"] = compiled.exclusive_maximum
    return schema


def flatten_union(union: UnionType) -> list[Type]:
    options: list[Type] = []
    for option in union.options:
        if isinstance(option, UnionType) and option.enum is None:
            options.extend(flatten_union(option))
        else:
            options.append(option)
    return options


def is_plain_any(compiled: Type) -> bool:
    return isinstance(compiled, AnyType) and compiled.enum is None
