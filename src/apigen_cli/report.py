"""The run's statistics: the APIGen paper's Table 1, per generator model.

Computed from rows alone (the output and the rejects), so ``apigen stats`` gives
the same table for files a run already wrote as ``apigen run`` prints at its end.
Every requested row lands in exactly one column: a request that asked for K pairs
counts K (or more, if the model wrote more), and pairs that never became rows
(unparseable text, a model that wrote fewer) count as failed format, where the
paper counts them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import InputError

UNKNOWN_MODEL = "(not generated here)"
STAGE_COLUMNS = {
    "input": "failed_format",
    "generate": "failed_generation",
    "format_check": "failed_format",
    "exec_check": "failed_execution",
    "semantic_check": "failed_semantic",
    "dedup": "duplicates",
}
COLUMNS = ("requested", "failed_generation", "failed_format", "failed_execution", "failed_semantic", "duplicates", "verified")


#: The column titles of Table 1 as people see it, in ``COLUMNS`` order between the model and the pass rate.
TABLE_HEADERS = (
    "model",
    "requested",
    "failed gen",
    "failed format",
    "failed exec",
    "failed semantic",
    "dups",
    "verified",
    "pass rate",
)


@dataclass
class ModelTable:
    """One row of Table 1."""

    requested: int = 0
    failed_generation: int = 0
    failed_format: int = 0
    failed_execution: int = 0
    failed_semantic: int = 0
    duplicates: int = 0
    verified: int = 0

    @property
    def pass_rate(self) -> float:
        return self.verified / self.requested if self.requested else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in COLUMNS} | {"pass_rate": round(self.pass_rate, 4)}


@dataclass
class _Request:
    model: str
    asked: int
    rows: int = 0
    failed: bool = False


@dataclass
class PipelineReport:
    """Table 1 per model, top rejection reasons per stage, tokens per model, wall time.

    ``json_mode_downgrades`` lists each time a model's JSON mode stepped down because the
    endpoint refused ``response_format`` (``model``, ``from``, ``to``, ``reason``, ``endpoint``).
    """

    models: dict[str, ModelTable] = field(default_factory=dict)
    reasons: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_seconds: float | None = None
    json_mode_downgrades: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]]) -> PipelineReport:
        builder = ReportBuilder()
        for row in rows:
            builder.add(row)
        return builder.build()

    def total(self) -> ModelTable:
        total = ModelTable()
        for table in self.models.values():
            for column in COLUMNS:
                setattr(total, column, getattr(total, column) + getattr(table, column))
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": {model: table.as_dict() for model, table in sorted(self.models.items())},
            "total": self.total().as_dict(),
            "top_reasons": {stage: dict(counter.most_common(5)) for stage, counter in sorted(self.reasons.items())},
            "tokens": self.tokens,
            "wall_seconds": None if self.wall_seconds is None else round(self.wall_seconds, 3),
            "json_mode_downgrades": [dict(step) for step in self.json_mode_downgrades],
        }

    def shown_rows(self) -> list[tuple[str, ModelTable]]:
        """The table's rows as shown (stderr, the HTML page): a model each, and a total row when there are several."""
        shown = sorted(self.models.items())
        if len(shown) > 1:
            shown.append(("total", self.total()))
        return shown

    def lines(self) -> list[str]:
        """The table as plain text lines, for people (stderr)."""
        headers = TABLE_HEADERS
        shown = self.shown_rows()
        body = [(model, *(str(getattr(table, column)) for column in COLUMNS), f"{table.pass_rate:.2%}") for model, table in shown]
        widths = [max(len(str(cells[index])) for cells in [headers, *body]) for index in range(len(headers))]

        def line(cells: Iterable[str]) -> str:
            return "  ".join(
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
            )

        text = [line(headers), *(line(cells) for cells in body)]
        for stage, counter in sorted(self.reasons.items()):
            top = ", ".join(f"{code} {count}" for code, count in counter.most_common(5))
            text.append(f"top reasons, {stage}: {top}")
        for model, counts in sorted(self.tokens.items()):
            text.append(
                f"tokens, {model}: {counts['prompt_tokens']} prompt + {counts['completion_tokens']} completion in {counts['requests']} requests"
            )
        for step in self.json_mode_downgrades:
            text.append(f"json mode, {step['model']}: {step['from']} -> {step['to']} (the endpoint refused it: {step['reason']})")
        if self.wall_seconds is not None:
            text.append(f"wall time: {self.wall_seconds:.1f} s")
        return text


