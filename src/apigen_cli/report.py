"""The run's statistics: the APIGen paper's Table 1, per generator model.

Computed from rows alone (the output and the rejects), so ``apigen stats`` gives
the same table for files a run already wrote as ``apigen run`` prints at its end.
Every requested row lands in exactly one column: a request that asked for K pairs
counts K (or more, if the model wrote more). A reply whose text holds no pairs
counts K failed format, where the paper counts it; pairs a model left out of a
readable reply (it wrote 1 of 3) are ``missing``, the gap between requested and
generated given its own name (``generate`` writes them as ``missing_pair`` rejects;
files written before it did still count the gap there).
"""

from __future__ import annotations

import heapq
import os
import re
import stat
import textwrap
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import InputError
from .rows.records import MISSING_PAIR, RAW_OUTPUT, is_api_definition
from .wording import counted, top_counts

UNKNOWN_MODEL = "(not generated here)"
#: what ``wall_seconds`` measures, said beside it wherever it is shown
WALL_TIME_MEASURES = "the run from its start to its last row, setup included; a resumed run's sessions added up"
FILES_HINT = "give the files a run or a stage wrote: its output and its rejects"
BLUEPRINT_KIND = "blueprint_kind"  # the field every row `apigen blueprint` writes has (conversations.blueprint_generation)
SIMULATION = "simulation"  # the object every attempt `apigen simulate` writes has (conversations.simulation.RESULT_FIELD)
STAGE_COLUMNS = {
    "input": "failed_format",
    "generate": "failed_generation",
    "format_check": "failed_format",
    "exec_check": "failed_execution",
    "semantic_check": "failed_semantic",
    "dedup": "duplicates",
}
UNPARSEABLE = "unparseable_output"  # format-check's reason for a reply (or answers) holding no readable pair
REASON_COLUMNS = {MISSING_PAIR: "missing_pairs"}  # reasons counted apart from their stage's column
COLUMNS = (
    "requested",
    "failed_generation",
    "missing_pairs",
    "failed_format",
    "failed_execution",
    "failed_semantic",
    "duplicates",
    "verified",
)


#: the width Table 1 and the notes after it are written for: a terminal's 80 columns
TEXT_WIDTH = 80

