"""What a blueprint run's files say: ``apigen stats`` and ``apigen report`` on ``apigen blueprint``'s output and rejects.

Counted from the rows alone, as Table 1 is for single-turn runs: every blueprint asked for is
one row, kept or rejected by the first check it failed. The figures APIGen-MT reports are
here: the pass rate at the first attempt and after revisions (28% against 70% in the paper),
the blueprints negative on purpose counted apart, and the reasons per check, both the final
ones and those that sent a blueprint back for revision.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..rows.jsonl import read_rows
from ..rows.records import REASON, REJECTED_BY, Row
from .blueprint import ATTEMPTS
from .blueprint_checks import EXECUTION, FORMAT, NECESSITY, POLICY
from .blueprint_generation import KIND_FIELD, NEGATIVE_KINDS, POSITIVE, STAGE
from .blueprint_review import REVIEW

#: each check as the report names it, in the order the checks run (``rejected_by`` -> name)
CHECK_NAMES = {
    STAGE: "generation",
    FORMAT: "format",
    EXECUTION: "execution",
    NECESSITY: "necessity",
    POLICY: "policy",
    REVIEW: "review",
}
_PLAN_KEY = re.compile(r"^bp-(\d+)-(\d+)$")  # blueprint_generation.BlueprintPlan.key: bp-SEED-INDEX
FILES_HINT = "give the files `apigen blueprint` wrote: its output and its rejects"


def is_blueprint_row(row: Row) -> bool:
    """A row `apigen blueprint` wrote (every one, kept or rejected, names its kind)."""
    return KIND_FIELD in row


@dataclass
class KindFigures:
    requested: int = 0
    verified: int = 0


@dataclass
class BlueprintReport:
    """The funnel of a blueprint run: requested, verified (at the first attempt, after revisions), per kind and check."""

    requested: int = 0
    verified: int = 0
    first_attempt: int = 0  # verified with no earlier attempt
    revised: int = 0  # sent back at least once
    kinds: dict[str, KindFigures] = field(default_factory=dict)
    rejected: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # final, per check
    revised_for: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # earlier attempts, per check
    _ids: dict[str, tuple[int, int]] = field(default_factory=dict)  # per seed: rows seen and the highest index + 1

    def add(self, row: Row) -> None:
        self.requested += 1
        key = _PLAN_KEY.match(str(row.get("id")))
        if key is not None:
            seen, top = self._ids.get(key.group(1), (0, 0))
            self._ids[key.group(1)] = (seen + 1, max(top, int(key.group(2)) + 1))
        kind = self.kinds.setdefault(str(row.get(KIND_FIELD, POSITIVE)), KindFigures())
        kind.requested += 1
        attempts = row.get(ATTEMPTS)
        attempts = attempts if isinstance(attempts, list) else []
        if attempts:
            self.revised += 1
        for attempt in attempts:
            if isinstance(attempt, dict):
                self.revised_for[_check_name(attempt.get(REJECTED_BY))][str(attempt.get(REASON))] += 1
        if REJECTED_BY in row:
            self.rejected[_check_name(row[REJECTED_BY])][str(row.get(REASON))] += 1
            return
        self.verified += 1
        kind.verified += 1
        self.first_attempt += 0 if attempts else 1

    @property
    def absent(self) -> int:
        """Blueprints the run asked for that no file holds (ids ``bp-SEED-I`` skip them): rejects not given."""
        return sum(top - seen for seen, top in self._ids.values())

    @property
    def pass_rate(self) -> float:
        return self.verified / self.requested if self.requested else 0.0

    @property
    def first_attempt_rate(self) -> float:
        return self.first_attempt / self.requested if self.requested else 0.0

    def checks(self) -> list[str]:
        """The checks that rejected something, in the order they run."""
        known = [name for name in CHECK_NAMES.values() if self.rejected.get(name) or self.revised_for.get(name)]
        others = sorted(set(self.rejected) | set(self.revised_for) - set(known))
        return known + [name for name in others if name not in known]

    def as_dict(self) -> dict[str, Any]:
        negatives = {kind: figures for kind, figures in self.kinds.items() if kind != POSITIVE}
        return {
            "requested": self.requested,
            "verified": self.verified,
            "pass_rate": round(self.pass_rate, 4),
            "first_attempt": {"verified": self.first_attempt, "pass_rate": round(self.first_attempt_rate, 4)},
            "revised": self.revised,
            "kinds": {kind: vars(figures) for kind, figures in self.kinds.items()},
            "negatives": {
                "requested": sum(figures.requested for figures in negatives.values()),
                "verified": sum(figures.verified for figures in negatives.values()),
            },
            "checks": {
                name: {
                    "rejected": sum(self.rejected.get(name, Counter()).values()),
                    "reasons": dict(self.rejected.get(name, Counter()).most_common()),
                    "revised_for": dict(self.revised_for.get(name, Counter()).most_common()),
                }
                for name in self.checks()
            },
        }

    def lines(self) -> list[str]:
        """The report as text, for ``apigen stats``."""
        positive = self.kinds.get(POSITIVE, KindFigures())
        lines = [
            f"blueprints: {self.verified} verified of {self.requested} requested ({self.pass_rate:.1%})",
            f"  at the first attempt: {self.first_attempt} ({self.first_attempt_rate:.1%}); "
            f"after revisions: {self.verified} ({self.pass_rate:.1%}); {self.revised} sent back",
            f"  positive: {positive.verified} verified of {positive.requested}",
        ]
        negatives = [(kind, self.kinds[kind]) for kind in NEGATIVE_KINDS if kind in self.kinds]
        negatives += [(kind, figures) for kind, figures in self.kinds.items() if kind not in (POSITIVE, *NEGATIVE_KINDS)]
        if negatives:
            each = ", ".join(f"{kind} {figures.verified} of {figures.requested}" for kind, figures in negatives)
            kept = sum(figures.verified for _kind, figures in negatives)
            lines.append(f"  negative on purpose: {kept} verified of {sum(f.requested for _k, f in negatives)} ({each})")
        checks = self.checks()
        if checks:
            width = max(len(name) for name in checks)
            lines.append(f"{'check':<{width}}  rejected  sent back  reasons")
            for name in checks:
                final, earlier = self.rejected.get(name, Counter()), self.revised_for.get(name, Counter())
                reasons = ", ".join(f"{code} {count}" for code, count in (final + earlier).most_common())
                lines.append(f"{name:<{width}}  {sum(final.values()):>8}  {sum(earlier.values()):>9}  {reasons}")
        return lines


def _check_name(stage: object) -> str:
    return CHECK_NAMES.get(str(stage), str(stage))


def blueprint_files(paths: list[str]) -> bool:
    """Whether the files (those that can be read twice) are a blueprint run's: its first row says so."""
    return first_row_of_one_is(paths, is_blueprint_row)


