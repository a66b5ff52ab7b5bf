"""What a simulate run's files say: APIGen-MT's table, for ``apigen stats`` and ``apigen report``.

Counted from the rows alone. Every row of simulate's files is one attempt at a conversation
(it carries ``simulation``), a blueprint simulate could not act out (rejected by ``simulate``
with no conversation), or a blueprint rejected before simulate that it passed on. The files
of ``apigen blueprint`` may be given with them: their rows are the blueprint funnel
(``BlueprintReport``), so the table reads from blueprints requested to conversations verified.
A blueprint row met twice (rejected before simulate, so in both runs' rejects) counts once.

``ConversationReport.add`` takes one row at a time, keeping counts and the blueprint ids, not
rows: ``apigen run --multi-turn`` can feed it its rows as they are written and print
``lines()`` at its end (``conversation_report(rows).lines()``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..rows.jsonl import read_rows
from ..rows.records import REASON, REJECTED_BY, Row
from .blueprint_report import BlueprintReport, first_row_of_one_is, is_blueprint_row
from .simulation import RESULT_FIELD, USAGE_FIELD
from .simulation import STAGE as SIMULATE
from .trajectory_check import KEEP_FIELD

FILES_HINT = "give simulate's output and rejects, then (optionally) blueprint's output and rejects"


def is_conversation_row(row: Row) -> bool:
    """A row `apigen simulate` wrote for one attempt (kept or rejected): it says how the conversation went."""
    return isinstance(row.get(RESULT_FIELD), dict)


@dataclass
class Spread:
    """Mean, min and max of a count per conversation, kept as running sums."""

    count: int = 0
    total: int = 0
    low: int | None = None
    high: int | None = None

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"mean": round(self.mean, 2), "min": self.low, "max": self.high}

    def text(self) -> str:
        return f"mean {self.mean:.2f}, min {self.low}, max {self.high}" if self.count else "none"


@dataclass
class ConversationReport:
    """APIGen-MT's table: blueprints, conversations attempted and verified, their size, reasons, user errors, tokens."""

    blueprints: BlueprintReport = field(default_factory=BlueprintReport)  # the blueprint run's rows, when given
    attempts: int = 0
    verified: int = 0
    simulated: dict[str, int] = field(default_factory=dict)  # blueprint ids simulate acted out -> the highest attempt
    verified_blueprints: set[str] = field(default_factory=set)  # those with a verified conversation
    not_acted_out: Counter[str] = field(default_factory=Counter)  # blueprints simulate could not read, per reason
    repeated_blueprints: int = 0  # blueprint rows met a second time (the same id): counted once
    reasons: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # failed attempts, per stage
    ended_by: Counter[str] = field(default_factory=Counter)
    turns: dict[str, Spread] = field(default_factory=lambda: {"verified": Spread(), "attempted": Spread()})
    tool_calls: dict[str, Spread] = field(default_factory=lambda: {"verified": Spread(), "attempted": Spread()})
    flagged: int = 0  # attempts whose user simulator erred
    user_errors: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    attempts_with_usage: int = 0
    unreadable_lines: int = 0  # `--skip-bad-lines` rejects
    _blueprint_ids: set[str] = field(default_factory=set, repr=False)

    def add(self, row: Row) -> None:
        """Count one row of simulate's or blueprint's files; every row lands in exactly one count."""
        if is_conversation_row(row):
            self._add_attempt(row)
        elif row.get(REJECTED_BY) == "input":
            self.unreadable_lines += 1
        elif row.get(REJECTED_BY) == SIMULATE:
            self.not_acted_out[str(row.get(REASON))] += 1
        elif is_blueprint_row(row):
            if str(row.get("id")) in self._blueprint_ids:
                self.repeated_blueprints += 1
                return
            self._blueprint_ids.add(str(row.get("id")))
            self.blueprints.add(row)
        else:
            raise UncountableRow(f"is neither a simulated conversation (it has no `{RESULT_FIELD}`) nor a task blueprint")

    def _add_attempt(self, row: Row) -> None:
        result = row[RESULT_FIELD]
        blueprint = row.get("blueprint_id")
        if not isinstance(blueprint, str):
            raise UncountableRow("is a simulated conversation without the `blueprint_id` it acts out")
        number = _count(row, "attempt", row.get("attempt"), least=1)
        turns = _count(row, f"{RESULT_FIELD}.turns", result.get("turns"))
        calls = _count(row, f"{RESULT_FIELD}.tool_calls", result.get("tool_calls"))
        errors = result.get("user_errors") or []
        if not isinstance(errors, list):
            raise UncountableRow(f"has a `{RESULT_FIELD}.user_errors` that is not a list")
        self.attempts += 1
        self.simulated[blueprint] = max(self.simulated.get(blueprint, 0), number)
        kept = row.get(KEEP_FIELD) is True and REJECTED_BY not in row
        if kept:
            self.verified += 1
            self.verified_blueprints.add(blueprint)
        else:
            self.reasons[str(row.get(REJECTED_BY))][str(row.get(REASON))] += 1
        self.ended_by[str(result.get("ended_by"))] += 1
        for value, spread in ((turns, self.turns), (calls, self.tool_calls)):
            spread["attempted"].add(value)
            if kept:
                spread["verified"].add(value)
        if errors:
            self.flagged += 1
            self.user_errors.update(str(error) for error in errors)
        usage = result.get(USAGE_FIELD)
        if isinstance(usage, dict):
            counts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens")]
            self.tokens += sum(count for count in counts if isinstance(count, int) and not isinstance(count, bool))
            self.attempts_with_usage += 1

    @property
    def rows(self) -> int:
        """Every row counted: the sum of what each row became."""
        return (
            self.attempts
            + self.blueprints.requested
            + sum(self.not_acted_out.values())
            + self.repeated_blueprints
            + self.unreadable_lines
        )

    @property
    def absent(self) -> int:
        """Attempts no file holds (a blueprint's attempts are numbered from 1): simulate's rejects not given."""
        return max(0, sum(self.simulated.values()) - self.attempts)

    @property
    def attempts_per_verified(self) -> float | None:
        return self.attempts / self.verified if self.verified else None

    @property
    def user_error_rate(self) -> float:
        return self.flagged / self.attempts if self.attempts else 0.0

    @property
    def tokens_per_verified(self) -> float | None:
        """Tokens of every attempt (failed ones too) per verified conversation; None when the rows do not record them."""
        if not self.verified or not self.attempts or self.attempts_with_usage < self.attempts:
            return None
        return self.tokens / self.verified

    @property
    def blueprints_given(self) -> bool:
        """Whether the blueprint run's output is among the files (a verified blueprint row): its funnel is then shown."""
        return self.blueprints.verified > 0

    def as_dict(self) -> dict[str, Any]:
        per_verified = self.attempts_per_verified
        tokens = self.tokens_per_verified
        return {
            "blueprints": self.blueprints.as_dict() if self.blueprints_given else None,
            "blueprints_simulated": len(self.simulated) + sum(self.not_acted_out.values()),
            "blueprints_with_a_verified_conversation": len(self.verified_blueprints),
            "not_acted_out": dict(self.not_acted_out.most_common()),
            "rejected_before_simulate": self.blueprints.requested - self.blueprints.verified,
            "conversations": {
                "attempted": self.attempts,
                "verified": self.verified,
                "pass_rate": round(self.verified / self.attempts, 4) if self.attempts else 0.0,
                "attempts_per_verified": round(per_verified, 4) if per_verified is not None else None,
            },
            "turns": {name: spread.as_dict() for name, spread in self.turns.items()},
            "tool_calls": {name: spread.as_dict() for name, spread in self.tool_calls.items()},
            "ended_by": dict(self.ended_by.most_common()),
            "reasons": {stage: dict(found.most_common()) for stage, found in sorted(self.reasons.items())},
            "user_simulator": {
                "flagged": self.flagged,
                "rate": round(self.user_error_rate, 4),
                "errors": dict(self.user_errors.most_common()),
            },
            "tokens_per_verified": round(tokens, 1) if tokens is not None else None,
            "rows": {
                "read": self.rows,
                "attempts": self.attempts,
                "blueprints": self.blueprints.requested,
                "not_acted_out": sum(self.not_acted_out.values()),
                "counted_once": self.repeated_blueprints,
                "unreadable_lines": self.unreadable_lines,
            },
        }

    def figures(self) -> list[tuple[str, str]]:
        """The table's lines as (figure, value), for the text, the page and the card alike."""
        shown: list[tuple[str, str]] = []
        if self.blueprints_given:
            blueprints = self.blueprints
            shown += [
                ("blueprints requested", str(blueprints.requested)),
                (
                    "blueprints verified",
                    f"{blueprints.first_attempt} at the first attempt ({blueprints.first_attempt_rate:.1%}), "
                    f"{blueprints.verified} after revisions ({blueprints.pass_rate:.1%}); {blueprints.revised} sent back",
                ),
            ]
        simulated = len(self.simulated) + sum(self.not_acted_out.values())
        shown.append(("blueprints simulated", f"{simulated}; with a verified conversation {len(self.verified_blueprints)}"))
        if self.not_acted_out:
            shown.append(("blueprints not acted out", _listed(self.not_acted_out)))
        if self.blueprints.requested and not self.blueprints_given:
            before = Counter({name: sum(found.values()) for name, found in self.blueprints.rejected.items()})
            shown.append(("rejected before simulate, passed on", f"{self.blueprints.requested}: {_listed(before)}"))
        rate = f" ({self.verified / self.attempts:.1%})" if self.attempts else ""
        per_verified = self.attempts_per_verified
        shown += [
            ("conversations attempted", str(self.attempts)),
            ("conversations verified", f"{self.verified}{rate}"),
            ("attempts per verified conversation", f"{per_verified:.2f}" if per_verified is not None else "none verified"),
            ("turns per verified conversation", self.turns["verified"].text()),
            ("tool calls per verified conversation", self.tool_calls["verified"].text()),
            ("turns per attempt", self.turns["attempted"].text()),
            ("tool calls per attempt", self.tool_calls["attempted"].text()),
            ("conversations ended by", _listed(self.ended_by)),
            (
                "user simulator errors",
                f"{self.flagged} of {self.attempts} attempts ({self.user_error_rate:.1%})"
                + (f": {_listed(self.user_errors)}" if self.user_errors else ""),
            ),
            ("tokens per verified conversation", self._tokens_text()),
        ]
        return shown

    def _tokens_text(self) -> str:
        tokens = self.tokens_per_verified
        if tokens is not None and not self.tokens:  # said so: a 0 that reads as a free model would mislead
            return "0: no request cost a token (the offline backend counts none, a reply from the cache costs none)"
        if tokens is not None:
            return f"{tokens:,.0f} (every attempt's requests, failed ones included)"
        if not self.verified:
            return "none verified"
        return "not recorded in the rows (an older simulate's; its summary on stderr gave the run's tokens per model)"

    def stages(self) -> list[tuple[str, Counter[str]]]:
        """The reasons per stage: the blueprint checks (when given), then simulate's and the trajectory check's."""
        found: list[tuple[str, Counter[str]]] = []
        if self.blueprints_given:
            for name in self.blueprints.checks():
                found.append((f"blueprint {name}", self.blueprints.rejected.get(name, Counter())))
        if self.not_acted_out:
            found.append((f"{SIMULATE} (blueprint)", self.not_acted_out))
        found += sorted(self.reasons.items())
        return [(stage, reasons) for stage, reasons in found if reasons]

    def lines(self) -> list[str]:
        """The report as text, for ``apigen stats`` and the end of ``apigen run --multi-turn``."""
        width = max(len(name) for name, _value in self.figures())
        lines = [f"{name:<{width}}  {value}" for name, value in self.figures()]
        stages = self.stages()
        if stages:
            lines.append("reasons per stage:")
            lines += [f"  {stage}: {_listed(reasons)}" for stage, reasons in stages]
        return lines


