"""Irrelevance negatives: rows whose right answer is to call nothing.

For a seeded share of the rows, a negative is made by taking away every tool the answer
calls (the other tools stay, as distractors) and emptying ``answers``; it is marked
``kind: "irrelevance"``, gets the id ``<id>-irrelevant`` and names its row in
``source_id`` (the Hammer recipe). The original row is kept and the negative follows
it, so the output holds every input row plus the negatives.

Whether a row is chosen depends only on ``seed`` and the row's id (a hash of both below
``rate``), so a row gets the same fate whatever rows surround it. A chosen row that
calls every tool it offers would leave nothing to offer: it is left as it is and
counted. What the checks said about the calls (``execution_result``, the semantic
``thought``, the ``keep_row_after_*`` verdicts) does not hold for the negative and is
left out of it; ``source_verified`` says whether its row had passed all three checks,
so that ``export`` can tell a negative of a verified row from one of an unchecked row.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from hashlib import blake2b

from ..errors import ConfigError
from ..problems import RowProblem
from ..rows.records import (
    ANSWERS,
    ID,
    IRRELEVANCE,
    KIND,
    REJECTED_BY,
    TOOLS,
    Row,
    calls_of,
    ensure_id,
    passed_every_check,
    tools_of,
)
from ..schema.tools import tool_parts
from ..wording import counted

SOURCE_ID = "source_id"
SOURCE_VERIFIED = "source_verified"
SUFFIX = "-irrelevant"
_VERDICT_FIELDS = frozenset(
    {
        "execution_result",
        "thought",
        "keep_row_after_format_check",
        "keep_row_after_execution_check",
        "keep_row_after_semantic_check",
    }
)


@dataclass
class NegativesSummary:
    """How many rows went through, how many negatives were added and how many chosen rows could not give one."""

    rows: int = 0
    added: int = 0
    nothing_left: int = 0
    unusable: int = 0

    def line(self) -> str:
        text = f"negatives: {counted(self.added, 'irrelevance row')} added to {counted(self.rows, 'row')}"
        if self.nothing_left:
            one = self.nothing_left == 1
            calls = (
                "calls every tool it offers and was left as it is"
                if one
                else "call every tool they offer and were left as they are"
            )
            text += f"; {counted(self.nothing_left, 'chosen row')} {calls}"
        if self.unusable:
            text += f"; {self.unusable} rows with unreadable tools or calls were passed on unchanged"
        return text


def chosen(row_id: str, rate: float, seed: int) -> bool:
    """Whether the row with this id gets a negative: a hash of seed and id, read as a number in [0, 1), below ``rate``."""
    digest = blake2b(f"{seed}\0{row_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def check_rate(rate: float) -> None:
    if not 0 <= rate <= 1:
        raise ConfigError(
            f"`--rate` must be between 0 and 1, got {rate}", hint="pass a share of the rows, such as 0.1 for one row in ten"
        )


def negatives(rows: Iterable[Row], *, rate: float, seed: int = 0, summary: NegativesSummary | None = None) -> Iterator[Row]:
    """Yield every row, each chosen one followed by its irrelevance negative; lazily, in input order."""
    check_rate(rate)
    return _negatives(rows, rate, seed, summary if summary is not None else NegativesSummary())


def _negatives(rows: Iterable[Row], rate: float, seed: int, summary: NegativesSummary) -> Iterator[Row]:
    for row in rows:
        summary.rows += 1
        if REJECTED_BY in row or row.get(KIND) == IRRELEVANCE:
            yield row
            continue
        row_id = ensure_id(row)
        if not chosen(row_id, rate, seed):
            yield row
            continue
        try:
            negative = make_negative(row)
        except RowProblem:
            summary.unusable += 1
            yield row
            continue
        yield row
        if negative is None:
            summary.nothing_left += 1
        else:
            summary.added += 1
            yield negative


def make_negative(row: Row) -> Row | None:
    """The irrelevance negative of ``row``, or ``None`` when every tool it offers is called.

    Raises ``RowProblem`` or ``RowProblem`` when the row's tools or calls cannot be read.
    """
    tools = tools_of(row)
    if not isinstance(tools, list):
        raise RowProblem("invalid_tools", "`tools` should be a list of tool definitions")
    called = {call["name"] for call in calls_of(row)}
    kept = [tool for position, tool in enumerate(tools, start=1) if tool_parts(tool, position)[1] not in called]
    if not kept:
        return None
    negative = {key: value for key, value in row.items() if key not in _VERDICT_FIELDS}
    row_id = ensure_id(row)
    negative[ID] = row_id + SUFFIX
    negative[TOOLS] = copy.deepcopy(kept)
    negative[ANSWERS] = []
    negative[KIND] = IRRELEVANCE
    negative[SOURCE_ID] = row_id
    negative[SOURCE_VERIFIED] = passed_every_check(row)
    return negative
