"""Arguments to try an API with: values it is likely to take, read from its schema and its words.

``library check`` calls each API to see that it answers. A bare placeholder ("example", 1)
makes a working API look broken (a date API refuses "example"), so each parameter gets a
ranked list of candidate values:

1. what the schema gives: ``examples``/``example``, ``const``, ``default``, ``enum``;
2. what the description says: "e.g. X", "such as X", "for example X", "like X",
   "defaults to X", a JSON literal after such a cue, quoted values, lists in parentheses, date masks
   ("YYYY-MM-DD"), standards ("ISO 4217", country codes, IANA time zones), a ``format``,
   a ``pattern`` (through ``regex_sample``), a cue in the tool's own description that
   sits by the parameter's name ("by its id, such as bk-003");
3. what the name suggests (``date``, ``city``, ``currency``, ``lat``...), then a placeholder of
   the type, within ``minimum``/``maximum``/``minLength``/``minItems``.

Every candidate is checked against the compiled schema (the format check's own types), so
an argument set made here always passes ``format-check`` when the schema allows any value
at all. ``argument_sets`` gives up to ``MAX_TRIES`` distinct sets, the best guess first; a
later set changes only the parameters whose value was a guess (a value that the schema or
its description gave is kept).

Descriptions are untrusted text: they are cut to ``MAX_TEXT`` characters and read with
linear, bounded regular expressions; JSON after a cue is parsed as JSON, never evaluated.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..schema.tools import Tool, tool_parts
from ..schema.value_types import AnyType, ArrayType, ObjectType, ScalarType, Type, UnionType
from .regex_sample import parse_pattern

MAX_TRIES = 3  # argument sets tried per API, the first included
MAX_TEXT = 2000  # characters of a description read
MAX_DEPTH = 8  # nesting followed into objects and arrays
MAX_ITEMS = 64  # items made for one array (minItems past this cannot be met)
MAX_VALUES = 5000  # values made for one argument set, all depths together
_PLACEHOLDERS: dict[str, Any] = {"string": "example", "integer": 1, "number": 1.0, "boolean": True, "null": None}
_NUMBER_LADDER = (1, 10, 100, 0, 5, -1)
_DAY = "2024-01-15"
_FORMATS: dict[str, list[Any]] = {
    "date": [_DAY],
    "date-time": [f"{_DAY}T12:00:00Z"],
    "time": ["12:00:00"],
    "email": ["user@example.com"],
    "idn-email": ["user@example.com"],
    "uri": ["https://example.com"],
    "url": ["https://example.com"],
    "iri": ["https://example.com"],
    "uri-reference": ["https://example.com"],
    "hostname": ["example.com"],
    "idn-hostname": ["example.com"],
    "ipv4": ["192.0.2.1"],
    "ipv6": ["2001:db8::1"],
    "uuid": ["123e4567-e89b-12d3-a456-426614174000"],
    "duration": ["P1D"],
    "regex": ["^a$"],
}

# --- reading descriptions -------------------------------------------------------------

_CUE = re.compile(
    r"(?:\be\.\s?g\.?|\bsuch as|\bfor (?:example|instance)|\bexamples?\s*(?:is|are|:)|\bex\.|\blike"
    r"|\bone of|\beither|\bdefaults?\s*(?:is|to|=|:)|\bdefault value\s*(?:is|:)?)[ \t]*[:,]?[ \t]*",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"(?<![\w'])(?:'([^'\n]{1,60})'|\"([^\"\n]{1,60})\"|`([^`\n]{1,60})`|[“‘]([^”’\n]{1,60})[”’])(?![\w'])")
_TOKEN = re.compile(r"[^\s,;()\[\]{}]{1,60}")
_TITLE_WORD = re.compile(r"[ \t]+([A-Z][\w.'-]{0,30})")
_SEPARATOR = re.compile(r"[ \t]*(?:,|/|\bor\b|\band\b)[ \t]*(?:or[ \t]+)?")
_NUMBER = re.compile(r"[-+]?\d{1,15}(?:\.\d{1,15})?(?:[eE][-+]?\d{1,3})?")
_RANGE = re.compile(
    r"\b(?:from|between|range)\s+([-+]?\d{1,15}(?:\.\d{1,15})?)\s*(?:to|and|-|–)\s*([-+]?\d{1,15}(?:\.\d{1,15})?)", re.I
)
_MASK = re.compile(
    r"\b(?:yyyy|dd|mm)(?:[-/.](?:yyyy|mm|dd)){1,2}(?:[T ]hh:mm(?::ss)?(?:\.s{1,6})?(?:z|[+-]hh:?mm)?)?(?![\w])"
    r"|\byyyymmdd\b|\bhh:mm(?::ss)?\b",
    re.IGNORECASE,
)
_WORD_SPLIT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _json_at(text: str, start: int) -> tuple[Any, int] | None:
    """The JSON array or object that begins at ``start`` (single quotes read as double), and where it ends."""
    opening = text[start]
    closing = "]" if opening == "[" else "}"
    depth, quote, position = 0, "", start
    limit = min(len(text), start + 500)
    while position < limit:
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                break
        position += 1
    else:
        return None
    if text[position] != closing:
        return None
    literal = text[start : position + 1]
    for attempt in (literal, literal.replace("'", '"')):
        try:
            return orjson.loads(attempt), position + 1
        except orjson.JSONDecodeError:
            continue
    return None


def _value_at(text: str, start: int) -> tuple[Any, int] | None:
    """One value written at ``start``: a JSON literal, a quoted string, or a word (with the capitalised words after it)."""
    if start >= len(text):
        return None
    if text[start] in "[{":
        return _json_at(text, start)
    quoted = _QUOTED.match(text, start)
    if quoted is not None:
        return next(group for group in quoted.groups() if group is not None), quoted.end()
    token = _TOKEN.match(text, start)
    if token is None:
        return None
    word, end = token.group(), token.end()
    if word[:1].isupper() and not word.isupper():
        for _ in range(3):  # "United States", "New York City"
            more = _TITLE_WORD.match(text, end)
            if more is None:
                break
            word, end = f"{word} {more.group(1)}", more.end()
    stripped = word.rstrip(".:!?'\"")
    if _NUMBER.fullmatch(word):
        stripped = word
    return (stripped, end) if stripped else None


_PROSE_WORDS = """
a an the this that these those to if when where which who for in on of at by with from as is are be it its any
all some each your their our his her you we they not no none null nil empty optional
"""
_PROSE = frozenset(_PROSE_WORDS.split())  # words after a cue that begin prose, not a value ("defaults to None")


def _plausible(value: Any, cue: str) -> bool:
    """Whether a word after a cue is a value rather than prose ("e.g. the user's name"); after "like", only written-out values."""
    if not isinstance(value, str):
        return True
    if value.lower() in _PROSE:
        return False
    if cue.lower().startswith("like"):
        return not value.islower()  # "like 'km'", "like London", "like P-100"; not "like a"
    return True


def description_cues(text: str) -> list[Any]:
    """The values a description gives after a cue ("e.g. X, Y or Z"), in order, then its quoted values."""
    found: list[Any] = []
    for cue in _CUE.finditer(text):
        position = cue.end()
        for _ in range(4):
            read = _value_at(text, position)
            if read is None or not _plausible(read[0], cue.group()):
                break
            found.append(read[0])
            separator = _SEPARATOR.match(text, read[1])
            if separator is None or separator.end() == read[1]:
                break
            position = separator.end()
    found.extend(next(group for group in quoted.groups() if group is not None) for quoted in _QUOTED.finditer(text))
    for _start, items in parenthesised_lists(text):
        found.extend(items)
    return found


_PAREN_LIST = re.compile(r"\(([^()\n]{1,160})\)")
_LIST_SPLIT = re.compile(r"\s*(?:,|;|/|\bor\b)\s*")


def parenthesised_lists(text: str) -> list[tuple[int, list[str]]]:
    """Lists written in parentheses, "(H, He, C, N)", with where each starts; prose in parentheses is not a list."""
    found = []
    for match in _PAREN_LIST.finditer(text):
        items = [item.strip(" .'\"`") for item in _LIST_SPLIT.split(match.group(1))]
        items = [item for item in items if item]
        words = [word.lower() for item in items for word in item.split()]
        short = 2 <= len(items) <= 12 and all(len(item) <= 30 and item.count(" ") <= 2 for item in items)
        if short and not any(word in _PROSE for word in words):  # "(before it, for a negative number)" is prose
            found.append((match.start(), items))
    return found


def _mask_value(mask: str) -> str:
    """The fixed moment 2024-01-15 12:00:00 written in a mask such as ``YYYY-MM-DD`` or ``DD/MM/YYYY HH:MM``."""
    lowered = mask.lower()
    if lowered == "yyyymmdd":
        return _DAY.replace("-", "")
    date_part, separator, time_part = lowered, "", ""
    for split in ("t", " "):
        if split in lowered and ":" in lowered:
            date_part, time_part = lowered.split(split, 1)
            separator = "T" if split == "t" else " "
            break
    if ":" in date_part:  # a time only
        date_part, time_part = "", date_part
    date = date_part.replace("yyyy", "2024").replace("mm", "01").replace("dd", "15")
    time = ""
    if time_part:
        zone = ""
        for marker in ("z", "+", "-"):
            if marker in time_part:
                time_part, zone = time_part.split(marker, 1)[0], ("Z" if marker == "z" else "+00:00")
                break
        time = time_part.replace("hh", "12").replace("mm", "00").replace("ss", "00").replace("s", "0") + zone
    return date + (separator if date and time else "") + time


def _standard_cues(text: str, kind: str) -> list[Any]:
    """Values for the standards and formats a description (or a name) mentions."""
    lowered = text.lower()
    values: list[Any] = []
    for mask in _MASK.finditer(text):
        values.append(_mask_value(mask.group()))
    if "iso 8601" in lowered or "iso-8601" in lowered or "iso8601" in lowered:
        values.extend([f"{_DAY}T12:00:00Z", _DAY] if ("time" in lowered or "stamp" in lowered) else [_DAY, f"{_DAY}T12:00:00Z"])
    if "4217" in lowered or re.search(r"currency.{0,30}\bcode|\bthree[- ]letter.{0,20}currenc", lowered):
        values.extend(["USD", "EUR", "GBP"])
    if "alpha-3" in lowered or re.search(r"three[- ]letter.{0,20}country|country.{0,20}three[- ]letter", lowered):
        values.extend(["USA", "GBR", "FRA"])
    if "3166" in lowered or re.search(r"country.{0,20}\bcode|two[- ]letter.{0,20}country", lowered):
        values.extend(["US", "GB", "FR"])
    if "iana" in lowered or "time zone" in lowered or "timezone" in lowered or "tz database" in lowered:
        values.extend(["America/New_York", "Europe/London", "UTC"])
    if "639" in lowered or re.search(r"language.{0,20}\bcode", lowered):
        values.extend(["en", "fr", "de"])
    if "unix" in lowered or "epoch" in lowered:
        values.append(1705320000 if kind in ("integer", "number") else "1705320000")
    if "uuid" in lowered:
        values.extend(_FORMATS["uuid"])
    if re.search(r"\be-?mail\b", lowered):
        values.extend(_FORMATS["email"])
    if re.search(r"\b(?:url|uri|link|website|web address)\b", lowered):
        values.extend(_FORMATS["uri"])
    return values


def _range_cue(text: str) -> tuple[float, float] | None:
    """The bounds a description gives in words ("from 0 to 100"), for a schema without ``minimum``/``maximum``."""
    found = _RANGE.search(text)
    if found is None:
        return None
    low, high = float(found.group(1)), float(found.group(2))
    return (low, high) if low <= high else None


# --- names ------------------------------------------------------------------------------

_NAME_CUES: list[tuple[frozenset[str], list[Any]]] = [
    (frozenset({"datetime", "timestamp"}), [f"{_DAY}T12:00:00Z", 1705320000]),
    (frozenset({"date", "dob", "birthday", "day"}), [_DAY]),
    (frozenset({"time"}), ["12:00", f"{_DAY}T12:00:00Z"]),
    (frozenset({"timezone", "tz", "zone"}), ["UTC", "America/New_York", "Europe/London"]),
    (frozenset({"year"}), [2024, "2024"]),
    (frozenset({"month"}), [1, "2024-01"]),
    (frozenset({"city", "town", "location", "place"}), ["London", "Paris", "Tokyo"]),
    (frozenset({"country"}), ["United States", "US", "France"]),
    (frozenset({"currency"}), ["USD", "EUR", "GBP"]),
    (frozenset({"email", "mail"}), ["user@example.com"]),
    (frozenset({"url", "uri", "link", "website", "endpoint", "homepage"}), ["https://example.com"]),
    (frozenset({"domain", "host", "hostname"}), ["example.com"]),
    (frozenset({"lat", "latitude"}), [40.7128, 51.5074, "40.7128"]),
    (frozenset({"lon", "lng", "long", "longitude"}), [-74.006, -0.1278, "-74.006"]),
    (frozenset({"lang", "language", "locale"}), ["en", "en-US", "fr"]),
    (frozenset({"unit", "units"}), ["metric", "km", "celsius"]),
    (frozenset({"symbol", "ticker"}), ["AAPL", "MSFT"]),
    (frozenset({"zip", "zipcode", "postcode", "postal"}), ["10001"]),
    (frozenset({"phone", "telephone", "mobile"}), ["+15555550100"]),
    (frozenset({"ip"}), ["192.0.2.1"]),
    (frozenset({"color", "colour"}), ["red", "#ff0000"]),
    (frozenset({"file", "filename", "path"}), ["example.txt"]),
    (frozenset({"id", "identifier", "uid", "key", "code"}), ["1", "abc123"]),
    (frozenset({"username", "author", "user", "person", "customer", "owner", "employee", "player"}), ["Alice", "Bob"]),
]


def name_words(name: str) -> list[str]:
    """A parameter's name as lower-case words: ``startDate``, ``start_date`` and ``START-DATE`` all give start, date."""
    return [word.lower() for word in _WORD_SPLIT.findall(name[:100])]


