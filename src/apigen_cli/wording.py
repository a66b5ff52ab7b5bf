"""Small helpers for the words apigen says to people: counts with the right plural."""

from __future__ import annotations


def counted(number: int, word: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1 API``, ``3 APIs``, ``1 library`` / ``2 libraries`` (``plural`` when not word + s)."""
    return f"{number} {word if number == 1 else plural or word + 's'}"


def top_counts(pairs: list[tuple[str, int]], shown: int = 5) -> str:
    """``code 12, other 3``: the first ``shown`` of (name, count) pairs, then ``+N more`` when some are left out."""
    text = ", ".join(f"{name} {count}" for name, count in pairs[:shown])
    return text + (f", +{len(pairs) - shown} more" if len(pairs) > shown else "")
