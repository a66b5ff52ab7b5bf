"""``apigen report --html``: one self-contained page of charts, drawn as inline SVG.

Why hand-written SVG and not a plotting library: the charts are bars and a
histogram, which SVG says in a few elements; the page needs no dependency, no
script and no network (it opens from a USB stick, and its Content-Security-Policy
forbids loading anything); and every drawn number is in the markup
(``data-label``/``data-value`` on each bar), so tests, and people, read the exact
figures back instead of guessing them from pixels. Everything that comes from the
rows is escaped: a query is data, never markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import orjson

from ..report import TABLE_HEADERS
from ..version import __version__
from .figures import DISTINCT_CAP, FUNNEL_STAGES, LONGEST_QUERY, DatasetFigures

MAX_BARS = 40  # per chart; the rest is said in a note
QUERY_BIN = 5  # words per bar of the query-length histogram
PALETTE = ("#3b6ea5", "#e07b39", "#5aa469", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c")
_LABEL_WIDTH, _BAR_WIDTH, _ROW, _VALUE_WIDTH = 230, 430, 22, 90

STAGE_TITLES = {
    "requested": "requested",
    "generated": "generated",
    "format_check": "passed format",
    "exec_check": "passed execution",
    "semantic_check": "passed semantic",
    "dedup": "verified (after dedup)",
}


@dataclass(frozen=True)
class Bar:
    """One bar: its label, the exact value (written into the markup) and the series it belongs to."""

    label: str
    value: float
    series: str = ""
    text: str = ""  # shown at the bar's end; the value itself when empty
    note: str = ""  # the tooltip's extra line


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def bar_chart(chart: str, bars: Sequence[Bar], *, series: Sequence[str] = (), unit: str = "rows") -> str:
    """Horizontal bars, one line per label (a group of lines per label when there are several series)."""
    if not bars:
        return f'<svg class="chart" data-chart="{escape(chart)}" width="10" height="10" role="img"></svg><p class="empty">nothing to draw</p>'
    top = max(bar.value for bar in bars) or 1
    height = _ROW * len(bars) + 8
    width = _LABEL_WIDTH + _BAR_WIDTH + _VALUE_WIDTH
    parts = [
        f'<svg class="chart" data-chart="{escape(chart)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" xmlns="http://www.w3.org/2000/svg">'
    ]
    previous = None
    for index, bar in enumerate(bars):
        y = 4 + index * _ROW
        colour = PALETTE[series.index(bar.series) % len(PALETTE)] if bar.series in series else PALETTE[0]
        length = max(bar.value / top * _BAR_WIDTH, 1 if bar.value else 0)
        label = bar.label if bar.label != previous else ""
        previous = bar.label
        tip = f"{bar.label}{' · ' + bar.series if bar.series else ''}: {bar.text or _number(bar.value)} {unit}"
        if bar.note:
            tip += f" ({bar.note})"
        parts.append(
            f'<g class="bar" data-label="{escape(bar.label)}" data-series="{escape(bar.series)}" data-value="{_number(bar.value)}">'
            f"<title>{escape(tip)}</title>"
            f'<text x="{_LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(_clip(label, 32))}</text>'
            f'<rect x="{_LABEL_WIDTH}" y="{y + 2}" width="{length:.1f}" height="{_ROW - 6}" fill="{colour}"/>'
            f'<text x="{_LABEL_WIDTH + length + 4:.1f}" y="{y + 15}" class="value">{escape(bar.text or _number(bar.value))}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _legend(series: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{PALETTE[index % len(PALETTE)]}"></span>{escape(name)}</span>'
        for index, name in enumerate(series)
    )
    return f'<p class="legend">{items}</p>'


def page_section(chart: str, title: str, body: str, intro: str = "") -> str:
    lead = f'<p class="intro">{intro}</p>' if intro else ""
    return f'<section id="{escape(chart)}"><h2>{escape(title)}</h2>{lead}{body}</section>'


def _more(total: int, shown: int, what: str) -> str:
    return (
        f'<p class="note">{total - shown} more {escape(what)} not drawn (see `apigen report --json`).</p>'
        if total > shown
        else ""
    )


def _percent(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def funnel_section(figures: DatasetFigures) -> str:
    funnel = figures.funnel()
    models = list(funnel)
    bars = [
        Bar(STAGE_TITLES[stage], counts[stage], model, note=f"{_percent(counts[stage], counts['requested'])}% of requested")
        for stage in FUNNEL_STAGES
        for model, counts in funnel.items()
    ]
    intro = "Rows left after each stage, per generator model: the paper's Table 1 as a funnel."
    return page_section("funnel", "Funnel per model and stage", _legend(models) + bar_chart("funnel", bars, series=models), intro)


def reasons_section(figures: DatasetFigures) -> str:
    body = []
    for stage, counter in sorted(figures.table.reasons.items()):
        ranked = counter.most_common()
        bars = [Bar(reason, count) for reason, count in ranked[:MAX_BARS]]
        body.append(f"<h3>{escape(stage)}</h3>" + bar_chart(f"reasons-{stage}", bars) + _more(len(ranked), len(bars), "reasons"))
    return page_section("reasons", "Rejection reasons per stage", "".join(body) or '<p class="empty">no row was rejected</p>')


def coverage_section(figures: DatasetFigures) -> str:
    called = sorted(((name, api) for name, api in figures.apis.items() if api.calls), key=lambda item: (-item[1].calls, item[0]))
    bars = [Bar(name, api.calls, note=f"in {api.verified_rows} verified rows") for name, api in called[:MAX_BARS]]
    weak = figures.never_passed()
    rows = "".join(
        f'<tr data-api="{escape(name)}" data-offered="{api.offered}" data-top-failure="{escape(top[0])}" data-top-count="{top[1]}">'
        f"<td>{escape(name)}</td><td>{api.offered}</td><td>{escape(top[0])}</td><td>{top[1]}</td></tr>"
        for name, api in weak
        for top in [api.top_failure() or ("", 0)]
    )
    table = (
        '<table class="never-passed"><thead><tr><th>API</th><th>rows offered</th><th>top failure</th><th>rows</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if weak
        else '<p class="empty">every API that was offered passed at least once</p>'
    )
    return page_section(
        "coverage",
        "API coverage",
        "<h3>Calls per API in verified rows</h3>"
        + bar_chart("api-calls", bars, unit="calls")
        + _more(len(called), len(bars), "APIs")
        + "<h3>APIs that never passed</h3>"
        + '<p class="intro">Offered to rows, but called by no verified row: the library\'s weak spots, with why their rows failed.</p>'
        + table,
    )


def styles_section(figures: DatasetFigures) -> str:
    requested = figures.requested_styles
    names = list(dict.fromkeys([*requested, *sorted(figures.styles_generated), *sorted(figures.styles_verified)]))
    weight_total = sum(requested.values())
    generated_total = sum(figures.styles_generated.values())
    verified_total = sum(figures.styles_verified.values())
    series = ["requested", "generated", "verified"]
    bars = []
    for name in names:
        bars.append(
            Bar(
                name,
                _percent(requested.get(name, 0.0), weight_total),
                "requested",
                f"{_percent(requested.get(name, 0.0), weight_total):.1f}%",
            )
        )
        for label, counter, total in (
            ("generated", figures.styles_generated, generated_total),
            ("verified", figures.styles_verified, verified_total),
        ):
            share = _percent(counter.get(name, 0), total)
            bars.append(Bar(name, share, label, f"{share:.1f}%", note=f"{counter.get(name, 0)} rows"))
    intro = "The share of each query style: the weights asked for (`--styles`), among generated rows and among verified rows."
    return page_section(
        "styles",
        "Query-style mix against the requested weights",
        _legend(series) + bar_chart("styles", bars, series=series, unit="%"),
        intro,
    )


def length_section(figures: DatasetFigures) -> str:
    bins: dict[int, int] = {}
    for words, rows in figures.query_words.items():
        bins[words // QUERY_BIN] = bins.get(words // QUERY_BIN, 0) + rows
    bars = []
    if bins:
        for start in range(0, max(bins) + 1):
            low = start * QUERY_BIN
            label = f"{low}+" if low + QUERY_BIN > LONGEST_QUERY else f"{low}-{low + QUERY_BIN - 1}"
            bars.append(Bar(f"{label} words", bins.get(start, 0)))
    stats = figures.query_length()
    intro = f"Words per verified query: mean {stats['mean']}, median {_number(stats['median'])}, 90th percentile {_number(stats['p90'])}."
    return page_section("query-length", "Query length", bar_chart("query-length", bars), intro)


def calls_section(figures: DatasetFigures) -> str:
    bars = [Bar(f"{calls} call{'s' if calls != 1 else ''}", rows) for calls, rows in sorted(figures.calls_per_row.items())]
    return page_section(
        "calls-per-row", "Calls per row", bar_chart("calls-per-row", bars), "How many calls each verified row makes."
    )


def distinct_section(figures: DatasetFigures) -> str:
    ranked = sorted(figures.arguments.items(), key=lambda item: (-item[1].uses, item[0]))
    bars = [
        Bar(
            f"{api}.{argument}",
            arg.distinct,
            text=f"{arg.distinct}{'+' if arg.capped else ''} of {arg.uses}",
            note=f"given {arg.uses} times",
        )
        for (api, argument), arg in ranked[:MAX_BARS]
    ]
    intro = (
        "Distinct values each argument takes in verified rows (of how many times it is given), most used first; "
        f"counted up to {DISTINCT_CAP}. Few distinct values for many uses means the data repeats itself."
    )
    return page_section(
        "distinct-values",
        "Distinct values per argument",
        bar_chart("distinct-values", bars, unit="values") + _more(len(ranked), len(bars), "arguments"),
        intro,
    )


def duplicates_section(figures: DatasetFigures) -> str:
    checked, found = figures.near_checked, figures.duplicates
    unique = checked - sum(found.values())
    bars = [Bar("unique", unique), Bar("duplicate", found["duplicate"]), Bar("near duplicate", found["near_duplicate"])]
    rate = figures.near_duplicate_rate()
    scope = "all" if checked == figures.verified else f"the first {checked} of the"
    intro = (
        f'Near-duplicate rate <strong class="stat" data-stat="near-duplicate-rate" data-value="{rate:.4f}">{rate:.2%}</strong>: '
        f"{scope} {figures.verified} verified rows compared as `apigen dedup` does (the same calls, queries with a word Jaccard of 0.8 or more)."
    )
    return page_section("near-duplicates", "Near duplicates", bar_chart("near-duplicates", bars), intro)


def samples_section(figures: DatasetFigures) -> str:
    items = "".join(
        f'<pre class="sample">{escape(orjson.dumps(sample, option=orjson.OPT_INDENT_2).decode())}</pre>'
        for sample in figures.samples
    )
    return page_section(
        "samples",
        "Sample rows",
        items or '<p class="empty">no verified row</p>',
        "Verified rows drawn at random (tool schemas left out).",
    )


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:820px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{font-size:1em;margin:1.2em 0 .3em}svg.chart text{font-size:12px;fill:#333}svg.chart text.value{fill:#555}
.legend .key{margin-right:1.2em}.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
td:nth-child(2),td:nth-child(4){text-align:right}.summary td:nth-child(n+2){text-align:right}
pre.sample{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px;white-space:pre-wrap;word-break:break-word}
.intro,.note,.empty{color:#555}
"""


