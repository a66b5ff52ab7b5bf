"""The figures of ``apigen report``, gathered in one pass over the rows with flat memory.

``apigen stats`` counts Table 1 (``report.ReportBuilder``); a dataset also has a
shape people want to see before they publish it: which APIs it covers and which
it never managed to verify, the mix of query styles against what was asked, how
long the queries are, how many calls a row makes, how varied each argument's
values are, how many near duplicates there are. Everything here is a count, so
memory stays flat however many rows pass: per-key tables are capped (``MAX_KEYS``,
the rest counted under ``OTHERS``), distinct values are counted up to
``DISTINCT_CAP`` per argument, near duplicates are looked for among the first
``NEAR_LIMIT`` verified rows, and the sample rows are a small reservoir.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import orjson

from ..errors import InputError
from ..problems import RowProblem
from ..report import PipelineReport, ReportBuilder
from ..rows.records import ANSWERS, QUERY, REASON, REJECTED_BY, calls_of
from ..stages.dedup import DedupIndex

MAX_KEYS = 2000  # APIs, arguments, seeds, templates: more than this are counted together
OTHERS = "(others)"
DISTINCT_CAP = 256  # distinct values counted per argument; beyond, "at least"
NEAR_LIMIT = 100_000  # verified rows searched for near duplicates (dedup keeps ~500 bytes each)
SAMPLE_ROWS = 3
LONGEST_QUERY = 200  # words; longer queries are counted as this many
FUNNEL_STAGES = ("requested", "generated", "format_check", "exec_check", "semantic_check", "dedup")
_RUN_SEED = re.compile(r"^gen-(\d+)-\d+$")


def _count(counter: Counter[str], key: str, amount: int = 1) -> None:
    """Count ``key``, or ``OTHERS`` once the counter holds ``MAX_KEYS`` keys (hostile input cannot grow it)."""
    if key in counter or len(counter) < MAX_KEYS:
        counter[key] += amount
    else:
        counter[OTHERS] += amount


@dataclass
class ApiFigures:
    """One API: how often verified rows call it, and why the rows that offered it failed."""

    calls: int = 0  # calls in verified rows
    verified_rows: int = 0  # verified rows that call it
    offered: int = 0  # rows that offered it (sampled for them)
    failures: Counter[str] = field(default_factory=Counter)  # reasons of rejected rows that offered it

    def top_failure(self) -> tuple[str, int] | None:
        return self.failures.most_common(1)[0] if self.failures else None


@dataclass
class ArgumentFigures:
    """One argument of one API in verified rows: how often it is given and how many distinct values it takes."""

    uses: int = 0
    hashes: set[bytes] = field(default_factory=set)

    @property
    def distinct(self) -> int:
        return len(self.hashes)

    @property
    def capped(self) -> bool:
        return len(self.hashes) >= DISTINCT_CAP


@dataclass
class DatasetFigures:
    """Everything ``apigen report`` draws and the dataset card states."""

    table: PipelineReport
    rows_read: int = 0
    verified: int = 0
    requested_styles: dict[str, float] = field(default_factory=dict)
    styles_generated: Counter[str] = field(default_factory=Counter)
    styles_verified: Counter[str] = field(default_factory=Counter)
    apis: dict[str, ApiFigures] = field(default_factory=dict)
    arguments: dict[tuple[str, str], ArgumentFigures] = field(default_factory=dict)
    query_words: Counter[int] = field(default_factory=Counter)  # verified rows: words per query -> rows
    calls_per_row: Counter[int] = field(default_factory=Counter)
    near_checked: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)  # "duplicate" / "near_duplicate" among near_checked
    samples: list[dict[str, Any]] = field(default_factory=list)
    models: Counter[str] = field(default_factory=Counter)  # verified rows per generator model
    judges: Counter[str] = field(default_factory=Counter)
    seeds: Counter[str] = field(default_factory=Counter)
    templates: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    pairs_per_request: Counter[int] = field(default_factory=Counter)
    api_definitions_left_out: int = 0  # rows of an API library among the files (a `*.tools.jsonl` a glob caught)

    def funnel(self) -> dict[str, dict[str, int]]:
        """Per model (and ``total`` when several), the rows left after each stage (Table 1 as a funnel)."""
        tables = dict(sorted(self.table.models.items()))
        if len(tables) > 1:
            tables["total"] = self.table.total()
        out: dict[str, dict[str, int]] = {}
        for model, t in tables.items():
            generated = t.requested - t.failed_generation - t.missing_pairs
            after_format = generated - t.failed_format
            after_exec = after_format - t.failed_execution
            after_semantic = after_exec - t.failed_semantic
            out[model] = dict(
                zip(
                    FUNNEL_STAGES,
                    (t.requested, generated, after_format, after_exec, after_semantic, after_semantic - t.duplicates),
                    strict=True,
                )
            )
        return out

    def never_passed(self) -> list[tuple[str, ApiFigures]]:
        """APIs offered to some row but called by no verified row: the library's weak spots, most offered first."""
        found = [(name, api) for name, api in self.apis.items() if api.calls == 0 and api.offered]
        return sorted(found, key=lambda item: (-item[1].offered, item[0]))

    def near_duplicate_rate(self) -> float:
        return sum(self.duplicates.values()) / self.near_checked if self.near_checked else 0.0

    def query_length(self) -> dict[str, float]:
        """Mean, median and 90th percentile of words per verified query (from the counts)."""
        total = sum(self.query_words.values())
        if not total:
            return {"mean": 0.0, "median": 0.0, "p90": 0.0}
        mean = sum(words * rows for words, rows in self.query_words.items()) / total

        def quantile(share: float) -> float:
            seen = 0
            for words in sorted(self.query_words):
                seen += self.query_words[words]
                if seen >= share * total:
                    return float(words)
            return float(max(self.query_words))

        return {"mean": round(mean, 2), "median": quantile(0.5), "p90": quantile(0.9)}

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON (``apigen report --json``), the same numbers the page draws."""
        return {
            "rows_read": self.rows_read,
            "verified": self.verified,
            "table": self.table.as_dict(),
            "funnel": self.funnel(),
            "reasons": {stage: dict(counter.most_common()) for stage, counter in sorted(self.table.reasons.items())},
            "api_calls": {name: api.calls for name, api in sorted(self.apis.items()) if api.calls},
            "never_passed": {
                name: {"offered": api.offered, "top_failure": (api.top_failure() or ("", 0))[0]}
                for name, api in self.never_passed()
            },
            "styles": {
                "requested": self.requested_styles,
                "generated": dict(self.styles_generated),
                "verified": dict(self.styles_verified),
            },
            "query_words": {str(words): rows for words, rows in sorted(self.query_words.items())},
            "query_length": self.query_length(),
            "calls_per_row": {str(calls): rows for calls, rows in sorted(self.calls_per_row.items())},
            "distinct_values": {
                f"{api}.{argument}": {"uses": figures.uses, "distinct": figures.distinct, "capped": figures.capped}
                for (api, argument), figures in sorted(self.arguments.items())
            },
            "near_duplicates": {
                "checked": self.near_checked,
                "duplicate": self.duplicates["duplicate"],
                "near_duplicate": self.duplicates["near_duplicate"],
                "rate": round(self.near_duplicate_rate(), 4),
            },
            "models": dict(self.models),
            "judges": dict(self.judges),
            "seeds": sorted(self.seeds),
            "templates": dict(self.templates),
            "categories": dict(self.categories),
            "samples": self.samples,
        }


def _value_hash(value: Any) -> bytes:
    return blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str), digest_size=8).digest()


def _names(value: Any) -> list[str]:
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _sample_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a sample row shows: its id, query, calls and how it was made; not the tool schemas (long)."""
    keep = ("id", "query", "answers", "query_style", "category", "model")
    sample = {key: row[key] for key in keep if key in row}
    results = row.get("execution_result")
    if isinstance(results, list):
        sample["execution_result"] = [
            {key: entry[key] for key in ("name", "ok", "result", "error") if key in entry}
            for entry in results[:4]
            if isinstance(entry, dict)
        ]
    return sample


