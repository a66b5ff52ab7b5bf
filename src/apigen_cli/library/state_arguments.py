"""Arguments for an environment's tool drawn from its initial state's real records.

A trial argument made from the schema (``order_id="ORD-318204"``, the docstring's example)
names a record the state does not hold, so the call fails and ``library check`` learns nothing
of whether the tool reads or writes. Here each argument set is built around one record of the
state, its *anchor*: a record that holds a value whose name fits the tool's first parameter
that the state can fill (``order_id`` fits an order's ``order_id`` field, or its key in
``orders``). Every other parameter takes the value of the nearest record to the anchor whose
field fits its name (the order's own fields, then its items and payments, then its
neighbours), so the values belong together: the SKUs of that order, the payment method it
was paid with. A parameter named ``new_X`` takes another record of the collection that the
``X`` value names (another variant of the same product).

Only identifiers come from the state (names ending in ``id``, ``sku``, ``email``, ``key``,
``number``, ``uuid``), unless the tool takes no identifier at all (a lookup by first name,
last name and zip code): a write's other values are better the schema's, since setting an
address to the address it already is changes nothing. Anchors are taken in turns across the
kinds of record (an order of each status before a second of any), so that a tool that only
works on a pending order meets one within a few tries. The state is walked once, within
``MAX_RECORDS`` records and ``MAX_NESTING`` levels; values that do not fit the parameter's schema are skipped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..schema.tools import Tool
from ..schema.value_types import ArrayType, Type
from .trial_arguments import name_words

MAX_RECORDS = 20_000  # records of the state read: past this, the rest is not looked at
MAX_NESTING = 32  # objects within objects followed: deeper ones are not read (the walk is recursive)
MAX_DISTANCE = 4  # steps from the anchor (to a parent, a child) a value is looked for
_IDENTIFIER_WORDS = frozenset({"id", "sku", "email", "key", "number", "uuid"})  # of a name made singular
_GENERIC_WORDS = frozenset({"id", "name", "code", "number", "key", "type", "value", "new"})
_CATEGORY_VALUES = 12  # a field with at most this many values across the anchors tells their kinds apart


@dataclass(eq=False)
class Record:
    """A JSON object of the state: its named values (its own fields and its key in its collection), and its neighbours."""

    values: list[tuple[tuple[str, ...], Any]] = field(default_factory=list)
    neighbours: list[Record] = field(default_factory=list)
    identity: Any = None  # the key it is held under in a collection of records
    siblings: list[Any] = field(default_factory=list)  # the other keys of that collection


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        return word[:-1]
    return word


def _words(name: str) -> tuple[str, ...]:
    return tuple(singular(word) for word in name_words(name))


def read_records(state: Any) -> list[Record]:
    """Every JSON object of ``state``, in document order, linked to its parent and children."""
    records: list[Record] = []

    def walk(value: Any, name: str, parent: Record | None, identity: Any, siblings: list[Any], depth: int = 0) -> None:
        if len(records) >= MAX_RECORDS or depth > MAX_NESTING:
            return
        if isinstance(value, list):
            for item in value[:MAX_RECORDS]:
                walk(item, name, parent, None, [], depth + 1)
            return
        if not isinstance(value, dict):
            return
        record = Record(identity=identity, siblings=siblings)
        records.append(record)
        if parent is not None:
            record.neighbours.append(parent)
            parent.neighbours.append(record)
            if identity is not None:
                record.values.append(((*_words(name), "id"), identity))
        keys = [key for key in value if isinstance(key, str)]
        # a collection of records keyed by id (``orders``); the state's own top level names its parts instead
        collection = bool(name) and bool(value) and all(isinstance(item, dict) for item in value.values())
        for key in keys:
            member = value[key]
            if _scalar(member):
                record.values.append((_words(key), member))
            elif isinstance(member, list) and all(_scalar(item) for item in member):
                record.values.extend((_words(key), item) for item in member[:100])
            else:
                child_name = name if collection else key
                walk(member, child_name, record, key if collection else None, keys if collection else [], depth + 1)

    walk(state, "", None, None, [])
    return records


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def fit(parameter: tuple[str, ...], name: tuple[str, ...]) -> int:
    """How well a value's name fits a parameter's: 2 the same words; 1 the same last word and another in common
    (``refund_method_id``, ``payment_method_id``), or one's words within the other's with a telling word among them
    (``zip``, ``zip_code``; not ``id`` alone, nor ``name``); 0 not."""
    if not parameter or not name:
        return 0
    if parameter == name:
        return 2
    if parameter[-1] == name[-1] and len(set(parameter) & set(name)) >= 2:
        return 1
    shorter, longer = sorted((parameter, name), key=len)
    if all(word in longer for word in shorter) and not set(shorter) <= _GENERIC_WORDS:
        return 1
    return 0


def _identifier(words: tuple[str, ...]) -> bool:
    return bool(words) and words[-1] in _IDENTIFIER_WORDS


def _nearest(start: Record, wanted: tuple[str, ...], taken: set[Any], valid: Callable[[Any], bool]) -> Any:
    """The value fitting ``wanted`` in the record nearest ``start`` (best fit first within a distance), or None."""
    seen = {id(start)}
    frontier = deque([(start, 0)])
    while frontier:
        distance = frontier[0][1]
        best: tuple[int, Any] | None = None
        while frontier and frontier[0][1] == distance:
            record, _ = frontier.popleft()
            for name, value in record.values:
                score = fit(wanted, name)
                if score and value not in taken and valid(value) and (best is None or score > best[0]):
                    best = (score, value)
            if distance < MAX_DISTANCE:
                for neighbour in record.neighbours:
                    if id(neighbour) not in seen:
                        seen.add(id(neighbour))
                        frontier.append((neighbour, distance + 1))
        if best is not None:
            return best[1]
    return None


@dataclass(frozen=True)
class _Parameter:
    name: str
    words: tuple[str, ...]  # of the name, singular (``skus`` -> sku); without ``new`` for a ``new_X``
    renews: bool  # ``new_X``: another record of the collection the ``X`` value names
    many: bool  # an array: the value is given as a list of one
    check: Callable[[Any], bool]


def _valid(value: Any, compiled: Type, where: str) -> bool:
    try:
        return compiled.check(value, where) is None
    except (TypeError, ValueError, RecursionError):
        return False


def _parameters(tool: Tool) -> list[_Parameter]:
    made = []
    for name in tool.parameters.required_in_order:
        compiled = tool.parameters.properties.get(name)
        if compiled is None:
            continue
        words = _words(name)
        renews = len(words) > 1 and words[0] == "new"
        many = isinstance(compiled, ArrayType)
        item = compiled.items if isinstance(compiled, ArrayType) and compiled.items is not None else compiled

        def check(value: Any, item: Type = item, compiled: Type = compiled, many: bool = many, name: str = name) -> bool:
            return _valid(value, item, name) and (not many or _valid([value], compiled, name))

        made.append(_Parameter(name, words[1:] if renews else words, renews, many, check))
    return made


def state_argument_sets(tool: Tool, records: list[Record], base: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Up to ``count`` argument sets, each around another anchor record; ``base`` gives what the state does not."""
    parameters = _parameters(tool)
    drawn = [parameter for parameter in parameters if not parameter.renews]
    if any(_identifier(parameter.words) for parameter in drawn):  # else a lookup by a record's fields: all from the state
        drawn = [parameter for parameter in drawn if _identifier(parameter.words)]
    if not drawn:
        return []
    first = drawn[0]
    anchors = [
        record for record in records if any(fit(first.words, name) and first.check(value) for name, value in record.values)
    ]
    sets = []
    for anchor in _in_turns(anchors)[:count]:
        arguments = dict(base)
        taken: set[Any] = set()
        chosen: dict[tuple[str, ...], Any] = {}
        for parameter in drawn:
            value = _nearest(anchor, parameter.words, taken, parameter.check)
            if value is not None:
                taken.add(value)
                chosen[parameter.words] = value
                arguments[parameter.name] = [value] if parameter.many else value
        for parameter in parameters:
            if parameter.renews and parameter.words in chosen:
                other = _renewed(records, chosen[parameter.words], parameter.check)
                if other is not None:
                    arguments[parameter.name] = [other] if parameter.many else other
        sets.append(arguments)
    return sets


