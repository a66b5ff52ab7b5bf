"""``apigen report --card``: a Hugging Face dataset card (``README.md`` with YAML front matter).

The front matter holds the keys the Hub reads (``license``, ``task_categories``,
``size_categories``, ``configs`` with ``data_files``, plus ``language``, ``tags``
and ``pretty_name``); the body says what the data is, how it was made and what
the report measured, so the card is written from the same figures as the page.
Every value in the front matter is written as a JSON string, which YAML reads as
the same string whatever characters a model name or path holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ..report import TABLE_HEADERS, WALL_TIME_MEASURES
from ..version import __version__
from .figures import DatasetFigures

# The Hub's size categories, by the number of rows.
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)
ROW_FIELDS = (
    ("id", "string", "the row's id (`gen-SEED-REQUEST-PAIR` for generated rows)"),
    ("query", "string", "the user's request"),
    ("answers", "list", 'the calls that answer it: `[{"name": ..., "arguments": {...}}]`'),
    ("tools", "list", "the tool definitions offered with the query"),
    ("execution_result", "list", "one entry per call: `name`, `ok` and its `result` (or `error`)"),
    ("query_style", "string", "simple, multiple, parallel or parallel_multiple"),
    ("category", "string or list", "the category of the sampled APIs"),
    ("sampled_apis", "list", "the APIs sampled for the request"),
    ("model", "string", "the generator model"),
    ("prompt_template", "string", "the generator prompt template used"),
    ("thought", "string", "the judge's reasoning"),
    ("keep_row_after_format_check", "bool", "the format verdict (true in this file)"),
    ("keep_row_after_execution_check", "bool", "the execution verdict (true in this file)"),
    ("keep_row_after_semantic_check", "bool", "the judge's verdict (true in this file)"),
)


def size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>100M"


def _yaml_list(key: str, values: Iterable[str]) -> list[str]:
    return [f"{key}:", *(f"- {json.dumps(value)}" for value in values)]


def front_matter(figures: DatasetFigures, *, data_files: str, license_id: str, title: str) -> str:
    lines = [
        "---",
        f"license: {json.dumps(license_id)}",
        *_yaml_list("language", ["en"]),
        *_yaml_list("task_categories", ["text-generation"]),
        *_yaml_list("tags", ["function-calling", "tool-use", "synthetic", "apigen"]),
        *_yaml_list("size_categories", [size_category(figures.verified)]),
        f"pretty_name: {json.dumps(title)}",
        "configs:",
        '- config_name: "default"',
        "  data_files:",
        '  - split: "train"',
        f"    path: {json.dumps(data_files)}",
        "---",
    ]
    return "\n".join(lines) + "\n"


def _md(text: Any) -> str:
    """A value from the rows made safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def markdown_table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    heads = list(headers)
    return [
        "| " + " | ".join(heads) + " |",
        "| " + " | ".join("---" for _ in heads) + " |",
        *("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows),
    ]


def _listing(counter: Mapping[str, int]) -> str:
    return (
        ", ".join(f"`{_md(name)}` ({count})" for name, count in sorted(counter.items(), key=lambda item: (-item[1], item[0])))
        or "not recorded in the rows"
    )


def _judges(figures: DatasetFigures, run: Mapping[str, Any]) -> str:
    """The judges: a committee's rows name theirs; a single judge is named by the run report (``--run-report``)."""
    if figures.judges:
        return _listing(figures.judges)
    named = run.get("judge_models")
    if isinstance(named, list) and named:
        return ", ".join(f"`{_md(name)}`" for name in named)
    return "one judge, not named in its rows (give `--run-report` to name it)"


def render_card(
    figures: DatasetFigures,
    *,
    data_files: str,
    license_id: str = "other",
    title: str = "Function-calling dataset made with apigen",
    run_report: Mapping[str, Any] | None = None,
) -> str:
    """The card's text: front matter, then the dataset's description, how it was made, its figures, its format and a sample."""
    table, total = figures.table, figures.table.total()
    stats = figures.query_length()
    run = dict(run_report or {})
    made = [
        f"- apigen version: {__version__} (this card); pipeline: generate, format-check, exec-check, semantic-check",
        f"- generator models: {_listing(figures.models)}",
        f"- judge models: {_judges(figures, run)}",
        f"- seed: {run['seed'] if 'seed' in run else (', '.join(figures.seeds) or 'not recorded in the rows')}",
        f"- pairs asked per request: {', '.join(str(k) for k in sorted(figures.pairs_per_request)) or 'not recorded'}",
        "- query styles asked for: "
        + (", ".join(f"{name} {weight:g}" for name, weight in figures.requested_styles.items()) or "not given"),
        f"- prompt templates: {_listing(figures.templates)}",
        f"- categories: {_listing(figures.categories)}",
    ]
    for model, counts in sorted((run.get("tokens") or {}).items()):
        made.append(
            f"- tokens, {_md(model)}: {counts.get('prompt_tokens', 0)} prompt + {counts.get('completion_tokens', 0)} completion in {counts.get('requests', 0)} requests"
        )
    if run.get("wall_seconds") is not None:
        made.append(f"- wall time: {run['wall_seconds']} s ({WALL_TIME_MEASURES})")
    if "offline" in figures.models:
        made.append(
            "- note: rows by the `offline` model come from apigen's built-in template backend (for demos and tests), not from a language model"
        )
    funnel = markdown_table(TABLE_HEADERS, ((model, *t.cells()) for model, t in table.shown_rows()))
    reasons = [
        f"- {stage}: " + ", ".join(f"`{_md(code)}` {count}" for code, count in counter.most_common(5))
        for stage, counter in sorted(table.reasons.items())
    ]
    called = sorted(((name, api) for name, api in figures.apis.items() if api.calls), key=lambda item: (-item[1].calls, item[0]))
    weak = figures.never_passed()
    styles = markdown_table(
        ("style", "asked", "verified rows", "share"),
        (
            (
                name,
                f"{figures.requested_styles.get(name, 0):g}",
                figures.styles_verified.get(name, 0),
                f"{figures.styles_verified.get(name, 0) / max(figures.verified, 1):.1%}",
            )
            for name in dict.fromkeys([*figures.requested_styles, *sorted(figures.styles_verified)])
        ),
    )
    sample = orjson.dumps(figures.samples[0], option=orjson.OPT_INDENT_2).decode() if figures.samples else "{}"
    lines = [
        front_matter(figures, data_files=data_files, license_id=license_id, title=title),
        f"# {title}",
        "",
        f"{figures.verified} function-calling rows (a user query, the tools offered, the calls that answer it and their results), "
        "made with apigen following the APIGen pipeline (Liu et al., 2024): a model wrote queries and calls from an API library, "
        "and only rows whose calls parse and fit their tools (format check), really run (execution check) and answer the query "
        "according to an LLM judge (semantic check) are kept.",
        "",
        "## How it was made",
        "",
        *made,
        "",
        "## Figures",
        "",
        f"Of {total.requested} rows requested, {total.verified} passed every check ({total.pass_rate:.1%}):",
        "",
        *funnel,
        "",
        "Top rejection reasons per stage:",
        "",
        *(reasons or ["- none"]),
        "",
        f"- APIs called by verified rows: {len(called)}; most called: "
        + (", ".join(f"`{_md(name)}` ({api.calls})" for name, api in called[:5]) or "none"),
        f"- APIs offered but never verified: {len(weak)}"
        + (
            ": " + ", ".join(f"`{_md(name)}` ({_md((api.top_failure() or ('?', 0))[0])})" for name, api in weak[:10])
            if weak
            else ""
        ),
        f"- words per query: mean {stats['mean']}, median {stats['median']:g}, 90th percentile {stats['p90']:g}",
        "- calls per row: " + (", ".join(f"{calls}: {rows}" for calls, rows in sorted(figures.calls_per_row.items())) or "none"),
        f"- near-duplicate rate: {figures.near_duplicate_rate():.2%} of {figures.near_checked} verified rows "
        f"({figures.duplicates['duplicate']} duplicates, {figures.duplicates['near_duplicate']} near duplicates: same calls, word Jaccard at least 0.8)",
        "",
        "Query styles:",
        "",
        *styles,
        "",
        "## Row format",
        "",
        "One JSON object per line (JSONL). The fields:",
        "",
        *markdown_table(("field", "type", "meaning"), ((f"`{name}`", kind, meaning) for name, kind, meaning in ROW_FIELDS)),
        "",
        "`apigen export --format xlam|openai|messages|sharegpt` turns the rows into the layouts fine-tuning tools read.",
        "",
        "## Sample",
        "",
        "```json",
        sample,
        "```",
        "",
        "## Limitations",
        "",
        "The rows are synthetic: the queries were written by a model, and the checks are only as good as the API library's "
        "implementations and the judge. Calls that passed the execution check really ran, against the library as it was at the time.",
        "",
    ]
    return "\n".join(lines)