#: The column titles of Table 1 as people see it, in ``COLUMNS`` order between the model and the pass rate.
TABLE_HEADERS = (
    "model",
    "requested",
    "failed gen",
    "missing",
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
    missing_pairs: int = 0
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

    def cells(self) -> list[str]:
        """The row as Table 1 shows it after the model (``TABLE_HEADERS[1:]``): the counts, then the pass rate."""
        return [*(str(getattr(self, column)) for column in COLUMNS), f"{self.pass_rate:.2%}"]


@dataclass
class _Request:
    model: str
    asked: int
    rows: int = 0
    failed: bool = False
    unreadable: bool = False  # its reply held no pairs: the pairs it lacks failed format, not went missing


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

    def lines(self, width: int = TEXT_WIDTH) -> list[str]:
        """The report as plain text lines for people (stderr, `apigen stats`), none wider than ``width``."""
        text = table_lines(self.shown_rows(), width)
        notes: list[str] = []
        for stage, counter in sorted(self.reasons.items()):
            top = top_counts(counter.most_common())
            notes.append(f"top reasons, {stage}: {top}")
        for model, counts in sorted(self.tokens.items()):
            cached = counts.get("cached", 0)
            from_cache = f" ({cached} of them answered from the cache, not sent)" if cached else ""
            notes.append(
                f"tokens, {model}: {counts['prompt_tokens']} prompt + {counts['completion_tokens']} completion "
                f"in {counted(counts['requests'], 'request')}{from_cache}"
            )
        for step in self.json_mode_downgrades:
            notes.append(
                f"json mode, {step['model']}: {step['from']} -> {step['to']} (the endpoint refused it: {step['reason']})"
            )
        if self.wall_seconds is not None:
            notes.append(f"wall time: {self.wall_seconds:.1f} s ({WALL_TIME_MEASURES})")
        for note in notes:  # a long note goes on over indented lines, never past the width; `+2 more` stays whole
            kept_whole = re.sub(r"(\+\d+) more\b", "\\1\u00a0more", note)
            wrapped = textwrap.wrap(kept_whole, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
            text += [line.replace("\u00a0", " ") for line in wrapped]
        return text


def table_lines(shown: list[tuple[str, ModelTable]], width: int = TEXT_WIDTH) -> list[str]:
    """Table 1 as text: a line per column of the paper's table, a column per model, the figures under its name.

    Turned so that it fits a terminal: the paper's ten columns side by side are over 100
    characters wide, while a column per model needs the width of its name. Models that do
    not fit beside each other go on in another block below; a name longer than a line goes
    on over several header lines. A figure is never cut.
    """
    labels = TABLE_HEADERS[1:]
    label_width = max(len(label) for label in TABLE_HEADERS)
    room = max(width - label_width - 2, 8)
    columns: list[tuple[list[str], list[str], int]] = []
    for model, table in shown:
        cells = table.cells()
        names = [model[start : start + room] for start in range(0, len(model), room)] or [""]
        columns.append((names, cells, max(len(cell) for cell in [*cells, *names])))
    blocks: list[list[tuple[list[str], list[str], int]]] = []
    used = width
    for column in columns:
        if not blocks or used + 2 + column[2] > width:
            blocks.append([])
            used = label_width
        blocks[-1].append(column)
        used += 2 + column[2]
    text: list[str] = []
    for block in blocks:
        if text:
            text.append("")
        height = max(len(names) for names, _, _ in block)
        for line in range(height):
            label = TABLE_HEADERS[0] if line == height - 1 else ""
            cells = [([""] * (height - len(names)) + names)[line] for names, _, _ in block]
            text.append(_table_line(label, label_width, cells, [column_width for _, _, column_width in block]))
        for row, label in enumerate(labels):
            text.append(_table_line(label, label_width, [cells[row] for _, cells, _ in block], [w for _, _, w in block]))
    return text


def _table_line(label: str, label_width: int, cells: list[str], widths: list[int]) -> str:
    return (
        label.ljust(label_width) + "".join(f"  {cell.rjust(cell_width)}" for cell, cell_width in zip(cells, widths, strict=True))
    ).rstrip()


class ReportBuilder:
    """Counts rows one at a time (so a run can report on rows it streamed to stdout)."""

    def __init__(self, *, plan_order: bool = False) -> None:
        self.report = PipelineReport()
        self._requests: dict[str, _Request] = {}
        # With ``plan_order``, the pending requests' ids in the order they came, for ``settle_below``.
        self._arrived: deque[str] | None = deque() if plan_order else None

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        given = row.get("model")
        model = given if isinstance(given, str) else UNKNOWN_MODEL
        table = self.report.models.setdefault(model, ModelTable())
        request_id = row.get("request_id")
        stage = row.get("rejected_by")
        if isinstance(request_id, str) and isinstance(row.get("pairs_requested"), int):
            request = self._requests.get(request_id)
            if request is None:
                request = self._requests[request_id] = _Request(model, row["pairs_requested"])
                if self._arrived is not None:
                    self._arrived.append(request_id)
            if stage == "generate" and row.get("reason") != MISSING_PAIR:
                request.failed = True
            else:
                request.rows += 1
                request.unreadable = request.unreadable or RAW_OUTPUT in row or row.get("reason") == UNPARSEABLE
            counted_by_request = True
        else:
            table.requested += 1
            counted_by_request = False
        if stage is None:
            table.verified += 1
            return row
        reason = str(row.get("reason"))
        column = REASON_COLUMNS.get(reason) or STAGE_COLUMNS.get(str(stage), "failed_format")
        self.report.reasons[str(stage)][reason] += 1
        if column != "failed_generation" or not counted_by_request:  # a failed request counts what it asked for, in build()
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
        if self._arrived is not None:
            self._arrived.clear()

    @property
    def pending_requests(self) -> int:
        """Requests seen whose totals are not settled yet (what grows with the rows when nothing settles them)."""
        return len(self._requests)

    def settle_below(self, watermark: tuple[int, int]) -> None:
        """Settle the pending requests whose plan position (``plan_position``) is below ``watermark``.

        Only for a builder made with ``plan_order=True`` and fed rows in plan order, every
        request id a plan key: then no row of those requests can come any more, and what
        the builder keeps stays as small as the requests in flight.
        """
        arrived = self._arrived
        if arrived is None:
            raise ValueError("settle_below needs a ReportBuilder(plan_order=True)")
        while arrived:
            position = plan_position(arrived[0])
            if position is None:
                raise ValueError(f"request id {arrived[0]!r} is not a plan key")
            if position >= watermark:
                return
            _settle(self.report, [self._requests.pop(arrived.popleft())])

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
            gap = requested - request.rows  # pairs that never became rows: files from before `missing_pair` rows
            if request.unreadable:
                table.failed_format += gap
            else:
                table.missing_pairs += gap


def dataset_rows(rows: Iterable[dict[str, Any]], path: str, seen: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """``rows`` of ``path``, stopped at the first that is neither rejected nor a query with its calls.

    Such a row would count as verified: an API library given instead of a dataset would
    show a pass rate of 100%. API definitions among dataset rows (the `*.tools.jsonl`
    library `run --mcp` writes beside its output, caught by `cat out/*.jsonl`) are left
    out and counted in ``seen["api_definitions"]``; a file of nothing else is an error.
    """
    shown = "standard input" if path == "-" else f"`{path}`"
    hint = FILES_HINT
    kept = definitions = 0
    for number, row in enumerate(rows, start=1):
        # multi-turn files named are told apart before this (cli/reports.py); a pipe cannot be, kept or rejected
        if isinstance(row.get(SIMULATION), dict):
            raise InputError(
                f"row {number} of {shown} is a simulated conversation (`apigen simulate` wrote it), "
                "and conversations are counted from their files, not from a pipe",
                hint="name the simulate run's files: its output and its rejects (then blueprint's, if you have them)",
            )
        if BLUEPRINT_KIND in row:
            raise InputError(
                f"row {number} of {shown} is a task blueprint (`apigen blueprint` wrote it), "
                "and blueprints are counted from their files, not from a pipe",
                hint="name the blueprint run's files: its output and its rejects",
            )
        if "rejected_by" not in row and ("query" not in row or "answers" not in row):
            if not is_api_definition(row):
                raise InputError(
                    f"row {number} of {shown} is not a dataset row: it has no `query` and `answers`, nor a `rejected_by`",
                    hint=hint,
                )
            definitions += 1
            if seen is not None:
                seen["api_definitions"] = seen.get("api_definitions", 0) + 1
            continue
        kept += 1
        yield row
    if definitions and not kept:
        raise InputError(f"{shown} is an API library, not a dataset: its {definitions} rows are API definitions", hint=hint)


def distinct_files(paths: Iterable[str]) -> list[str]:
    """``paths``, refused when one file is named twice: its rows would be counted twice."""
    paths = list(paths)
    seen: dict[tuple[int, int] | str, str] = {}
    for path in paths:
        try:
            info = os.stat(path)
            key: tuple[int, int] | str = (info.st_dev, info.st_ino) if path != "-" else "-"
        except OSError:
            key = os.path.abspath(path)
        if key in seen:
            named = f"`{path}` is given twice" if seen[key] == path else f"`{seen[key]}` and `{path}` name the same file"
            raise InputError(
                f"{named}: its rows would be counted twice", hint="give each file once: the run's output and its rejects"
            )
        seen[key] = path
    return paths


_PLAN_KEY = re.compile(r"^gen-(\d+)-(\d+)$")  # stages.sampling.RequestPlan.key: gen-SEED-INDEX


def plan_position(request_id: str) -> tuple[int, int] | None:
    """Where a request id stands in a run's plan (seed, index), or None for an id no plan made."""
    match = _PLAN_KEY.match(request_id)
    return (int(match.group(1)), int(match.group(2))) if match else None


class _NotInPlanOrder(Exception):
    """A file's rows are not in plan order (or a file could not be read): read the files one after another."""


def report_from_files(
    paths: Iterable[str], seen: dict[str, int] | None = None, *, skip_bad_lines: bool = False
) -> PipelineReport:
    """The report over every row of the given output and rejects files.

    ``seen`` (if given) gets the count of ``rows`` and of ``rejected`` rows read, so
    a caller can tell a dataset given without its rejects.

    A run writes each file in plan order, and a request's rows may be in several of them,
    so the files are read together (``report_in_plan_order``) and memory stays flat however
    long they are. When that cannot be done, they are read one after another instead, every
    request kept to the end; the figures are the same either way.
    """
    paths = distinct_files(paths)
    counts = seen if seen is not None else {}
    counts.setdefault("rows", 0)
    counts.setdefault("rejected", 0)
    report = report_in_plan_order(paths, counts, skip_bad_lines=skip_bad_lines)
    if report is None:
        report = PipelineReport.from_rows(_counted(paths, counts, skip_bad_lines))
    if not counts["rows"]:
        raise InputError(f"{named_files(paths)} {'holds' if len(paths) == 1 else 'hold'} no rows", hint=FILES_HINT)
    return report


def named_files(paths: list[str]) -> str:
    """``a.jsonl`, standard input``: the files as messages name them."""
    return ", ".join("standard input" if path == "-" else f"`{path}`" for path in paths)


def report_in_plan_order(
    paths: list[str], seen: dict[str, int] | None = None, *, skip_bad_lines: bool = False
) -> PipelineReport | None:
    """The report over ``paths`` read together, merged by plan position, or None when that cannot be done.

    Each request is settled as soon as every file has passed it, so what is kept is the
    requests in flight, not every request. None (read the files one after another) when a
    file is standard input or not a regular file, its rows are not in plan order or carry
    request ids no plan made, or a file cannot be read (the error to show is then the one
    reading them in turn meets first). ``seen`` counts as in ``report_from_files``.
    """
    if not paths or not all(_is_regular_file(path) for path in paths):
        return None
    counts = seen if seen is not None else {}
    for name in ("rows", "rejected", "api_definitions"):
        counts.setdefault(name, 0)
    before = dict(counts)
    try:
        return _merged_report(paths, counts, skip_bad_lines)
    except _NotInPlanOrder:
        counts.update(before)  # as if not read: the caller reads the files again
        return None


def _is_regular_file(path: str) -> bool:
    """A file that can be read again from the start (not ``-``, a pipe or a missing file)."""
    try:
        return path != "-" and stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _counted(paths: list[str], counts: dict[str, int], skip_bad_lines: bool) -> Iterator[dict[str, Any]]:
    """The rows of the files one after another, counted into ``counts``."""
    from .rows.jsonl import read_rows

    for path in paths:
        for row in dataset_rows(read_rows(path, skip_bad_lines=skip_bad_lines), path, counts):
            counts["rows"] += 1
            if "rejected_by" in row:
                counts["rejected"] += 1
            yield row


@dataclass
class _Cursor:
    """Where the merge stands in one file, and where in it each model and reason was first seen."""

    rows: Iterator[dict[str, Any]]
    position: tuple[int, int] = (-1, -1)  # plan position of its last request row
    request_id: str | None = None  # that row's request id (its rows come together: parsed once)
    number: int = 0  # rows taken from it
    models: dict[str, int] = field(default_factory=dict)
    reasons: dict[tuple[str, str], int] = field(default_factory=dict)


def _merged_report(paths: list[str], counts: dict[str, int], skip_bad_lines: bool) -> PipelineReport:
    """The report over ``paths`` read together by plan position; ``_NotInPlanOrder`` if that cannot be done.

    The same figures as reading the files one after another: the counts do not depend on
    the order, and where the order shows (which model and which reason came first, the tie
    break of the top reasons), they are put back in file order by where they were first seen.
    Rows of one plan position come from the first file first, so a request is told by the
    same row as when reading in turn.
    """
    from .rows.jsonl import read_rows

    builder = ReportBuilder(plan_order=True)
    cursors: list[_Cursor] = []
    heap: list[tuple[tuple[int, int], int, dict[str, Any]]] = []
    rows = rejected = 0

    def pull(index: int) -> None:
        """Put file ``index``'s next row on the heap, at its plan position (a row of no request: where the file is)."""
        cursor = cursors[index]
        try:
            row = next(cursor.rows)
        except StopIteration:
            return
        request_id = row.get("request_id")
        if request_id != cursor.request_id and isinstance(request_id, str) and isinstance(row.get("pairs_requested"), int):
            position = plan_position(request_id)
            if position is None or position < cursor.position:
                raise _NotInPlanOrder
            cursor.position, cursor.request_id = position, request_id
        heapq.heappush(heap, (cursor.position, index, row))

    try:
        for index, path in enumerate(paths):
            cursors.append(_Cursor(dataset_rows(read_rows(path, skip_bad_lines=skip_bad_lines), path, counts)))
            pull(index)
        watermark = (-1, -1)
        while heap:
            _, index, row = heapq.heappop(heap)
            cursor = cursors[index]
            cursor.number += 1
            rows += 1
            given = row.get("model")
            model = given if isinstance(given, str) else UNKNOWN_MODEL
            if model not in cursor.models:
                cursor.models[model] = cursor.number
            if "rejected_by" in row:
                rejected += 1
                stage = row["rejected_by"]
                if stage is not None:
                    stage_reason = (str(stage), str(row.get("reason")))
                    if stage_reason not in cursor.reasons:
                        cursor.reasons[stage_reason] = cursor.number
            builder.add(row)
            pull(index)
            if heap and heap[0][0] > watermark:
                watermark = heap[0][0]
                builder.settle_below(watermark)
    except InputError as error:  # read one after another, the first error is the one to show
        raise _NotInPlanOrder from error
    counts["rows"] += rows
    counts["rejected"] += rejected
    report = builder.build()
    first_model: dict[str, tuple[int, int]] = {}
    first_reason: dict[tuple[str, str], tuple[int, int]] = {}
    for index, cursor in enumerate(cursors):  # the first file that has it, where it first has it
        for model, number in cursor.models.items():
            first_model.setdefault(model, (index, number))
        for stage_reason, number in cursor.reasons.items():
            first_reason.setdefault(stage_reason, (index, number))
    report.models = {model: report.models[model] for model in sorted(report.models, key=first_model.__getitem__)}
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for stage_name, reason in sorted(first_reason, key=first_reason.__getitem__):
        reasons[stage_name][reason] = report.reasons[stage_name][reason]
    report.reasons = reasons
    return report
