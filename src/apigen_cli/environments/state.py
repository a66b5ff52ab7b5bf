"""The state of a stateful environment as a value that compares: canonical form, digest, diff.

Two runs of the same conversation must leave equal states, and two different
outcomes different ones, whatever the dict order, the set order, the process or
``25`` against ``25.0``. So a state is first made *canonical* (plain JSON data,
one spelling per value), then compared, hashed or diffed in that form.

Pure (the standard library and orjson) so that the worker, which imports no
apigen package, runs it beside the user's classes: keep it that way.

The canonical form, value by value:

- ``None``, booleans, strings and integers are themselves (``True`` stays apart from ``1``);
- floats by value: an integral float is an integer (``25.0`` is ``25``), NaN and the
  infinities are ``{"$float": "nan"|"inf"|"-inf"}``; Decimals and Fractions likewise, or
  ``{"$decimal": "0.1"}`` / ``{"$fraction": "1/3"}`` when no float holds them exactly;
- dicts and other mappings: string keys, sorted (a key that is not a string is its
  canonical JSON text, so ``1`` becomes ``"1"``; two keys that read the same are refused);
- lists, tuples and other sequences are lists; sets are lists sorted by their items'
  canonical JSON, so set order never matters;
- enums are their value; dates and times ISO 8601 strings; timedeltas seconds; UUIDs and
  paths strings; bytes their UTF-8 text, else ``{"$bytes": BASE64}``;
- an object that defines a ``state()`` method is what that method returns;
- any other object is ``{"$class": QUALNAME, ...its public attributes}`` (names not
  starting with ``_``; dataclass fields, named-tuple fields, pydantic's ``model_dump()``).
  A class that defines ``__eq__`` but no ``state()`` is still read by its public
  attributes: ``__eq__`` can say whether two objects are equal, but gives nothing to
  hash or to diff, and a state must do all three the same way;
- functions, classes, modules, generators and other things without data are
  ``{"$class": KIND, "$name": NAME}``, and are never called or consumed;
- a reference back to an object on the way down (a cycle: a file-system node's
  ``parent``) is ``{"$ref": PATH}``, the path of that object; an object reached twice by
  two ways that are not a cycle is written out both times, so sharing never changes a state.

Keys beginning with ``$`` are the markers above; ``canonical`` of a canonical value is
that value. Hostile state is bounded (``Limits``): past the depth, item or character
caps, ``StateError`` names the path where it gave up.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import fractions
import hashlib
import inspect
import json
import math
import types
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import PurePath
from typing import Any, NamedTuple

import orjson

__all__ = [
    "Change",
    "Diff",
    "Limits",
    "StateError",
    "canonical",
    "canonical_json",
    "diff",
    "diff_canonical",
    "digest",
    "has_state_method",
    "read_state",
    "state_of",
]


class StateError(ValueError):
    """A state that cannot be made canonical (too deep, too large, or its own code failed); ``path`` says where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclasses.dataclass(frozen=True)
class Limits:
    """Caps on one canonical form: nesting ``depth``, ``items`` (every value counts) and string ``chars``."""

    depth: int = 100
    items: int = 1_000_000
    chars: int = 64_000_000


DEFAULT_LIMITS = Limits()

# A path is built only when it is needed (an error, a cycle): until then it is a chain of
# (parent, kind, key) triples, so walking a large state costs no string work per value.
_Path = tuple[Any, int, Any]
_KEY, _ATTRIBUTE, _INDEX, _SET_ITEM, _DICT_KEY = range(5)


def _render(path: _Path | str) -> str:
    segments: list[str] = []
    while isinstance(path, tuple):
        path, kind, key = path
        if kind == _KEY:
            segments.append(f"[{json.dumps(key, ensure_ascii=False)}]")
        elif kind == _ATTRIBUTE:
            segments.append(_attribute(key))
        elif kind == _INDEX:
            segments.append(f"[{key}]")
        else:
            segments.append("{}" if kind == _SET_ITEM else "{key}")
    segments.append(path)
    return "".join(reversed(segments))


