"""What the single-turn and the conversation writers of ``export`` share: how a row is written, call ids, the tools.

Kept apart from both so that ``export`` can hand a conversation row to ``export_conversation``
while both read the same options and write the same call ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..library.loader import load_library


@dataclass(frozen=True)
class EnvironmentLibrary:
    """An environment's API library (``--tools``): each tool as the model is shown it, with the class it belongs to."""

    path: str
    tools: list[tuple[str | None, dict[str, Any]]]

    def tools_for(self, classes: Iterable[str]) -> list[dict[str, Any]]:
        """The tools of these classes, and those that name no class; every tool when no class is named."""
        wanted = set(classes)
        return [definition for owner, definition in self.tools if owner is None or not wanted or owner in wanted]


def load_environment_library(path: str) -> EnvironmentLibrary:
    """The library at ``path``, without what apigen keeps for itself (``class``, ``category``, ``effect``, bindings)."""
    tools = []
    for api in load_library(path):
        owner = api.definition.get("class")
        shown = {key: value for key, value in api.shown_definition.items() if key != "effect"}
        tools.append((owner if isinstance(owner, str) and owner else None, shown))
    return EnvironmentLibrary(path, tools)


@dataclass(frozen=True)
class WriteOptions:
    """What changes how one row is written: its tool messages, a system message to open chats with, string arguments.

    For conversation rows (``export_conversation``): one sample per assistant turn, and the
    environment's library that offers the tools of rows holding none.
    """

    with_results: bool = False
    system: str | None = None
    string_arguments: bool = False
    per_turn: bool = False
    library: EnvironmentLibrary | None = None


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, places: int) -> str:
    digits = []
    for _ in range(places):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


def call_id(row_index: int, call_index: int) -> str:
    """Nine letters and digits, as Mistral's templates demand: ``c``, the row (5 places), the call (3)."""
    return "c" + _base36(row_index % 36**5, 5) + _base36(call_index % 36**3, 3)
