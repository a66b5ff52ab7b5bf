"""Deduplication: the first of several equal rows is kept, the others are rejected naming it.

- **Exact duplicates** (``reason: "duplicate"``): the same query once whitespace and case
  are normalised, and the same calls once the key order of every object is (call order
  counts: it is part of the answer).
- **Near duplicates** (``reason: "near_duplicate"``): the same calls, and queries whose
  sets of words (lower-cased ``\\w+`` runs; single-word shingles, since queries are a
  sentence or two and "differ in a few words" is what is meant) have a Jaccard
  similarity of at least ``threshold``.

Rows are only ever compared with kept rows that make the same calls, so the work is
hashing, not comparing all pairs. Within such a group, the first few kept rows are
compared one by one (exactly); once a group grows past ``LINEAR_LIMIT`` rows it gets a
MinHash signature per row and an LSH index of bands, which finds a row at the threshold
with probability 0.999 (``MinHashBands``). What is kept per row is its id, a 64-bit
hash of its calls and one of its query, and its normalised query as UTF-8 bytes (words
are only split and hashed when a row meets another with the same calls, which most
rows never do: that halves the time of the whole stage); never the row.

Everything is deterministic: hashes are blake2b and crc32, the MinHash permutations
come from a fixed seed, so the same input gives the same output on every run.
"""

from __future__ import annotations

import json
import math
import random
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from hashlib import blake2b
from typing import Any

import orjson

from ..errors import ConfigError
from ..problems import Problem, RowProblem
from ..rows.records import ANSWERS, QUERY, REJECTED_BY, Row, calls_of, ensure_id, reject

STAGE = "dedup"
DUPLICATE_OF = "duplicate_of"
DEFAULT_THRESHOLD = 0.8
LINEAR_LIMIT = 8

_WORD = re.compile(r"\w+")
_PRIME = (1 << 61) - 1


def dedup(rows: Iterable[Row], *, threshold: float = DEFAULT_THRESHOLD, near: bool = True) -> Iterator[Row]:
    """Yield every row in input order, duplicates rejected by ``"dedup"`` with ``duplicate_of``; lazily.

    Rows rejected by an earlier stage pass through untouched and are not remembered.
    A threshold outside (0, 1] raises ``ConfigError`` at once.
    """
    return _dedup(rows, DedupIndex(threshold=threshold, near=near))


def _dedup(rows: Iterable[Row], index: DedupIndex) -> Iterator[Row]:
    for row in rows:
        yield row if REJECTED_BY in row else index.check(row)


def normalised_query(query: Any) -> str:
    """The query with case and runs of whitespace ironed out."""
    return " ".join(str(query if query is not None else "").split()).casefold()