class UncountableRow(ValueError):
    """A row the table cannot count; the message says why, after the row's place (``row N of FILE ...``)."""


def _count(row: Row, name: str, value: Any, *, least: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= least:
        return value
    raise UncountableRow(f"has a `{name}` that is not a whole number of at least {least}: {str(value)[:40]}")


def _listed(counts: Counter[str]) -> str:
    return ", ".join(f"{code} {count}" for code, count in counts.most_common()) or "none"


def conversation_files(paths: list[str]) -> bool:
    """Whether the files (those that can be read twice) are a simulate run's: the first row of one is an attempt."""
    return first_row_of_one_is(paths, is_conversation_row)


def conversation_report(rows: Iterable[Row]) -> ConversationReport:
    report = ConversationReport()
    for row in rows:
        report.add(row)
    return report


def conversation_report_from_files(paths: list[str], *, skip_bad_lines: bool = False) -> ConversationReport:
    """The report over simulate's files (and blueprint's), each file read once; ``InputError`` naming a row that fits none."""
    report = ConversationReport()
    for path, number, row in _numbered_rows(paths, skip_bad_lines):
        try:
            report.add(row)
        except UncountableRow as error:
            shown = "standard input" if path == "-" else f"`{path}`"
            raise InputError(f"row {number} of {shown} {error}", hint=FILES_HINT) from None
    if not report.rows:
        raise InputError(f"the files ({', '.join(f'`{path}`' for path in paths)}) hold no rows", hint=FILES_HINT)
    return report


def _numbered_rows(paths: list[str], skip_bad_lines: bool) -> Iterator[tuple[str, int, Row]]:
    for path in paths:
        for number, row in enumerate(read_rows(path, skip_bad_lines=skip_bad_lines), start=1):
            yield path, number, row
