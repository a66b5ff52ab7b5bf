"""A small, safe reading of JSON Schema ``pattern``s: make a string that matches, and test one.

Patterns in a library are data from anyone, and Python's ``re`` backtracks: ``(a+)+$``
against a few dozen characters never ends. So apigen never hands a schema's pattern to
``re``. This module understands the shapes ids and codes are written in (literals,
classes, ``\\d \\w \\s``, groups, ``|``, ``? * + {m,n}``, ``^`` and ``$`` at the ends), refuses
the rest (look-arounds, back-references, inner anchors), and matches by walking sets of
positions, which takes time bounded by the pattern's size times the text's length squared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Union

MAX_PATTERN = 256  # characters of a pattern read at all
MAX_NODES = 200  # parsed pieces
MAX_REPEAT = 100  # the largest {m,n} taken
MAX_TEXT = 128  # the longest string tested against a pattern
MAX_MADE = 256  # the longest string made from one

_PREFERRED = "aA1x_-0"  # a class is shown by the first of these it holds
_DIGITS = [(ord("0"), ord("9"))]
_WORD = [(ord("a"), ord("z")), (ord("A"), ord("Z")), (ord("0"), ord("9")), (ord("_"), ord("_"))]
_SPACE = [(ord(" "), ord(" ")), (9, 13)]
_LITERAL_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}


@dataclass
class CharSet:
    """One character out of ``ranges`` (or, ``negated``, out of everything else)."""

    ranges: list[tuple[int, int]]
    negated: bool = False

    def holds(self, char: str) -> bool:
        code = ord(char)
        inside = any(low <= code <= high for low, high in self.ranges)
        return inside != self.negated

    def sample(self) -> str | None:
        for char in _PREFERRED:
            if self.holds(char):
                return char
        if not self.negated:
            return chr(self.ranges[0][0]) if self.ranges else None
        return next((chr(code) for code in range(33, 127) if self.holds(chr(code))), None)


@dataclass
class Repeat:
    node: Node
    low: int
    high: int | None


@dataclass
class Sequence:
    items: list[Node] = field(default_factory=list)


@dataclass
class Choice:
    options: list[Node]


Node = Union[CharSet, Repeat, Sequence, Choice]


class _Unsupported(Exception):
    """A pattern outside the subset: it is then neither used nor trusted."""


@dataclass
class Pattern:
    """A parsed pattern, with where it is anchored (JSON Schema patterns match anywhere unless anchored)."""

    root: Node
    anchored_start: bool
    anchored_end: bool

    def sample(self) -> str | None:
        """A string the pattern matches, or ``None`` when none short enough is found."""
        made = _make(self.root)
        if made is None or len(made) > MAX_MADE:
            return None
        return made if self.matches(made) else None

    def matches(self, text: str) -> bool:
        """Whether ``text`` matches (search semantics, as JSON Schema says); long texts are refused."""
        if len(text) > MAX_TEXT:
            return False
        memo: dict[tuple[int, int], frozenset[int]] = {}
        starts = [0] if self.anchored_start else range(len(text) + 1)
        for start in starts:
            ends = _ends(self.root, text, start, memo)
            if ends and (not self.anchored_end or len(text) in ends):
                return True
        return False


@lru_cache(maxsize=512)
def parse_pattern(text: str) -> Pattern | None:
    """The pattern, when it is in the subset this module reads; else ``None``."""
    if not isinstance(text, str) or len(text) > MAX_PATTERN:
        return None
    start = text.startswith("^")
    body = text[1:] if start else text
    end = body.endswith("$") and not body.endswith("\\$")
    body = body[:-1] if end else body
    parser = _Parser(body)
    try:
        root = parser.parse()
    except _Unsupported:
        return None
    return Pattern(root, start, end)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.nodes = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self._choice()
        if self.position != len(self.text):
            raise _Unsupported(self.text[self.position :])
        return node

    def _count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Unsupported("too large")

    def _peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def _choice(self) -> Node:
        options: list[Node] = [self._sequence()]
        while self._peek() == "|":
            self.position += 1
            options.append(self._sequence())
        return options[0] if len(options) == 1 else Choice(options)

    def _sequence(self) -> Sequence:
        sequence = Sequence()
        while self._peek() not in ("", "|", ")"):
            atom = self._atom()
            sequence.items.append(self._quantified(atom))
        return sequence

    def _quantified(self, atom: Node) -> Node:
        char = self._peek()
        bounds: tuple[int, int | None] | None = None
        if char in ("*", "+", "?"):
            self.position += 1
            bounds = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        elif char == "{":
            bounds = self._braces()
        if bounds is None:
            return atom
        if self._peek() == "?":  # lazy: the same strings match
            self.position += 1
        elif self._peek() in ("+", "*", "{"):
            raise _Unsupported("stacked quantifiers")
        self._count()
        return Repeat(atom, bounds[0], bounds[1])

    def _braces(self) -> tuple[int, int | None] | None:
        closing = self.text.find("}", self.position)
        inner = self.text[self.position + 1 : closing] if closing > 0 else ""
        low_text, comma, high_text = inner.partition(",")
        if not low_text.isdigit() or (high_text and not high_text.isdigit()):
            raise _Unsupported("braces")  # re reads "{x" as a literal; too subtle to mirror
        low = int(low_text)
        high = (int(high_text) if high_text else None) if comma else low
        if low > MAX_REPEAT or (high is not None and (high > MAX_REPEAT or high < low)):
            raise _Unsupported("repeat too large")
        self.position = closing + 1
        return low, high

    def _atom(self) -> Node:
        self._count()
        char = self._peek()
        self.position += 1
        if char == "(":
            return self._group()
        if char == "[":
            return self._class()
        if char == ".":
            return CharSet([(10, 10)], negated=True)
        if char == "\\":
            return self._escape(in_class=False)
        if char in ("*", "+", "?", "{", "^", "$"):
            raise _Unsupported(char)
        return CharSet([(ord(char), ord(char))])

    def _group(self) -> Node:
        if self.text.startswith("?:", self.position):
            self.position += 2
        elif self.text.startswith("?P<", self.position) or (
            self.text.startswith("?<", self.position) and self.text[self.position + 2 : self.position + 3] not in ("=", "!")
        ):
            closing = self.text.find(">", self.position)
            if closing < 0:
                raise _Unsupported("group name")
            self.position = closing + 1
        elif self._peek() == "?":
            raise _Unsupported("look-around or flags")
        self.depth += 1
        if self.depth > 20:
            raise _Unsupported("too deep")
        node = self._choice()
        self.depth -= 1
        if self._peek() != ")":
            raise _Unsupported("unclosed group")
        self.position += 1
        return node

    def _escape(self, *, in_class: bool) -> CharSet:
        char = self._peek()
        if not char:
            raise _Unsupported("trailing backslash")
        self.position += 1
        classes = {"d": (_DIGITS, False), "D": (_DIGITS, True), "w": (_WORD, False), "W": (_WORD, True)}
        classes.update({"s": (_SPACE, False), "S": (_SPACE, True)})
        if char in classes:
            ranges, negated = classes[char]
            if negated and in_class:
                raise _Unsupported("negated class inside a class")
            return CharSet(list(ranges), negated)
        if char in _LITERAL_ESCAPES:
            code = ord(_LITERAL_ESCAPES[char])
            return CharSet([(code, code)])
        if char.isalnum():
            raise _Unsupported(f"\\{char}")  # \b, back-references, \p{...}, \u...: not read
        return CharSet([(ord(char), ord(char))])

    def _class(self) -> CharSet:
        negated = self._peek() == "^"
        if negated:
            self.position += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            char = self._peek()
            if not char:
                raise _Unsupported("unclosed class")
            if char == "]" and not first:
                self.position += 1
                return CharSet(ranges, negated)
            first = False
            if char == "[":
                raise _Unsupported("nested class")
            self.position += 1
            if char == "\\":
                ranges.extend(self._escape(in_class=True).ranges)
                continue
            low = ord(char)
            if self._peek() == "-" and self.text[self.position + 1 : self.position + 2] not in ("]", ""):
                self.position += 1
                high_char = self._peek()
                if high_char == "\\":
                    raise _Unsupported("escaped range end")
                self.position += 1
                if ord(high_char) < low:
                    raise _Unsupported("bad range")
                ranges.append((low, ord(high_char)))
            else:
                ranges.append((low, low))


def _make(node: Node) -> str | None:
    if isinstance(node, CharSet):
        return node.sample()
    if isinstance(node, Choice):
        return _make(node.options[0])
    if isinstance(node, Sequence):
        parts = []
        for item in node.items:
            made = _make(item)
            if made is None:
                return None
            parts.append(made)
        return "".join(parts)
    count = node.low if node.low > 0 else (1 if node.high is None or node.high >= 1 else 0)
    piece = _make(node.node)
    if piece is None:
        return None
    if len(piece) * count > MAX_MADE:
        return None
    return piece * count


def _ends(node: Node, text: str, start: int, memo: dict[tuple[int, int], frozenset[int]]) -> frozenset[int]:
    """Every position where a match of ``node`` that begins at ``start`` can end."""
    key = (id(node), start)
    found = memo.get(key)
    if found is not None:
        return found
    result: frozenset[int]
    if isinstance(node, CharSet):
        result = frozenset([start + 1]) if start < len(text) and node.holds(text[start]) else frozenset()
    elif isinstance(node, Choice):
        result = frozenset().union(*(_ends(option, text, start, memo) for option in node.options))
    elif isinstance(node, Sequence):
        current = frozenset([start])
        for item in node.items:
            current = frozenset().union(*(_ends(item, text, position, memo) for position in current))
            if not current:
                break
        result = current
    else:
        result = _repeat_ends(node, text, start, memo)
    memo[key] = result
    return result


def _repeat_ends(node: Repeat, text: str, start: int, memo: dict[tuple[int, int], frozenset[int]]) -> frozenset[int]:
    current = frozenset([start])
    for _ in range(node.low):
        current = frozenset().union(*(_ends(node.node, text, position, memo) for position in current))
        if not current:
            return current
    reached = set(current)
    count = node.low
    frontier = current
    while frontier and (node.high is None or count < node.high):
        step = frozenset().union(*(_ends(node.node, text, position, memo) for position in frontier))
        frontier = step - reached
        reached |= step
        count += 1
    return frozenset(reached)