def _attribute(name: str) -> str:
    return f".{name}" if name.isidentifier() else f"[{json.dumps(name, ensure_ascii=False)}]"


class _Canonical:
    """One walk over a value; counts what it has seen against the limits."""

    __slots__ = ("limits", "items", "chars", "ancestors")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.items = 0
        self.chars = 0
        self.ancestors: dict[int, _Path | str] = {}

    def value(self, value: Any, path: _Path | str, depth: int) -> Any:
        self.items += 1
        if self.items > self.limits.items:
            raise StateError(_render(path), f"the state has more than {self.limits.items:,} values")
        kind = type(value)
        if kind is str:
            self.chars += len(value)
            if self.chars > self.limits.chars:
                self._too_much_text(path)
            return value
        if value is None or kind is bool or kind is int:
            return value
        if kind is float:
            return _number(value)
        if depth >= self.limits.depth:
            raise StateError(_render(path), f"the state is nested deeper than {self.limits.depth} levels")
        if kind is dict:
            return self._mapping(value, path, depth + 1)
        if kind is list or kind is tuple:
            return self._sequence(value, path, depth + 1)
        return self._other(value, path, depth + 1)

    def _count_chars(self, size: int, path: _Path | str) -> None:
        self.chars += size
        if self.chars > self.limits.chars:
            self._too_much_text(path)

    def _too_much_text(self, path: _Path | str) -> None:
        raise StateError(_render(path), f"the state holds more than {self.limits.chars:,} characters of text")

    def _enter(self, value: Any, path: _Path | str) -> dict[str, Any] | None:
        """``{"$ref": ...}`` when ``value`` is an ancestor (a cycle), else ``None`` and ``value`` becomes one."""
        found = self.ancestors.get(id(value))
        if found is not None:
            return {"$ref": _render(found)}
        self.ancestors[id(value)] = path
        return None

    def _mapping(self, value: Any, path: _Path | str, depth: int) -> Any:
        ref = self._enter(value, path)
        if ref is not None:
            return ref
        try:
            if type(value) is dict:
                return self._dict(value, path, depth)
            result: dict[str, Any] = {}
            # every entry counts against the item cap in ``value``, so an endless mapping stops there
            for key, item in _items(value, path):
                name = self._key(key, path, depth)
                if name in result:
                    raise StateError(_render(path), f"two keys both read as {json.dumps(name, ensure_ascii=False)}")
                result[name] = self.value(item, (path, _KEY, name), depth)
            return dict(sorted(result.items()))
        finally:
            del self.ancestors[id(value)]

    def _dict(self, value: dict[Any, Any], path: _Path | str, depth: int) -> dict[str, Any]:
        """``_mapping`` for a plain dict: its plain scalars and plain dicts are taken here, counted and capped as
        ``value`` would, without the calls each of them costs there; the result is the same."""
        pairs: list[tuple[str, Any]] = []
        seen: set[str] | None = None  # the names so far, once a key that is not a string may read as another
        limits, ancestors = self.limits, self.ancestors
        items_cap, chars_cap = limits.items, limits.chars
        for key, item in value.items():
            if type(key) is str:
                self.chars += len(key)
                if self.chars > limits.chars:
                    self._too_much_text(path)
                name = key
            else:
                name = self._key(key, path, depth)
                if seen is None:
                    seen = {earlier for earlier, _item in pairs}
            if seen is not None:
                if name in seen:
                    raise StateError(_render(path), f"two keys both read as {json.dumps(name, ensure_ascii=False)}")
                seen.add(name)
            kind = type(item)
            if kind is str:
                self.items += 1
                self.chars += len(item)
                if self.items > items_cap or self.chars > chars_cap:
                    self._over_caps(len(item), (path, _KEY, name))
                pairs.append((name, item))
            elif item is None or kind is bool or kind is int:
                self.items += 1
                if self.items > items_cap:
                    self._over_caps(0, (path, _KEY, name))
                pairs.append((name, item))
            elif kind is dict and id(item) not in ancestors and depth < limits.depth:
                self.items += 1
                if self.items > items_cap:
                    self._over_caps(0, (path, _KEY, name))
                child: _Path = (path, _KEY, name)
                ancestors[id(item)] = child
                try:
                    pairs.append((name, self._dict(item, child, depth + 1)))
                finally:
                    del ancestors[id(item)]
            else:
                pairs.append((name, self.value(item, (path, _KEY, name), depth)))
        pairs.sort()  # by name alone: the names are distinct, so no two values are ever compared
        return dict(pairs)

    def _over_caps(self, chars: int, path: _Path) -> None:
        """The error ``value`` raises for a value, of ``chars`` characters, just counted past a cap (its checks, in its order)."""
        if self.items > self.limits.items:
            raise StateError(_render(path), f"the state has more than {self.limits.items:,} values")
        if chars and self.chars > self.limits.chars:
            self._too_much_text(path)

    def _key(self, key: Any, path: _Path | str, depth: int) -> str:
        if type(key) is str:
            self.chars += len(key)
            if self.chars > self.limits.chars:
                self._too_much_text(path)
            return key
        if isinstance(key, str) and not isinstance(key, enum.Enum):
            return self._key(str(key), path, depth)
        return canonical_json(self.value(key, (path, _DICT_KEY, None), depth)).decode()

    def _sequence(self, value: Any, path: _Path | str, depth: int) -> Any:
        ref = self._enter(value, path)
        if ref is not None:
            return ref
        try:
            if type(value) is list or type(value) is tuple:  # as ``_dict``: plain scalars taken here
                return self._list(value, path, depth)
            result = []
            for index, item in enumerate(_iterate(value, path, self.limits.items)):
                result.append(self.value(item, (path, _INDEX, index), depth))
            return result
        finally:
            del self.ancestors[id(value)]

    def _list(self, value: list[Any] | tuple[Any, ...], path: _Path | str, depth: int) -> list[Any]:
        """A plain list's or tuple's items, its plain scalars taken here as ``_dict`` takes them (the item cap is
        met before ``_iterate``'s per-collection one could be)."""
        result = []
        items_cap, chars_cap = self.limits.items, self.limits.chars
        for index, item in enumerate(value):
            kind = type(item)
            if kind is str:
                self.items += 1
                self.chars += len(item)
                if self.items > items_cap or self.chars > chars_cap:
                    self._over_caps(len(item), (path, _INDEX, index))
                result.append(item)
            elif item is None or kind is bool or kind is int:
                self.items += 1
                if self.items > items_cap:
                    self._over_caps(0, (path, _INDEX, index))
                result.append(item)
            else:
                result.append(self.value(item, (path, _INDEX, index), depth))
        return result

    def _set(self, value: Any, path: _Path | str, depth: int) -> Any:
        ref = self._enter(value, path)
        if ref is not None:
            return ref
        try:
            items = [self.value(item, (path, _SET_ITEM, None), depth) for item in _iterate(value, path, self.limits.items)]
            return [item for _text, item in sorted(((canonical_json(item), item) for item in items), key=_first)]
        finally:
            del self.ancestors[id(value)]

    def _other(self, value: Any, path: _Path | str, depth: int) -> Any:
        if isinstance(value, enum.Enum):
            return self.value(value.value, path, depth)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return _number(float(value))
        if isinstance(value, str):
            return self.value(str(value), path, depth)
        if isinstance(value, (decimal.Decimal, fractions.Fraction)):
            return _exact_number(value)
        if isinstance(value, complex):
            return {"$complex": [_number(value.real), _number(value.imag)]}
        if isinstance(value, datetime.timedelta):
            return _number(value.total_seconds())
        if isinstance(value, (datetime.date, datetime.time)):  # a datetime is a date
            return value.isoformat()
        if isinstance(value, (uuid.UUID, PurePath)):
            return str(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            self._count_chars(len(data), path)
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return {"$bytes": base64.b64encode(data).decode("ascii")}
        opaque = _opaque(value)
        if opaque is not None:
            return opaque
        if isinstance(value, Mapping):
            return self._mapping(value, path, depth)
        if isinstance(value, AbstractSet):
            return self._set(value, path, depth)
        if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a named tuple: its fields by name
            return self._object(value, path, depth)
        if isinstance(value, Sequence):
            return self._sequence(value, path, depth)
        return self._object(value, path, depth)

    def _object(self, value: Any, path: _Path | str, depth: int, *, top: bool = False) -> Any:
        ref = self._enter(value, path)
        if ref is not None:
            return ref
        try:
            if has_state_method(value):
                return self.value(_call_state(value, path), path, depth)
            attributes = self._attributes(value, path, depth)
            if top:
                return attributes
            return {"$class": type(value).__qualname__, **attributes}
        finally:
            del self.ancestors[id(value)]

    def _attributes(self, value: Any, path: _Path | str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for count, (name, item) in enumerate(_public_attributes(value, path)):
            if count >= self.limits.items:
                raise StateError(_render(path), f"an object has more than {self.limits.items:,} attributes")
            self._count_chars(len(name), path)
            result[name] = self.value(item, (path, _ATTRIBUTE, name), depth)
        return dict(sorted(result.items()))


def _first(pair: tuple[bytes, Any]) -> bytes:
    return pair[0]


def _number(value: float) -> Any:
    if value != value:  # NaN
        return {"$float": "nan"}
    if value in (math.inf, -math.inf):
        return {"$float": "inf" if value > 0 else "-inf"}
    if value.is_integer():
        return int(value)
    return value


def _exact_number(value: decimal.Decimal | fractions.Fraction) -> Any:
    """By value, as a float or an int when one holds it exactly, else as exact text."""
    if isinstance(value, decimal.Decimal):
        if value.is_nan():
            return {"$float": "nan"}
        if value.is_infinite():
            return {"$float": "inf" if value > 0 else "-inf"}
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        if decimal.Decimal(as_float) == value:
            return as_float
        return {"$decimal": str(value.normalize())}
    if value.denominator == 1:
        return int(value)
    as_float = float(value)
    if fractions.Fraction(as_float) == value:
        return as_float
    return {"$fraction": f"{value.numerator}/{value.denominator}"}


def _opaque(value: Any) -> dict[str, Any] | None:
    """Things that are code or streams, not data: named, never called or consumed."""
    if isinstance(value, type):
        return {"$class": "type", "$name": value.__qualname__}
    if isinstance(value, types.ModuleType):
        return {"$class": "module", "$name": value.__name__}
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return {"$class": "function", "$name": getattr(value, "__qualname__", getattr(value, "__name__", "?"))}
    if isinstance(value, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)) or (
        isinstance(value, Iterator) and not isinstance(value, (Sequence, Mapping, AbstractSet))
    ):
        return {"$class": type(value).__qualname__}
    return None


def _items(value: Any, path: _Path | str) -> Iterator[tuple[Any, Any]]:
    try:
        yield from value.items()
    except StateError:
        raise
    except Exception as error:
        raise StateError(_render(path), f"reading the mapping failed: {_error_text(error)}") from None


def _iterate(value: Any, path: _Path | str, limit: int) -> Iterator[Any]:
    try:
        for count, item in enumerate(value):
            if count >= limit:
                raise StateError(_render(path), f"a collection has more than {limit:,} items")
            yield item
    except StateError:
        raise
    except Exception as error:
        raise StateError(_render(path), f"reading the collection failed: {_error_text(error)}") from None


def has_state_method(value: Any) -> bool:
    """Whether the object's class defines a ``state()`` method (an attribute named ``state`` holding data does not count)."""
    found = inspect.getattr_static(type(value), "state", None)
    return isinstance(found, (types.FunctionType, staticmethod, classmethod))


def _call_state(value: Any, path: _Path | str) -> Any:
    try:
        return value.state()
    except Exception as error:
        raise StateError(_render(path), f"{type(value).__qualname__}.state() raised {_error_text(error)}") from None


def _public_attributes(value: Any, path: _Path | str) -> Iterator[tuple[str, Any]]:
    """The instance's own public attributes: its ``__dict__``, its slots, its dataclass or named-tuple fields."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        fields = getattr(value, "_fields", ())
        yield from ((str(name), item) for name, item in zip(fields, value, strict=False) if not str(name).startswith("_"))
        return
    dump = getattr(type(value), "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_fields"):  # a pydantic model: its own idea of its data
        try:
            data = value.model_dump()
        except Exception as error:
            raise StateError(_render(path), f"{type(value).__qualname__}.model_dump() raised {_error_text(error)}") from None
        if isinstance(data, dict):
            yield from ((str(name), item) for name, item in data.items() if not str(name).startswith("_"))
            return
    seen: set[str] = set()
    own = getattr(value, "__dict__", None)
    if isinstance(own, dict):
        for name, item in list(own.items()):
            if isinstance(name, str) and not name.startswith("_"):
                seen.add(name)
                yield name, item
    for klass in type(value).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if isinstance(name, str) and not name.startswith("_") and name not in seen:
                seen.add(name)
                try:
                    item = object.__getattribute__(value, name)
                except AttributeError:
                    continue  # an empty slot
                yield name, item


def _error_text(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:
        text = ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def canonical(value: Any, *, root: str = "", limits: Limits = DEFAULT_LIMITS) -> Any:
    """The comparable form of ``value`` (see the module's docstring); ``root`` names it in paths and errors."""
    return _Canonical(limits).value(value, root, 0)


def state_of(instance: Any, *, root: str = "", limits: Limits = DEFAULT_LIMITS) -> Any:
    """An environment instance's state: its ``state()`` when it defines one, else its public attributes, canonical.

    ``root`` (the class's name, usually) starts the paths of errors and ``$ref`` markers.
    """
    walker = _Canonical(limits)
    return walker._object(instance, root or type(instance).__qualname__, 0, top=True)


class Reading(NamedTuple):
    """One read of an instance's state (``read_state``): its canonical form, and the plain JSON its ``state()`` returned."""

    state: Any
    plain: bytes | None  # None: not plain JSON data (or no ``state()``), so never taken as unchanged


#: orjson refuses, rather than converts, what the canonical form spells its own way (subclasses, dataclasses, dates).
_PLAIN_ONLY = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _refuse(value: Any) -> Any:
    raise TypeError


def _finite(value: Any, plain: bytes) -> bool:
    """Whether ``value`` holds no NaN or infinity, which orjson writes as ``null``, as it writes ``None``."""
    if b"null" not in plain:
        return True
    try:
        json.dumps(value, allow_nan=False, default=_refuse)
    except (ValueError, TypeError):
        return False
    return True


def read_state(instance: Any, *, root: str = "", limits: Limits = DEFAULT_LIMITS, previous: Reading | None = None) -> Reading:
    """``state_of``, or ``previous`` itself when the instance's ``state()`` returned the same plain JSON as then.

    Reading a state after every call of a session is most of what the call costs: the walk to the
    canonical form. What ``state()`` returns is most often plain JSON data (dicts, lists, strings,
    numbers), which orjson writes in a few microseconds; the same text means the same data, so the
    same canonical form, and the walk is skipped (but for ``null``, which orjson also writes for NaN
    and the infinities: a reading that held one is never matched, and a text with ``null`` is
    checked for them by the standard library's encoder before it matches). Anything else (objects, sets, a float written
    differently) is walked as ``state_of`` does. ``state()`` is called once either way.
    """
    path = root or type(instance).__qualname__
    if not has_state_method(instance):
        return Reading(state_of(instance, root=root, limits=limits), None)
    value = _call_state(instance, path)
    try:
        plain: bytes | None = orjson.dumps(value, default=_refuse, option=_PLAIN_ONLY)
    except TypeError:
        plain = None
    if plain is not None and previous is not None and plain == previous.plain and _finite(value, plain):
        return previous
    walker = _Canonical(limits)
    walker.ancestors[id(instance)] = path  # as ``state_of`` has it: a state holding its instance is a ``$ref``
    canonical_state = walker.value(value, path, 0)
    if plain is not None and b"null" in plain and b'"$float"' in canonical_json(canonical_state):
        plain = None  # a NaN or an infinity written as null: this text must never match another
    return Reading(canonical_state, plain)


def canonical_json(value: Any) -> bytes:
    """The canonical JSON text of an already canonical value: sorted keys, no spaces, UTF-8."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer wider than 64 bits: the standard library writes any size
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest(state: Any, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """A hex SHA-256 of the state's canonical JSON: the same across processes, runs, dict and set orders, 25 and 25.0."""
    return json_digest(canonical_json(canonical(state, limits=limits)))


def json_digest(text: bytes) -> str:
    """``digest`` of a state whose canonical JSON is ``text`` already: every digest compared with another is made here."""
    return hashlib.sha256(text).hexdigest()


# --- diff -----------------------------------------------------------------------------


class Change(NamedTuple):
    """One difference between two states: ``kind`` is ``changed``, ``added`` or ``removed``."""

    path: str
    kind: str
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"{self.path}: added {_show(self.after)}"
        if self.kind == "removed":
            return f"{self.path}: removed {_show(self.before)}"
        return f"{self.path}: {_show(self.before)} -> {_show(self.after)}"


class Diff(list[Change]):
    """The changes found, at most the ``limit`` asked for; ``omitted`` counts those left out."""

    def __init__(self, changes: Iterable[Change] = (), omitted: int = 0) -> None:
        super().__init__(changes)
        self.omitted = omitted

    def lines(self) -> list[str]:
        """One line per change, and ``+N more changes`` when some were left out."""
        shown = [str(change) for change in self]
        if self.omitted:
            shown.append(f"+{self.omitted} more change{'s' if self.omitted != 1 else ''}")
        return shown

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _show(value: Any, limit: int = 80) -> str:
    text = canonical_json(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff(before: Any, after: Any, limit: int = 50) -> Diff:
    """What changed from ``before`` to ``after`` (states, made canonical first), one ``Change`` per leaf, in path order.

    The top level of an environment's state names its classes (``Store``), the level below
    is their state's attributes (``Store.orders``), then ``["key"]`` for a mapping's keys,
    ``.name`` for an object's attributes and ``[i]`` for list items, which compare by
    position. At most ``limit`` changes are kept; ``Diff.omitted`` counts the rest.
    """
    return diff_canonical(canonical(before), canonical(after), limit)


def diff_canonical(before: Any, after: Any, limit: int = 50) -> Diff:
    """``diff`` of two values already in canonical form (skips making them canonical again)."""
    walker = _Differ(limit)
    walker.walk(before, after, "", 0)
    return Diff(walker.changes, walker.found - len(walker.changes))


class _Differ:
    __slots__ = ("limit", "changes", "found")

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.changes: list[Change] = []
        self.found = 0

    def add(self, change: Change) -> None:
        self.found += 1
        if len(self.changes) < self.limit:
            self.changes.append(change)

    def walk(self, before: Any, after: Any, path: str, depth: int) -> None:
        if before == after and canonical_json(before) == canonical_json(after):  # == alone takes True for 1
            return
        if type(before) is dict and type(after) is dict and _same_kind(before, after):
            attributes = depth == 1 or "$class" in before
            for key in sorted(before.keys() | after.keys()):
                if depth == 0:
                    place = key
                elif attributes:
                    place = path + _attribute(key)
                else:
                    place = f"{path}[{json.dumps(key, ensure_ascii=False)}]"
                if key not in after:
                    self.add(Change(place, "removed", before[key], None))
                elif key not in before:
                    self.add(Change(place, "added", None, after[key]))
                else:
                    self.walk(before[key], after[key], place, depth + 1)
            return
        if type(before) is list and type(after) is list:
            for index in range(max(len(before), len(after))):
                place = f"{path}[{index}]"
                if index >= len(after):
                    self.add(Change(place, "removed", before[index], None))
                elif index >= len(before):
                    self.add(Change(place, "added", None, after[index]))
                else:
                    self.walk(before[index], after[index], place, depth + 1)
            return
        self.add(Change(path or "(the state)", "changed", before, after))


def _same_kind(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Two dicts compare key by key unless they are objects of two classes, or markers."""
    if before.get("$class") != after.get("$class"):
        return False
    return not any(key in before or key in after for key in ("$ref", "$float", "$bytes", "$decimal", "$fraction"))
