"""What a run's files say: `apigen stats` (the paper's Table 1) and `apigen report` (a page of
charts and a dataset card)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import orjson
import typer

from ..config import parse_styles
from ..console import Messages
from ..errors import ConfigError
from ..report import distinct_files, report_from_files
from ..rows.replacement import check_writable, write_whole
from ..wording import counted
from .main import app, errors_to_exit_codes
from .options import QuietOpt, SkipBadLinesOpt, VerboseOpt


@app.command("stats")
def stats(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE...", help="Output and rejects files of a run (JSONL); `-` reads standard input.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the paper's Table 1 (per generator model) from files a run wrote.

    On `apigen blueprint`'s files: the blueprints verified of those requested, at the
    first attempt and after revisions, the negative ones apart, and the reasons per check.
    On `apigen simulate`'s files (then, optionally, blueprint's): APIGen-MT's table of
    conversations attempted and verified, their turns and tool calls, reasons per stage,
    and the user simulator's error rate.

    Examples:

        apigen stats dataset.jsonl rejects.jsonl

        apigen stats dataset.jsonl rejects.jsonl --json | jq .total.pass_rate

        cat out/*.jsonl | apigen stats -
    """
    from ..conversations.blueprint_report import blueprint_files, blueprint_report, blueprint_rows
    from ..conversations.conversation_report import conversation_files, conversation_report_from_files

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        if conversation_files(files):  # before blueprint files: a conversation row keeps its blueprint's fields
            conversations = conversation_report_from_files(distinct_files(files))
            _warn_of_absent_attempts(messages, conversations.absent)
            text = orjson.dumps(conversations.as_dict()).decode() if as_json else "\n".join(conversations.lines())
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            return
        if blueprint_files(files):
            blueprints = blueprint_report(blueprint_rows(distinct_files(files)))
            _warn_of_absent_blueprints(messages, blueprints.absent)
            text = orjson.dumps(blueprints.as_dict()).decode() if as_json else "\n".join(blueprints.lines())
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            return
        seen: dict[str, int] = {}
        report = report_from_files(files, seen)
        total = report.total()
        _warn_of_api_definitions(messages, seen.get("api_definitions", 0))
        if seen["rows"] and not seen["rejected"] and total.verified < total.requested:
            messages.warning(
                f"the files hold no rejected row, so the {total.requested - total.verified} requested rows absent from "
                "them are counted as missing; give the run's rejects file too (`apigen stats DATASET REJECTS`)"
            )
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(report.as_dict()) + b"\n")
        else:
            sys.stdout.write("\n".join(report.lines()) + "\n")
        sys.stdout.flush()


def _warn_of_absent_blueprints(messages: Messages, absent: int) -> None:
    if absent:
        messages.warning(
            f"the blueprints' ids skip {counted(absent, 'blueprint')} (at least) the run asked for, so they are not counted; "
            "give the run's rejects file too (`apigen stats BLUEPRINTS REJECTS`)"
        )


def _warn_of_absent_attempts(messages: Messages, absent: int) -> None:
    if absent:
        messages.warning(
            f"the conversations' attempt numbers skip {counted(absent, 'attempt')} the run made, so they are not counted; "
            "give simulate's rejects file too (`apigen stats CONVERSATIONS REJECTS`)"
        )


def _warn_of_api_definitions(messages: Messages, count: int) -> None:
    if count:
        messages.warning(
            f"left out {counted(count, 'API definition')} found among the rows "
            "(an API library, such as the `*.tools.jsonl` that `run --mcp` writes beside its output)"
        )


# --- report: the run's figures as a page of charts and a dataset card ---------------------


def _write_text(path: str, text: str, flag: str) -> None:
    """Write a file a flag names, whole or not at all; an unwritable path is an error naming the flag."""
    write_whole(path, text.encode("utf-8"), flag)


