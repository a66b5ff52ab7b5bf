"""Where each row ends up, and the count of what happened.

Every row a stage yields goes to exactly one place: kept rows to the output,
rejected rows to the rejects file (or back into the output, flagged, with
``keep_rejected``; or, failing both, they are dropped and the summary says so).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..wording import top_counts
from .records import REASON, REJECTED_BY

REASONS_SHOWN = 5  # reason codes a summary line names; it says how many more there are


class RowWriter(Protocol):
    def write(self, row: Any) -> None: ...


@dataclass
class StageSummary:
    """What a command did with its rows: how many passed and why the others were rejected."""

    command: str
    passed: int = 0
    rejected: int = 0
    dropped: int = 0
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    words: tuple[str, str] = ("passed", "rejected")  # how the summary names the two counts

    @property
    def total(self) -> int:
        return self.passed + self.rejected

    def top_reasons(self, limit: int | None = REASONS_SHOWN) -> list[tuple[str, int]]:
        """The commonest rejection codes, as ``(code, count)``; codes of earlier stages say which."""
        merged: Counter[str] = Counter()
        for (stage, code), count in self.reasons.items():
            merged[code if stage == self.command.replace("-", "_") else f"{code} ({stage})"] += count
        return merged.most_common(limit)

    def line(self) -> str:
        """The one summary line that ends a command's stderr."""
        text = f"{self.command}: {self.passed} {self.words[0]}, {self.rejected} {self.words[1]}"
        reasons = self.top_reasons(limit=None)
        if reasons:
            text += f" ({top_counts(reasons, REASONS_SHOWN)})"
        return text


def route_rows(
    rows: Iterable[dict[str, Any]],
    summary: StageSummary,
    output: RowWriter,
    rejects: RowWriter | None = None,
    *,
    keep_rejected: bool = False,
) -> StageSummary:
    """Drain ``rows`` into the output and rejects, counting into ``summary``."""
    write = output.write
    for row in rows:
        if REJECTED_BY not in row:
            summary.passed += 1
            write(row)
            continue
        summary.rejected += 1
        summary.reasons[(str(row[REJECTED_BY]), str(row.get(REASON)))] += 1
        if rejects is not None:
            rejects.write(row)
        elif keep_rejected:
            write(row)
        else:
            summary.dropped += 1
    return summary
