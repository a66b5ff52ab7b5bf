"""Cutting secrets out of what comes back: the whole secret, and any long piece of it.

An endpoint that echoes the API key (a compromised or hostile one, or an error page that
quotes the request) must not get it into a row, a log, the cache or a message. Replacing
only the whole key misses the echoes that matter as much: `sk-proj-AbC…` cut after 30
characters, the key's tail, the key inside a longer token. So every piece of a secret at
least ``MIN_PIECE`` characters long is replaced by ``***`` too.

Finding the pieces is linear in the text: a piece of ``MIN_PIECE`` characters or more holds
at least one of the secret's aligned chunks of ``MIN_PIECE // 2`` characters, so each chunk
is looked up with ``find`` (C speed) and a hit is grown left and right by halving slice
comparisons, never character by character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

MIN_PIECE = 12  # shorter pieces are too likely to be ordinary text (and say little of a key)
MASK = "***"

Text = TypeVar("Text", str, bytes)


class Redactor:
    """Replaces the given secrets, and their long pieces, by ``***`` in text, bytes and JSON values."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({secret for secret in secrets if secret}, key=len, reverse=True))
        self._secret_bytes = tuple(secret.encode() for secret in self.secrets)
        probes = _probes(self._secret_bytes)
        self._probe = None if probes is None else re.compile(b"|".join(re.escape(probe) for probe in probes))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def may_be_in(self, json_data: bytes) -> bool:
        """Whether JSON text may hold one of the secrets, or a long piece of one; ``False`` is sure.

        A piece worth cutting holds one of a secret's aligned chunks (see the module's
        docstring), and JSON writes a secret of plain printable ASCII as it is: so one regular
        expression search over the bytes (C speed, about 1 µs a frame) spares the walk over a
        value that holds none (about 100 µs for a result of a few hundred characters).
        A secret JSON would escape (a quote, a backslash, a control character, non-ASCII) is
        always looked for.
        """
        if not self.secrets:
            return False
        return self._probe is None or self._probe.search(json_data) is not None

    def text(self, text: str) -> str:
        return _cut(text, self.secrets, MASK) if self.secrets else text

    def data(self, data: bytes) -> bytes:
        return _cut(data, self._secret_bytes, MASK.encode()) if self.secrets else data

    def value(self, value: Any) -> Any:
        """A JSON value with every string in it (keys included) redacted."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        return value


def _probes(secrets: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
    """What ``may_be_in`` looks for: each secret whole when short, else its aligned chunks; ``None``: look always."""
    probes: list[bytes] = []
    chunk = MIN_PIECE // 2
    for secret in secrets:
        if not all(32 <= byte < 127 and byte not in b'"\\' for byte in secret):
            return None
        if len(secret) <= MIN_PIECE:
            probes.append(secret)
        else:
            probes.extend(secret[offset : offset + chunk] for offset in range(0, len(secret) - chunk + 1, chunk))
    return tuple(probes)


def _cut(text: Text, secrets: tuple[Text, ...], mask: Text) -> Text:
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        spans.extend(_echoes(text, secret))
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces: list[Text] = []
    done = 0
    for start, end in merged:
        pieces += [text[done:start], mask]
        done = end
    pieces.append(text[done:])
    return text[:0].join(pieces)


def _echoes(text: Text, secret: Text) -> list[tuple[int, int]]:
    """Where ``text`` holds ``secret`` whole, or a piece of it of ``MIN_PIECE`` characters or more."""
    found: list[tuple[int, int]] = []
    if len(secret) <= MIN_PIECE:
        position = text.find(secret)
        while position != -1:
            found.append((position, position + len(secret)))
            position = text.find(secret, position + len(secret))
        return found
    chunk = MIN_PIECE // 2
    for offset in range(0, len(secret) - chunk + 1, chunk):
        needle = secret[offset : offset + chunk]
        position = text.find(needle)
        while position != -1:
            left = _matching_before(text, position, secret, offset)
            right = _matching_after(text, position + chunk, secret, offset + chunk)
            start, end = position - left, position + chunk + right
            if end - start >= MIN_PIECE:
                found.append((start, end))
            position = text.find(needle, position + 1)
    return found


def _matching_after(text: Text, at: int, secret: Text, from_: int) -> int:
    """How many characters of ``text`` from ``at`` equal ``secret`` from ``from_`` (binary search on slices)."""
    low, high = 0, min(len(text) - at, len(secret) - from_)
    while low < high:
        middle = (low + high + 1) // 2
        if text[at : at + middle] == secret[from_ : from_ + middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _matching_before(text: Text, at: int, secret: Text, to: int) -> int:
    """How many characters of ``text`` before ``at`` equal ``secret`` before ``to``."""
    low, high = 0, min(at, to)
    while low < high:
        middle = (low + high + 1) // 2
        if text[at - middle : at] == secret[to - middle : to]:
            low = middle
        else:
            high = middle - 1
    return low