def _read_run_report(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = orjson.loads(handle.read())
    except OSError as error:
        raise ConfigError(
            f"`--run-report` cannot read `{path}`: {error.strerror or error}", hint="give the file `apigen run --report` wrote"
        ) from None
    except ValueError as error:
        raise ConfigError(
            f"`--run-report` `{path}` is not JSON ({error})", hint="give the file `apigen run --report` wrote"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"`--run-report` `{path}` holds no JSON object", hint="give the file `apigen run --report` wrote")
    return data


@app.command("report")
def report_command(
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help="The verified rows (JSONL); `-` reads standard input.")],
    rejects: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="REJECTS", help="Rejects files of the same run, for the funnel and the reasons."),
    ] = None,
    html: Annotated[
        Optional[str], typer.Option("--html", metavar="FILE", help="Write a self-contained page of charts (opens offline).")
    ] = None,
    card: Annotated[
        Optional[str], typer.Option("--card", metavar="FILE", help="Write a Hugging Face dataset card (README.md).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every figure as one JSON object on stdout.")] = False,
    styles: Annotated[
        str, typer.Option("--styles", metavar="S=W,...", help="The style weights the run asked for, to compare the mix with.")
    ] = "simple=0.4,multiple=0.2,parallel=0.2,parallel_multiple=0.2",
    run_report: Annotated[
        Optional[str],
        typer.Option("--run-report", metavar="FILE", help="The JSON of `apigen run --report`: adds seed, tokens, wall time."),
    ] = None,
    title: Annotated[
        str, typer.Option("--title", help="The page's and the card's title.")
    ] = "Function-calling dataset made with apigen",
    license_id: Annotated[
        str, typer.Option("--license", metavar="ID", help="The card's license (a Hub license id, e.g. apache-2.0).")
    ] = "other",
    data_files: Annotated[
        Optional[str],
        typer.Option("--data-files", metavar="PATH", help="The card's data file path (default: DATASET, relative to the card)."),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", metavar="N", min=0, help="Sample rows shown.")] = 3,
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Draw a run's figures: a page of charts (--html) and a Hugging Face dataset card (--card).

    One pass over the rows, keeping counts, not rows: the funnel per model and stage, the
    rejection reasons, API coverage and the APIs that never passed, the style mix,
    query length, calls per row, distinct values per argument, near duplicates. On
    `apigen blueprint`'s files: the pass rate at the first attempt and after revisions,
    the kinds (negatives apart) and the reasons per check. On `apigen simulate`'s files
    (and blueprint's after them): APIGen-MT's table of conversations.

    Examples:

        apigen report dataset.jsonl rejects.jsonl --html report.html --card README.md

        apigen report dataset.jsonl rejects.jsonl --json | jq .near_duplicates.rate

        cat dataset.jsonl | apigen report - --html report.html
    """
    from ..conversations.blueprint_report import blueprint_files  # (the multi-turn room loads for its files only)
    from ..conversations.conversation_report import conversation_files
    from ..reporting.dataset_card import render_card
    from ..reporting.figures import figures_from_files
    from ..reporting.html_page import render_html

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        if html is None and card is None and not as_json:
            raise ConfigError("`apigen report` has nothing to write", hint="pass `--html FILE`, `--card FILE` or `--json`")
        for path, flag in ((html, "--html"), (card, "--card")):
            if path is not None:
                check_writable(path, flag)  # before the pass over the rows
        wanted = _Wanted(dataset, html, card, as_json, title, license_id, data_files, skip_bad_lines)
        if conversation_files([dataset, *(rejects or [])]):
            _multi_turn_report("conversations", messages, wanted, rejects or [])
            return
        if blueprint_files([dataset, *(rejects or [])]):
            _multi_turn_report("blueprints", messages, wanted, rejects or [])
            return
        run_data = _read_run_report(run_report)
        figures = figures_from_files(
            [dataset, *(rejects or [])],
            requested_styles=parse_styles(styles),
            samples=samples,
            skip_bad_lines=skip_bad_lines,
            wrap=lambda rows: messages.progress(rows, "report"),
        )
        if html is not None:
            _write_text(html, render_html(figures, title=title), "--html")
            messages.info(f"report: wrote `{html}`")
        if card is not None:
            where = _card_data_files(dataset, card, data_files)
            _write_text(
                card, render_card(figures, data_files=where, license_id=license_id, title=title, run_report=run_data), "--card"
            )
            messages.info(f"report: wrote `{card}`")
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(figures.as_dict()) + b"\n")
            sys.stdout.flush()
        _warn_of_api_definitions(messages, figures.api_definitions_left_out)
        total = figures.table.total()
        messages.info(f"report: {figures.rows_read} rows read, {total.verified} verified of {total.requested} requested")


def _card_data_files(dataset: str, card: str, data_files: str | None) -> str:
    if data_files is not None:
        return data_files
    return os.path.relpath(dataset, os.path.dirname(os.path.abspath(card))) if dataset != "-" else "data/train.jsonl"


@dataclass(frozen=True)
class _Wanted:
    """What `apigen report` is asked to write for a multi-turn run's files, and where."""

    dataset: str
    html: str | None
    card: str | None
    as_json: bool
    title: str
    license_id: str
    data_files: str | None
    skip_bad_lines: bool = False

    def write(
        self, messages: Messages, page: Callable[[str], str], card: Callable[[str, str, str], str], figures: dict[str, Any]
    ) -> None:
        """The page (``page(title)``), the card (``card(data_files, license, title)``) and the JSON, each when asked for."""
        if self.html is not None:
            _write_text(self.html, page(self.title), "--html")
            messages.info(f"report: wrote `{self.html}`")
        if self.card is not None:
            where = _card_data_files(self.dataset, self.card, self.data_files)
            _write_text(self.card, card(where, self.license_id, self.title), "--card")
            messages.info(f"report: wrote `{self.card}`")
        if self.as_json:
            sys.stdout.buffer.write(orjson.dumps(figures) + b"\n")
            sys.stdout.flush()


@dataclass(frozen=True)
class _MultiTurnFiles:
    """How `apigen report` shows one kind of a multi-turn run's files: its report, its warning, page and card."""

    report: Callable[[list[str], bool], Any]  # (files, skip_bad_lines) -> the report
    warn_of_absent: Callable[[Messages, int], None]
    page: Callable[..., str]  # (report, title=)
    card: Callable[..., str]  # (report, data_files=, license_id=, title=)
    summary: Callable[[Any], str]  # the closing line


def _blueprint_files() -> _MultiTurnFiles:
    from ..conversations.blueprint_report import blueprint_report, blueprint_rows
    from ..reporting.blueprint_page import render_blueprint_card, render_blueprint_html

    return _MultiTurnFiles(
        lambda files, skip_bad_lines: blueprint_report(blueprint_rows(files, skip_bad_lines=skip_bad_lines)),
        _warn_of_absent_blueprints,
        render_blueprint_html,
        render_blueprint_card,
        lambda report: f"{report.requested} blueprints read, {report.verified} verified",
    )


def _conversation_files() -> _MultiTurnFiles:
    """simulate's files (and blueprint's): APIGen-MT's table."""
    from ..conversations.conversation_report import conversation_report_from_files
    from ..reporting.conversation_page import render_conversation_card, render_conversation_html

    return _MultiTurnFiles(
        lambda files, skip_bad_lines: conversation_report_from_files(files, skip_bad_lines=skip_bad_lines),
        _warn_of_absent_attempts,
        render_conversation_html,
        render_conversation_card,
        lambda report: f"{report.rows} rows read, {report.verified} conversations verified of {report.attempts} attempted",
    )


#: a multi-turn run's kinds of file, each loading its modules when a file of its kind is read
_MULTI_TURN_FILES = {"blueprints": _blueprint_files, "conversations": _conversation_files}


def _multi_turn_report(kind: str, messages: Messages, wanted: _Wanted, rejects: list[str]) -> None:
    """`apigen report` on a multi-turn run's files of ``kind``: its page, card and figures."""
    files = _MULTI_TURN_FILES[kind]()
    report = files.report(distinct_files([wanted.dataset, *rejects]), wanted.skip_bad_lines)
    files.warn_of_absent(messages, report.absent)
    wanted.write(
        messages,
        lambda title: files.page(report, title=title),
        lambda where, license_id, title: files.card(report, data_files=where, license_id=license_id, title=title),
        report.as_dict(),
    )
    messages.info(f"report: {files.summary(report)}")
