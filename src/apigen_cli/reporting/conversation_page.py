"""A simulate run's figures as a page (``apigen report --html``) and a dataset card (``--card``).

The page has the look of the other reports (``html_page``) and holds APIGen-MT's table: from
blueprints to verified conversations, their size, how they ended, the reasons per stage and the
user simulator's errors.
"""

from __future__ import annotations

from html import escape

from ..conversations.conversation_report import ConversationReport
from ..version import __version__
from .blueprint_page import short_front_matter
from .dataset_card import markdown_table
from .html_page import MAX_BARS, Bar, bar_chart, html_document, page_section

_SERIES = ("verified", "attempted")
_SHOWN = {"verified": "per verified conversation", "attempted": "per attempt"}


def _intro(report: ConversationReport) -> str:
    rate = f" ({report.verified / report.attempts:.1%})" if report.attempts else ""
    return (
        f"{report.verified} verified conversations of {report.attempts} attempted{rate}, "
        f"acted out from {len(report.simulated)} blueprints"
    )


def render_conversation_html(report: ConversationReport, *, title: str) -> str:
    rows = "".join(f"<tr><td>{escape(name)}</td><td>{escape(value)}</td></tr>" for name, value in report.figures())
    intro = f'<p class="intro">{escape(_intro(report))}. Made by apigen {escape(__version__)}.</p>'
    summary = f'<table class="summary"><tbody>{rows}</tbody></table>'
    size = []
    for name, spread in (("turns", report.turns), ("tool calls", report.tool_calls)):
        size += [
            Bar(name, round(spread[series].mean, 2), series, text=f"{spread[series].mean:.2f} {_SHOWN[series]}")
            for series in _SERIES
        ]
    sizes = page_section(
        "size",
        "Turns and tool calls per conversation",
        bar_chart("size", size, series=_SERIES, unit="on average"),
        "The mean per verified conversation and per attempt (the table gives the least and the most).",
    )
    ended = page_section(
        "ended-by",
        "How conversations ended",
        bar_chart("ended-by", [Bar(code, count) for code, count in report.ended_by.most_common(MAX_BARS)], unit="attempts"),
    )
    body = [
        f"<h3>{escape(stage)}</h3>"
        + bar_chart(f"reasons-{stage}", [Bar(code, count) for code, count in reasons.most_common(MAX_BARS)], unit="rows")
        for stage, reasons in report.stages()
    ]
    reasons = page_section("reasons", "Reasons per stage", "".join(body) or '<p class="empty">nothing was rejected</p>')
    errors = page_section(
        "user-errors",
        "User simulator errors",
        bar_chart("user-errors", [Bar(code, count) for code, count in report.user_errors.most_common(MAX_BARS)], unit="attempts"),
        f"{report.flagged} of {report.attempts} attempts ({report.user_error_rate:.1%}) flagged: the user gave a detail it "
        "was not given, or stopped before the task was done.",
    )
    return html_document(title, intro + summary + sizes + ended + reasons + errors)


def render_conversation_card(report: ConversationReport, *, data_files: str, license_id: str, title: str) -> str:
    """A short card: the files, then how the conversations were made and checked, in numbers."""
    lines = [
        *short_front_matter(license_id=license_id, data_files=data_files, tags=("apigen", "multi-turn", "function-calling")),
        f"# {title}",
        "",
        "Conversations between a simulated user and an agent acting out verified task blueprints, each kept only when "
        f"the final state of its environment and what it told the user were verified (`apigen simulate`, apigen {__version__}). "
        f"{_intro(report)}.",
        "",
        *markdown_table(("figure", "value"), report.figures()),
        "",
        *markdown_table(("stage", "reasons"), [(stage, _listed(reasons)) for stage, reasons in report.stages()]),
        "",
    ]
    return "\n".join(lines)


def _listed(reasons: dict[str, int]) -> str:
    return ", ".join(f"{code} {count}" for code, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