def summary_table(figures: DatasetFigures) -> str:
    table = figures.table
    headers = TABLE_HEADERS
    shown = table.shown_rows()
    body = "".join(
        f'<tr data-model="{escape(model)}"><td>{escape(model)}</td>' + "".join(f"<td>{cell}</td>" for cell in t.cells()) + "</tr>"
        for model, t in shown
    )
    head = "".join(f"<th>{name}</th>" for name in headers)
    return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(figures: DatasetFigures, *, title: str) -> str:
    """The whole page: a summary table and one section per chart; no script, nothing loaded from anywhere."""
    total = figures.table.total()
    sections = (
        funnel_section,
        reasons_section,
        coverage_section,
        styles_section,
        length_section,
        calls_section,
        distinct_section,
        duplicates_section,
        samples_section,
    )
    intro = (
        f'<p class="intro">{figures.verified} verified rows of {total.requested} requested ({total.pass_rate:.1%}); '
        f"{figures.rows_read} rows read. Made by apigen {escape(__version__)}.</p>"
    )
    return html_document(title, intro + summary_table(figures) + "".join(section(figures) for section in sections))


def html_document(title: str, body: str) -> str:
    """A self-contained page: the title, then ``body``; no script, nothing loaded from anywhere."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>" + body + "</body></html>\n"
    )