class FigureCollector:
    """Counts rows one at a time; ``figures()`` gives what was counted so far."""

    def __init__(
        self,
        *,
        requested_styles: Mapping[str, float] | None = None,
        samples: int = SAMPLE_ROWS,
        seed: int = 0,
        table: PipelineReport | None = None,
    ) -> None:
        """``table``: Table 1 already counted over the same rows (then it is not counted again)."""
        self.table = ReportBuilder()
        self._table = table
        self.figures_ = DatasetFigures(table=PipelineReport(), requested_styles=dict(requested_styles or {}))
        self._near = DedupIndex()
        self._samples_wanted = samples
        self._rng = random.Random(seed)

    def add(self, row: dict[str, Any]) -> None:
        figures = self.figures_
        figures.rows_read += 1
        if self._table is None:
            self.table.add(row)
        style = row.get("query_style")
        if (
            isinstance(style, str) and row.get(REJECTED_BY) != "generate"
        ):  # a failed request or a missing pair was never generated
            _count(figures.styles_generated, style)
        request_id = row.get("request_id")
        if isinstance(request_id, str):
            match = _RUN_SEED.match(request_id)
            if match:
                _count(figures.seeds, match.group(1))
        offered = _names(row.get("sampled_apis"))
        stage = row.get(REJECTED_BY)
        if stage is not None:
            reason = f"{stage}: {row.get(REASON)}"
            for name in offered or self._called(row):
                self._api(name).offered += 1
                _count(self._api(name).failures, reason)
            return
        self._add_verified(row, offered, style)

    def _api(self, name: str) -> ApiFigures:
        found = self.figures_.apis.get(name)
        if found is None:
            if len(self.figures_.apis) >= MAX_KEYS:
                name = OTHERS
            found = self.figures_.apis.setdefault(name, ApiFigures())
        return found

    @staticmethod
    def _called(row: dict[str, Any]) -> list[str]:
        try:
            return list(dict.fromkeys(call["name"] for call in calls_of(row)))
        except RowProblem:
            return []

    def _add_verified(self, row: dict[str, Any], offered: list[str], style: Any) -> None:
        figures = self.figures_
        figures.verified += 1
        if isinstance(style, str):
            _count(figures.styles_verified, style)
        for key, counter in (("model", figures.models), ("prompt_template", figures.templates)):
            if isinstance(row.get(key), str):
                _count(counter, row[key])
        category = row.get("category")
        for name in [category] if isinstance(category, str) else _names(category):
            _count(figures.categories, name)
        for judge in row.get("judges") or []:
            if isinstance(judge, dict) and isinstance(judge.get("model"), str):
                _count(figures.judges, judge["model"])
        if isinstance(row.get("pairs_requested"), int):
            figures.pairs_per_request[row["pairs_requested"]] += 1
        query = row.get(QUERY)
        if isinstance(query, str):
            figures.query_words[min(len(query.split()), LONGEST_QUERY)] += 1
        try:
            calls = calls_of(row)
        except RowProblem:
            calls = []
        figures.calls_per_row[len(calls)] += 1
        for name in offered:
            self._api(name).offered += 1
        for name in dict.fromkeys(call["name"] for call in calls):
            self._api(name).verified_rows += 1
        for call in calls:
            self._api(call["name"]).calls += 1
            for argument, value in call["arguments"].items():
                self._argument(call["name"], str(argument), value)
        if figures.near_checked < NEAR_LIMIT:
            figures.near_checked += 1
            verdict = self._near.check({"id": str(row.get("id", figures.rows_read)), QUERY: query, ANSWERS: calls})
            if REJECTED_BY in verdict:
                figures.duplicates[str(verdict[REASON])] += 1
        self._sample(row)

    def _argument(self, api: str, argument: str, value: Any) -> None:
        arguments = self.figures_.arguments
        key = (api, argument)
        figures = arguments.get(key)
        if figures is None:
            if len(arguments) >= MAX_KEYS:
                key = (OTHERS, OTHERS)
            figures = arguments.setdefault(key, ArgumentFigures())
        figures.uses += 1
        if len(figures.hashes) < DISTINCT_CAP:
            figures.hashes.add(_value_hash(value))

    def _sample(self, row: dict[str, Any]) -> None:
        """Reservoir sampling (Algorithm R): each verified row has the same chance to be shown."""
        samples, wanted, seen = self.figures_.samples, self._samples_wanted, self.figures_.verified
        if len(samples) < wanted:
            samples.append(_sample_of(row))
        else:
            slot = self._rng.randrange(seen)
            if slot < wanted:
                samples[slot] = _sample_of(row)

    def figures(self) -> DatasetFigures:
        self.figures_.table = self.table.build() if self._table is None else self._table
        return self.figures_


