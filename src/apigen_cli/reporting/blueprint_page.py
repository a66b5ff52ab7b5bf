"""A blueprint run's figures as a page (``apigen report --html``) and a dataset card (``--card``).

The page has the same look as a single-turn run's (``html_page``), with what APIGen-MT reports:
the pass rate at the first attempt and after revisions, the kinds (negatives counted apart) and
the reasons per check.
"""

from __future__ import annotations

from collections import Counter
from html import escape

from ..conversations.blueprint_report import BlueprintReport
from ..version import __version__
from .dataset_card import markdown_table
from .html_page import MAX_BARS, Bar, bar_chart, html_document, page_section

_SERIES = ("rejected", "sent back")


def _summary(report: BlueprintReport) -> list[tuple[str, str]]:
    return [
        ("requested", str(report.requested)),
        ("verified at the first attempt", f"{report.first_attempt} ({report.first_attempt_rate:.1%})"),
        ("verified after revisions", f"{report.verified} ({report.pass_rate:.1%})"),
        ("sent back for revision", str(report.revised)),
        *((f"kind: {kind}", f"{figures.verified} verified of {figures.requested}") for kind, figures in report.kinds.items()),
    ]


def render_blueprint_html(report: BlueprintReport, *, title: str) -> str:
    rows = "".join(f"<tr><td>{escape(name)}</td><td>{escape(value)}</td></tr>" for name, value in _summary(report))
    intro = (
        f'<p class="intro">{report.verified} verified blueprints of {report.requested} requested ({report.pass_rate:.1%}); '
        f"{report.first_attempt_rate:.1%} at the first attempt. Made by apigen {escape(__version__)}.</p>"
    )
    summary = f'<table class="summary"><tbody>{rows}</tbody></table>'
    bars = []
    for name in report.checks():
        final, earlier = report.rejected.get(name, Counter()), report.revised_for.get(name, Counter())
        bars += [Bar(name, sum(final.values()), _SERIES[0]), Bar(name, sum(earlier.values()), _SERIES[1])]
    checks = page_section(
        "checks",
        "Rejections per check",
        bar_chart("checks", bars, series=_SERIES, unit="blueprints"),
        "Per check: the blueprints it finally rejected, and the attempts it sent back to the model with its critique.",
    )
    body = []
    for name in report.checks():
        ranked = (report.rejected.get(name, Counter()) + report.revised_for.get(name, Counter())).most_common()
        body.append(f"<h3>{escape(name)}</h3>" + bar_chart(f"reasons-{name}", [Bar(code, n) for code, n in ranked[:MAX_BARS]]))
    reasons = page_section("reasons", "Reasons per check", "".join(body) or '<p class="empty">no blueprint was rejected</p>')
    return html_document(title, intro + summary + checks + reasons)


def short_front_matter(*, license_id: str, data_files: str, tags: tuple[str, ...]) -> list[str]:
    """The card's front matter for a multi-turn run's files: the license, the data files and the tags, then a blank line."""
    return [
        "---",
        f"license: {license_id}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {data_files}",
        "tags:",
        *(f"- {tag}" for tag in tags),
        "---",
        "",
    ]


def render_blueprint_card(report: BlueprintReport, *, data_files: str, license_id: str, title: str) -> str:
    """A short card: the files, then how the blueprints were made and checked, in numbers."""
    checks = [
        (name, sum(report.rejected.get(name, Counter()).values()), sum(report.revised_for.get(name, Counter()).values()))
        for name in report.checks()
    ]
    lines = [
        *short_front_matter(license_id=license_id, data_files=data_files, tags=("apigen", "task-blueprints")),
        f"# {title}",
        "",
        f"Task blueprints for a stateful environment, written by a model and kept only when their actions proved right "
        f"on the real state (`apigen blueprint`, apigen {__version__}).",
        "",
        *markdown_table(("figure", "value"), _summary(report)),
        "",
        *markdown_table(("check", "rejected", "sent back"), checks),
        "",
    ]
    return "\n".join(lines)