def _hash64(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


def calls_key(row: Row) -> int:
    """A 64-bit hash of the row's calls, blind to the key order of every object."""
    try:
        calls: Any = calls_of(row)
    except RowProblem:
        calls = row.get(ANSWERS)  # unreadable calls still meet their exact copies
    try:
        data = orjson.dumps(calls, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = json.dumps(calls, sort_keys=True, default=repr).encode()
    return _hash64(data)


def words_of(text: str) -> set[str]:
    """The distinct words of an already normalised query."""
    return set(_WORD.findall(text))


def word_hashes(words: Iterable[str]) -> list[int]:
    """Stable 32-bit hashes of words (crc32), the input of a MinHash signature."""
    return [zlib.crc32(word.encode()) for word in words]


def jaccard(first: set[str], second: set[str]) -> float:
    if not first or not second:
        return 0.0
    common = len(first & second)
    return common / (len(first) + len(second) - common)


class MinHashBands:
    """MinHash signatures cut into LSH bands, sized so that a pair at ``threshold`` meets with probability 0.999."""

    def __init__(self, threshold: float) -> None:
        self.rows = 3 if threshold >= 0.6 else 2 if threshold >= 0.3 else 1
        chance = threshold**self.rows  # that one band of a pair at the threshold agrees
        self.bands = 1 if chance >= 1 else max(1, min(64, math.ceil(math.log(0.001) / math.log(1 - chance))))
        generator = random.Random(0x5EED)
        count = self.bands * self.rows
        self.permutations = [(generator.randrange(1, _PRIME), generator.randrange(0, _PRIME)) for _ in range(count)]

    def band_keys(self, hashes: list[int]) -> list[int]:
        """One key per band; two rows that share a key are candidates."""
        if not hashes:
            return []
        signature = [min((a * value + b) % _PRIME for value in hashes) for a, b in self.permutations]
        rows = self.rows
        return [hash((band, *signature[band * rows : (band + 1) * rows])) for band in range(self.bands)]


class _Group:
    """The kept rows that make the same calls: how to find an equal query and a near one among them."""

    __slots__ = ("ids", "queries", "texts", "buckets")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.queries: dict[int, int] = {}  # query hash -> member number
        self.texts: list[bytes] = []  # normalised queries, for near duplicates
        self.buckets: dict[int, list[int]] | None = None


_Single = tuple[str, int, bytes]  # one kept row: id, query hash, normalised query (b"" without near)


class DedupIndex:
    """What dedup remembers of the kept rows, and the verdict on each new one."""

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, near: bool = True) -> None:
        if not 0 < threshold <= 1:
            raise ConfigError(
                f"`--threshold` must be above 0 and at most 1, got {threshold}",
                hint="pass a Jaccard similarity such as 0.8 (1 takes only the very same words)",
            )
        self.threshold = threshold
        self.near = near
        self.bands = MinHashBands(threshold)
        self._groups: dict[int, _Single | _Group] = {}

    def check(self, row: Row) -> Row:
        """Reject ``row`` as a (near) duplicate of a kept row, or keep it and remember it."""
        row_id = ensure_id(row)
        text = normalised_query(row.get(QUERY))
        query_hash = _hash64(text.encode())
        key = calls_key(row)
        found = self._groups.get(key)
        stored = text.encode() if self.near else b""
        if found is None:
            self._groups[key] = (row_id, query_hash, stored)
            return row
        if isinstance(found, tuple):
            group = _Group()
            self._add(group, *found)
            self._groups[key] = group
        else:
            group = found
        same = group.queries.get(query_hash)
        if same is not None:
            kept = group.ids[same]
            return _reject(
                row, "duplicate", kept, f"row `{kept}` has the same query (ignoring case and spacing) and the same calls"
            )
        words = words_of(text) if self.near else set()
        if words:
            match = self._nearest(group, words)
            if match is not None:
                kept, similarity = group.ids[match[0]], match[1]
                detail = (
                    f"row `{kept}` makes the same calls, and its query has {similarity:.0%} of the same words "
                    f"(Jaccard {similarity:.2f}, threshold {self.threshold:.2f})"
                )
                return _reject(row, "near_duplicate", kept, detail)
        self._add(group, row_id, query_hash, stored, words)
        return row

    def _add(self, group: _Group, row_id: str, query_hash: int, text: bytes, words: set[str] | None = None) -> None:
        member = len(group.ids)
        group.ids.append(row_id)
        group.queries.setdefault(query_hash, member)
        if not self.near:
            return
        group.texts.append(text)
        if group.buckets is None and len(group.ids) > LINEAR_LIMIT:
            group.buckets = {}
            for number, stored in enumerate(group.texts):
                self._index(group, number, _words(stored))
        elif group.buckets is not None:
            self._index(group, member, words if words is not None else _words(text))

    def _index(self, group: _Group, member: int, words: set[str]) -> None:
        assert group.buckets is not None
        for band_key in self.bands.band_keys(word_hashes(words)):
            group.buckets.setdefault(band_key, []).append(member)

    def _nearest(self, group: _Group, words: set[str]) -> tuple[int, float] | None:
        """The kept member whose words are most like ``words``, at or above the threshold (the first of equals), if any."""
        if group.buckets is None:
            candidates: Iterable[int] = range(len(group.ids))
        else:
            found: set[int] = set()
            for band_key in self.bands.band_keys(word_hashes(words)):
                found.update(group.buckets.get(band_key, ()))
            candidates = sorted(found)
        best: tuple[int, float] | None = None
        for member in candidates:
            similarity = jaccard(words, _words(group.texts[member]))
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (member, similarity)
        return best


def _words(text: bytes) -> set[str]:
    return words_of(text.decode())


def _reject(row: Row, reason: str, kept_id: str, detail: str) -> Row:
    reject(row, STAGE, Problem(reason, detail))
    row[DUPLICATE_OF] = kept_id
    return row


def primed_dedup(
    seen: Iterable[Row], *, threshold: float = DEFAULT_THRESHOLD, near: bool = True
) -> Callable[[Iterable[Row]], Iterator[Row]]:
    """A dedup stage that already knows ``seen`` (rows kept earlier, e.g. before a resumed run stopped)."""
    index = DedupIndex(threshold=threshold, near=near)
    for row in seen:
        if REJECTED_BY not in row:
            index.check(row)
    return lambda rows: _dedup(rows, index)