def first_row_of_one_is(paths: list[str], shape: Callable[[Row], bool]) -> bool:
    """Whether the first row of one of the files (those that can be read twice: not `-`) has ``shape``."""
    for path in paths:
        if path == "-":
            continue
        try:
            rows = read_rows(path)
            first = next(rows, None)
            rows.close()  # type: ignore[attr-defined]
        except (InputError, OSError):
            continue  # the report that reads it says what is wrong
        if first is not None and shape(first):
            return True
    return False


def blueprint_rows(paths: Iterable[str], *, skip_bad_lines: bool = False) -> Iterator[Row]:
    """Every row of the files, each a blueprint row; ``InputError`` naming the file and row otherwise."""
    for path in paths:
        shown = "standard input" if path == "-" else f"`{path}`"
        for number, row in enumerate(read_rows(path, skip_bad_lines=skip_bad_lines), start=1):
            if not is_blueprint_row(row) and row.get(REJECTED_BY) != "input":  # `--skip-bad-lines` keeps bad lines as rejects
                raise InputError(
                    f"row {number} of {shown} is not a blueprint row (it has no `{KIND_FIELD}`), "
                    "and the other files are a blueprint run's",
                    hint=FILES_HINT,
                )
            yield row


def blueprint_report(rows: Iterable[Row]) -> BlueprintReport:
    report = BlueprintReport()
    for row in rows:
        report.add(row)
    return report