class ReportBuilder:
    """Counts rows one at a time (so a run can report on rows it streamed to stdout)."""

    def __init__(self) -> None:
        self.report = PipelineReport()
        self._requests: dict[str, _Request] = {}

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        given = row.get("model")
        model = given if isinstance(given, str) else UNKNOWN_MODEL
        table = self.report.models.setdefault(model, ModelTable())
        request_id = row.get("request_id")
        stage = row.get("rejected_by")
        if isinstance(request_id, str) and isinstance(row.get("pairs_requested"), int):
            request = self._requests.setdefault(request_id, _Request(model, row["pairs_requested"]))
            if stage == "generate":
                request.failed = True
            else:
                request.rows += 1
        else:
            table.requested += 1
        if stage is None:
            table.verified += 1
            return row
        column = STAGE_COLUMNS.get(str(stage), "failed_format")
        self.report.reasons[str(stage)][str(row.get("reason"))] += 1
        if column != "failed_generation":  # a failed request is counted by what it asked for, in build()
            setattr(table, column, getattr(table, column) + 1)
        return row

    def build(self) -> PipelineReport:
        """The report so far (requests' totals settled); the builder may go on counting."""
        report = PipelineReport(
            models={model: replace(table) for model, table in self.report.models.items()},
            reasons=defaultdict(Counter, {stage: Counter(counter) for stage, counter in self.report.reasons.items()}),
        )
        _settle(report, self._requests.values())
        return report

    def fold(self) -> None:
        """Settle the requests seen so far into the totals (call only when they are all finished).

        ``apigen run`` folds at each checkpoint, so what it keeps stays small however long the run.
        """
        _settle(self.report, self._requests.values())
        self._requests.clear()

    def to_json(self) -> dict[str, Any]:
        """The counts, for the run state (fold first)."""
        return {
            "models": {
                model: {column: getattr(table, column) for column in COLUMNS} for model, table in self.report.models.items()
            },
            "reasons": {stage: dict(counter) for stage, counter in self.report.reasons.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportBuilder:
        builder = cls()
        builder.report.models = {model: ModelTable(**counts) for model, counts in data.get("models", {}).items()}
        for stage, counts in data.get("reasons", {}).items():
            builder.report.reasons[stage] = Counter(counts)
        return builder


def summed_counts(counts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' counts (``ReportBuilder.to_json``) as one run's: Table 1 and the reasons, added up.

    The counts are settled per request, and every request is in exactly one shard,
    so the sum over a run's shards is the unsharded run's count.
    """
    models: dict[str, dict[str, int]] = {}
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for data in counts:
        for model, table in data.get("models", {}).items():
            mine = models.setdefault(model, dict.fromkeys(COLUMNS, 0))
            for column in COLUMNS:
                mine[column] += int(table.get(column, 0))
        for stage, found in data.get("reasons", {}).items():
            reasons[stage].update(found)
    return {"models": models, "reasons": {stage: dict(counter) for stage, counter in reasons.items()}}


def _settle(report: PipelineReport, requests: Iterable[_Request]) -> None:
    for request in requests:
        table = report.models.setdefault(request.model, ModelTable())
        if request.failed:
            table.requested += request.asked
            table.failed_generation += request.asked
        else:
            requested = max(request.asked, request.rows)
            table.requested += requested
            table.failed_format += requested - request.rows  # pairs the model never wrote readably


def dataset_rows(rows: Iterable[dict[str, Any]], path: str) -> Iterator[dict[str, Any]]:
    """``rows`` of ``path``, stopped at the first that is neither rejected nor a query with its calls.

    Such a row would count as verified: an API library given instead of a dataset would
    show a pass rate of 100%.
    """
    for number, row in enumerate(rows, start=1):
        if "rejected_by" not in row and ("query" not in row or "answers" not in row):
            shown = "standard input" if path == "-" else f"`{path}`"
            looks = " (it looks like an API definition)" if "parameters" in row or "function" in row else ""
            raise InputError(
                f"row {number} of {shown} is not a dataset row: it has no `query` and `answers`, nor a `rejected_by`{looks}",
                hint="give the files a run or a stage wrote, its output and its rejects: `apigen stats DATASET REJECTS`",
            )
        yield row


def report_from_files(paths: Iterable[str], seen: dict[str, int] | None = None) -> PipelineReport:
    """The report over every row of the given output and rejects files.

    ``seen`` (if given) gets the count of ``rows`` and of ``rejected`` rows read, so
    a caller can tell a dataset given without its rejects.
    """
    from .rows.jsonl import read_rows

    counts = seen if seen is not None else {}
    counts.setdefault("rows", 0)
    counts.setdefault("rejected", 0)

    def rows() -> Iterable[dict[str, Any]]:
        for path in paths:
            for row in dataset_rows(read_rows(path), path):
                counts["rows"] += 1
                if "rejected_by" in row:
                    counts["rejected"] += 1
                yield row

    return PipelineReport.from_rows(rows())