def _name_cues(name: str) -> list[Any]:
    words = name_words(name)
    joined = "".join(words)
    values: list[Any] = []
    for keys, cues in _NAME_CUES:
        if any(word in keys for word in words) or (joined not in words and joined in keys):
            values.extend(cues)
    return values


# --- candidates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A value to try, and whether the schema or its words gave it (``sure``) or it is a guess."""

    value: Any
    sure: bool


@dataclass
class _Context:
    """What one API's values are made with: its description's cues, by the text before each, and a budget."""

    tool_cues: list[tuple[str, Any]] = field(default_factory=list)
    budget: int = MAX_VALUES


def _tool_cues(description: str) -> list[tuple[str, Any]]:
    cues: list[tuple[str, Any]] = []
    for cue in _CUE.finditer(description):
        read = _value_at(description, cue.end())
        if read is not None:
            cues.append((description[max(0, cue.start() - 40) : cue.start()].lower(), read[0]))
    for start, items in parenthesised_lists(description):  # "by its symbol (H, He, C)"
        cues.extend((description[max(0, start - 40) : start].lower(), item) for item in items)
    return cues


def _kind(compiled: Type) -> str:
    if isinstance(compiled, ScalarType):
        return compiled.name
    if isinstance(compiled, ArrayType):
        return "array"
    if isinstance(compiled, ObjectType):
        return "object"
    return "any"