def _renewed(records: list[Record], value: Any, check: Callable[[Any], bool]) -> Any:
    """Another key of the collection that holds the record ``value`` names (another variant of its product)."""
    for record in records:
        if record.identity == value:
            return next((other for other in record.siblings if other != value and check(other)), None)
    return None


def _in_turns(anchors: list[Record]) -> list[Record]:
    """The anchors one kind at a time (an order of each status first): a kind is the value of the anchors' string
    field with the fewest values (two at least, at most ``_CATEGORY_VALUES``)."""
    if len(anchors) < 2:
        return anchors
    seen: dict[tuple[str, ...], set[Any]] = {}
    for anchor in anchors:
        for name, value in anchor.values:
            if isinstance(value, str):
                seen.setdefault(name, set()).add(value)
    categories = sorted((len(values), name) for name, values in seen.items() if 1 < len(values) <= _CATEGORY_VALUES)
    if not categories:
        return anchors
    category = categories[0][1]
    groups: dict[Any, deque[Record]] = {}
    for anchor in anchors:
        groups.setdefault(dict(anchor.values).get(category), deque()).append(anchor)
    ordered: list[Record] = []
    while groups:
        for kind in list(groups):
            ordered.append(groups[kind].popleft())
            if not groups[kind]:
                del groups[kind]
    return ordered