def collect_figures(
    rows: Iterable[dict[str, Any]],
    *,
    requested_styles: Mapping[str, float] | None = None,
    samples: int = SAMPLE_ROWS,
    table: PipelineReport | None = None,
) -> DatasetFigures:
    """The figures over ``rows`` (the dataset and its rejects), in one pass (``table``: Table 1 counted already)."""
    collector = FigureCollector(requested_styles=requested_styles, samples=samples, table=table)
    for row in rows:
        collector.add(row)
    return collector.figures()


def figures_from_files(
    paths: Iterable[str],
    *,
    requested_styles: Mapping[str, float] | None = None,
    samples: int = SAMPLE_ROWS,
    skip_bad_lines: bool = False,
    wrap: Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]] | None = None,
) -> DatasetFigures:
    """The figures over every row of the given dataset and rejects files (``wrap`` may show progress).

    Table 1 is counted first, the files read together in plan order (``report_in_plan_order``,
    flat in memory); the other figures then read the files one after another, as they
    depend on the order (the sample rows, the near duplicates, which keys fill the capped
    tables). When the files are not in plan order, that one pass counts Table 1 too.
    """
    from ..report import FILES_HINT, dataset_rows, distinct_files, named_files, report_in_plan_order
    from ..rows.jsonl import read_rows

    paths = distinct_files(paths)
    table = report_in_plan_order(paths, skip_bad_lines=skip_bad_lines)
    seen: dict[str, int] = {}
    opened = [  # a missing file fails before any work
        dataset_rows(read_rows(path, skip_bad_lines=skip_bad_lines), path, seen) for path in paths
    ]

    def rows() -> Iterator[dict[str, Any]]:
        for stream in opened:
            yield from stream

    figures = collect_figures(wrap(rows()) if wrap else rows(), requested_styles=requested_styles, samples=samples, table=table)
    if not figures.rows_read:
        verb = "holds" if len(paths) == 1 else "hold"
        raise InputError(f"{named_files(paths)} {verb} no rows", hint=FILES_HINT)
    figures.api_definitions_left_out = seen.get("api_definitions", 0)
    return figures