def _coerced(value: Any, kind: str) -> Any:
    """A cue's text as the parameter's type: "5" for an integer is 5, "true" for a boolean is True."""
    if not isinstance(value, str):
        if kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value
    if kind in ("integer", "number") and _NUMBER.fullmatch(value):
        number = float(value)
        if kind == "integer" and number.is_integer() and abs(number) < 2**53:
            return int(number)
        return number if math.isfinite(number) else value
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _schema_values(raw: dict[str, Any], compiled: Type) -> list[Any]:
    values: list[Any] = []
    examples = raw.get("examples")
    if isinstance(examples, list):
        values.extend(examples[:5])
    for key in ("example", "const", "default"):
        if key in raw and not (key == "default" and raw[key] in ("", None)):  # xLAM writes "" for "no default"
            values.append(raw[key])
    enum = raw.get("enum") if isinstance(raw.get("enum"), list) else compiled.enum
    if enum:
        values.extend(enum[:5])
    return values


def _candidates(raw: dict[str, Any], compiled: Type, name: str, context: _Context) -> Iterator[Candidate]:
    """Every value worth trying for one parameter of a scalar (or any) type, surest first."""
    kind = _kind(compiled)
    description = _text(raw.get("description"))
    for value in _schema_values(raw, compiled):
        yield Candidate(value, True)
    for value in description_cues(description):
        if isinstance(value, str) and _MASK.fullmatch(value):  # "given as 'YYYY-MM-DD'": the mask, not a value
            value = _mask_value(value)
        yield Candidate(_coerced(value, kind), True)
    for value in _standard_cues(description, kind):
        yield Candidate(value, True)
    declared_format = raw.get("format")
    if isinstance(declared_format, str):
        for value in _FORMATS.get(declared_format.lower(), []):
            yield Candidate(value, True)
    pattern = parse_pattern(raw["pattern"]) if isinstance(raw.get("pattern"), str) else None
    if pattern is not None:
        made = pattern.sample()
        if made is not None:
            yield Candidate(made, True)
    words = [word for word in name_words(name) if len(word) >= 2]
    for before, value in context.tool_cues:
        if any(re.search(rf"\b{re.escape(word)}\b", before) for word in words):
            yield Candidate(_coerced(value, kind), True)
    for value in _standard_cues(" ".join(name_words(name)), kind):
        yield Candidate(value, False)
    for value in _name_cues(name):
        yield Candidate(_coerced(value, kind), False)
    if kind in ("integer", "number"):
        said = _range_cue(description)
        for value in _NUMBER_LADDER:
            yield Candidate(_within(value, compiled, raw, kind, said), False)
    yield Candidate(_fitted_placeholder(raw, kind), False)


