"""Text: counting, transforming and comparing strings."""

from __future__ import annotations

import re
import unicodedata


def word_count(text: str) -> dict[str, int]:
    """Words, characters and sentences in a text."""
    return {
        "words": len(re.findall(r"\b[\w'-]+\b", text)),
        "characters": len(text),
        "sentences": len(re.findall(r"[^.!?]+[.!?]+", text)) or (1 if text.strip() else 0),
    }


def is_palindrome(text: str, ignore_case_and_spaces: bool = True) -> bool:
    """Whether a text reads the same backwards."""
    if ignore_case_and_spaces:
        text = "".join(char.lower() for char in text if char.isalnum())
    return text == text[::-1]


def reverse_words(text: str) -> str:
    """The words of a text in reverse order."""
    return " ".join(reversed(text.split()))


def caesar_cipher(text: str, shift: int, decode: bool = False) -> str:
    """Shift each Latin letter by ``shift`` places (or back, to decode); other characters stay."""
    shift = -shift if decode else shift
    out = []
    for char in text:
        if "a" <= char <= "z" or "A" <= char <= "Z":
            base = ord("a") if char.islower() else ord("A")
            out.append(chr((ord(char) - base + shift) % 26 + base))
        else:
            out.append(char)
    return "".join(out)


def slugify(text: str, separator: str = "-") -> str:
    """A lowercase ASCII slug of a text, for URLs and file names."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", separator, ascii_text.lower()).strip(separator)


def levenshtein_distance(first: str, second: str) -> int:
    """The edit distance between two strings (insertions, deletions, substitutions)."""
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, start=1):
        current = [i]
        for j, b in enumerate(second, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def find_anagrams(word: str, candidates: list[str]) -> list[str]:
    """The candidates that are anagrams of a word (case-insensitive, the word itself excluded)."""
    key = sorted(word.lower())
    return [candidate for candidate in candidates if candidate.lower() != word.lower() and sorted(candidate.lower()) == key]