def _within(value: float, compiled: Type, raw: dict[str, Any], kind: str, said: tuple[float, float] | None) -> Any:
    """``value`` moved into the schema's bounds (``minimum``/``maximum``, exclusive ones, ``multipleOf``), else the described ones.

    Small values come first (1, 10, 100): an accessibility test should be cheap, and
    ``fibonacci(500000)`` would not be.
    """
    low, high = _bound(compiled.minimum, raw.get("minimum")), _bound(compiled.maximum, raw.get("maximum"))
    if said is not None and low is None and high is None:
        low, high = said
    exclusive_low, exclusive_high = raw.get("exclusiveMinimum"), raw.get("exclusiveMaximum")
    step = 1 if kind == "integer" else 0.5
    if low is not None and value < low:
        value = low
    if isinstance(exclusive_low, (int, float)) and not isinstance(exclusive_low, bool) and value <= exclusive_low:
        value = exclusive_low + step
    if high is not None and value > high:
        value = high
    if isinstance(exclusive_high, (int, float)) and not isinstance(exclusive_high, bool) and value >= exclusive_high:
        value = exclusive_high - step
    multiple = raw.get("multipleOf")
    if isinstance(multiple, (int, float)) and not isinstance(multiple, bool) and multiple > 0:
        with contextlib.suppress(OverflowError, ValueError):  # a multipleOf of 1e-300: the value stays as it is
            value = math.ceil(value / multiple) * multiple
    if kind == "integer":
        if not math.isfinite(value):
            return 1
        rounded = math.ceil(value)
        return rounded - 1 if high is not None and rounded > high else rounded  # 0 for an integer of at most 0.6
    return float(value)


def _bound(compiled: float | None, written: Any) -> float | None:
    """A bound from the compiled type, else as the schema wrote it (a union keeps its bounds on itself, not on each option)."""
    if compiled is not None:
        return compiled
    return written if isinstance(written, (int, float)) and not isinstance(written, bool) else None


def _fitted_placeholder(raw: dict[str, Any], kind: str) -> Any:
    value = _PLACEHOLDERS.get(kind, "example")
    if kind == "string":
        shortest, longest = raw.get("minLength"), raw.get("maxLength")
        if isinstance(shortest, int) and 0 < shortest <= 1000 and len(value) < shortest:
            value = (value * (shortest // len(value) + 1))[:shortest]
        if isinstance(longest, int) and 0 <= longest < len(value):
            value = value[:longest]
    return value


def _fits_words(value: Any, raw: dict[str, Any]) -> bool:
    """What the compiled types do not check: string lengths and a pattern apigen can read safely."""
    if not isinstance(value, str):
        return True
    shortest, longest = raw.get("minLength"), raw.get("maxLength")
    if isinstance(shortest, int) and len(value) < shortest:
        return False
    if isinstance(longest, int) and len(value) > longest:
        return False
    if isinstance(raw.get("pattern"), str):
        pattern = parse_pattern(raw["pattern"])
        if pattern is not None and not pattern.matches(value):
            return False
    return True


# --- values ----------------------------------------------------------------------------


def _choose(found: list[Candidate], attempt: int) -> Candidate:
    """The ``attempt``-th candidate, but never a guess in place of a value the schema or its words gave."""
    pool = [candidate for candidate in found if candidate.sure] if found[0].sure else found
    return pool[min(attempt, len(pool) - 1)]


def _valid(value: Any, compiled: Type, raw: dict[str, Any], where: str) -> bool:
    try:
        return compiled.check(value, where) is None and _fits_words(value, raw)
    except (TypeError, ValueError, RecursionError):
        return False


def make_value(raw: Any, compiled: Type, name: str, attempt: int, context: _Context, depth: int = 0) -> Candidate:
    """The value for one parameter in argument set ``attempt`` (0 is the best guess)."""
    raw = raw if isinstance(raw, dict) else {}
    context.budget -= 1
    found: list[Candidate] = []
    seen: set[bytes] = set()
    closest: Candidate | None = None  # when the schema allows no value at all, the last (type-shaped) try
    for candidate in _compound_candidates(raw, compiled, name, attempt, context, depth):
        closest = candidate
        key = _identity(candidate.value)
        if key in seen or not _valid(candidate.value, compiled, raw, name):
            continue
        seen.add(key)
        found.append(candidate)
        if len(found) > MAX_TRIES + 2:
            break
    if not found:
        return (
            Candidate(closest.value, False)
            if closest is not None
            else Candidate(_fitted_placeholder(raw, _kind(compiled)), False)
        )
    return _choose(found, attempt)


def _compound_candidates(
    raw: dict[str, Any], compiled: Type, name: str, attempt: int, context: _Context, depth: int
) -> Iterator[Candidate]:
    if isinstance(compiled, UnionType):
        yield from _union_candidates(raw, compiled, name, attempt, context, depth)
        return
    if not isinstance(compiled, (ArrayType, ObjectType)):
        yield from _candidates(raw, compiled, name, context)
        return
    for value in _schema_values(raw, compiled):
        yield Candidate(value, True)
    cues = description_cues(_text(raw.get("description")))
    for value in cues:
        if isinstance(value, (list, dict)):
            yield Candidate(value, True)
    words = [value for value in cues if isinstance(value, str)]
    if words and isinstance(compiled, ArrayType):  # "e.g. apple, banana" for a list of strings
        yield Candidate(words[: max(compiled.min_items or 1, 2)], True)
    if depth >= MAX_DEPTH or context.budget <= 0:
        yield Candidate([] if isinstance(compiled, ArrayType) else {}, False)
        return
    if isinstance(compiled, ArrayType):
        yield _array(raw, compiled, name, attempt, context, depth)
    else:
        yield _object(raw, compiled, attempt, context, depth)


def _union_candidates(
    raw: dict[str, Any], compiled: UnionType, name: str, attempt: int, context: _Context, depth: int
) -> Iterator[Candidate]:
    for value in _schema_values(raw, compiled):
        yield Candidate(value, True)
    combined = raw.get("anyOf") if isinstance(raw.get("anyOf"), list) else raw.get("oneOf")
    declared = raw.get("type")
    options = [option for option in compiled.options if not (isinstance(option, ScalarType) and option.name == "null")]
    options = options or list(compiled.options)
    for index, option in enumerate(options):
        option_raw: dict[str, Any] = {key: value for key, value in raw.items() if key not in ("anyOf", "oneOf")}
        if isinstance(combined, list) and len(combined) >= len(compiled.options):
            position = compiled.options.index(option)
            if isinstance(combined[position], dict):
                option_raw = {**option_raw, **combined[position]}
        elif isinstance(declared, list):
            option_raw["type"] = option.name
        chosen = make_value(option_raw, option, name, attempt, context, depth + 1)
        yield Candidate(chosen.value, chosen.sure and index == 0)


def _array(raw: dict[str, Any], compiled: ArrayType, name: str, attempt: int, context: _Context, depth: int) -> Candidate:
    """Two items unless the schema says otherwise (a mean, a spread or a pair needs more than one); three, then one, later."""
    if compiled.prefix is not None:
        raw_items = raw.get("prefixItems") if isinstance(raw.get("prefixItems"), list) else raw.get("items")
        raws = raw_items if isinstance(raw_items, list) else []
        made = [
            make_value(raws[index] if index < len(raws) else {}, item, f"{name}[{index}]", attempt, context, depth + 1)
            for index, item in enumerate(compiled.prefix)
        ]
        return Candidate([item.value for item in made], all(item.sure for item in made))
    count = (2, 3, 1)[min(attempt, 2)]
    if compiled.min_items is not None:
        count = max(count, compiled.min_items)
    if compiled.max_items is not None:
        count = min(count, compiled.max_items)
    count = min(count, MAX_ITEMS, max(context.budget, 1))
    item_type = compiled.items if compiled.items is not None else ScalarType("string")
    raw_item: dict[str, Any] = raw["items"] if isinstance(raw.get("items"), dict) else {}
    first = make_value(raw_item, item_type, f"{name}[]", attempt, context, depth + 1)
    # Repeated items are one value many times over, but checking or writing them walks each:
    # keep the whole array within MAX_VALUES values.
    count = max(1, min(count, MAX_VALUES // value_size(first.value)))
    items = [first.value]
    for index in range(1, count):
        if isinstance(item_type, (ArrayType, ObjectType)):
            items.append(first.value)  # one made item, repeated: nested work stays linear
            continue
        varied = _varied(first.value, index)
        if varied == first.value:  # a string or a choice: the next candidate ("km", "mi"; London, Paris)
            varied = make_value(raw_item, item_type, f"{name}[]", attempt + index, context, depth + 1).value
        items.append(varied if _valid(varied, item_type, raw_item, name) else first.value)
    context.budget -= count
    return Candidate(items[:count], False)


def _identity(value: Any) -> bytes:
    """One key for JSON-equal values, integers past 64 bits included (orjson refuses those)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, default=repr).encode()


def value_size(value: Any, limit: int = MAX_VALUES) -> int:
    """How many JSON values ``value`` holds, itself included, counted up to ``limit``."""
    size, stack = 0, [value]
    while stack and size < limit:
        item = stack.pop()
        size += 1
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return min(size, limit)


def _varied(value: Any, index: int) -> Any:
    """The ``index``-th item of a made array: numbers differ (1, 2, ...), so a spread is not zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value + index


def _object(raw: dict[str, Any], compiled: ObjectType, attempt: int, context: _Context, depth: int) -> Candidate:
    """The required members (all declared ones when none is required); ``{"key": value}`` for a typed map."""
    raw_properties: dict[str, Any] = raw["properties"] if isinstance(raw.get("properties"), dict) else {}
    keys = list(compiled.required_in_order) or list(compiled.properties)
    made: dict[str, Any] = {}
    sure = True
    for key in keys:
        member = compiled.properties.get(key, AnyType())
        chosen = make_value(raw_properties.get(key, {}), member, key, attempt, context, depth + 1)
        made[key] = chosen.value
        sure = sure and chosen.sure
    if not compiled.properties and isinstance(compiled.additional, Type) and not isinstance(compiled.additional, AnyType):
        extra = raw.get("additionalProperties") if isinstance(raw.get("additionalProperties"), dict) else {}
        made["key"] = make_value(extra, compiled.additional, "key", attempt, context, depth + 1).value
        sure = False
    return Candidate(made, sure and bool(made))


# --- whole argument sets -----------------------------------------------------------------


def _parameter_schemas(tool: Tool) -> dict[str, Any]:
    """Each parameter's raw schema (for its words and hints) by name, in either dialect."""
    _body, _name, parameters = tool_parts(dict(tool.definition), 1)
    if not isinstance(parameters, dict):
        return {}
    if tool.dialect == "xlam":
        return {key: {k: v for k, v in spec.items() if k != "type"} for key, spec in parameters.items() if isinstance(spec, dict)}
    properties = parameters.get("properties")
    return properties if isinstance(properties, dict) else {}


def argument_sets(tool: Tool, tries: int = MAX_TRIES) -> list[dict[str, Any]]:
    """Up to ``tries`` distinct argument sets for the tool's required parameters, the best guess first."""
    schemas = _parameter_schemas(tool)
    context = _Context(_tool_cues(_text(tool.description)))
    sets: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    for attempt in range(tries):
        context.budget = MAX_VALUES
        arguments = {
            key: make_value(schemas.get(key, {}), tool.parameters.properties.get(key, AnyType()), key, attempt, context).value
            for key in tool.parameters.required_in_order
        }
        key = _identity(arguments)
        if key not in seen:
            seen.add(key)
            sets.append(arguments)
    return sets
