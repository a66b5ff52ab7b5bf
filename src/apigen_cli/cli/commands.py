"""The commands, until they are split into one module per command group."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import orjson
import typer

from ..config import GROUPS, LLMSettings, Resolved, describe, parse_styles
from ..console import Messages, StageBars
from ..errors import ConfigError, InputError
from ..llm.chat import ChatService
from ..llm.service import LLMClient, open_chat_service, usage_lines
from ..pipeline import RunTarget, open_run
from ..ray_engine import ENGINES, RayOptions, where_it_runs
from ..report import report_from_files
from ..rows.jsonl import write_jsonl
from ..rows.records import MISSING_PAIR
from ..rows.replacement import check_writable, write_whole
from ..rows.routing import StageSummary
from ..rows.runner import Destinations, Stage, run_stage, write_rows
from ..run_settings import (
    ExecutionSettings,
    check_shard,
    chosen_seed,
    execution_settings_from,
    generation_settings_from,
    grow_settings_from,
    judge_settings_from,
    run_settings_from,
)
from ..shards import merge_shards
from ..stages.dedup import dedup as dedup_rows
from ..stages.example_pool import generate_growing
from ..stages.exec_check import CallTally
from ..stages.exec_check import exec_check as exec_check_rows
from ..stages.export import NoteCollector, RecordCheck, export_file
from ..stages.format_check import format_check as format_check_rows
from ..stages.generate import Generation, prepare_generation
from ..stages.generate import generate as generate_rows
from ..stages.negatives import NegativesSummary, check_rate
from ..stages.negatives import negatives as negative_rows
from ..stages.prompts import load_prompts
from ..stages.semantic_check import semantic_check as semantic_check_rows
from ..wording import counted
from .main import EXIT_REJECTED, app, errors_to_exit_codes
from .options import (
    STAGE_IO_GROUP,
    InputArg,
    OutputOpt,
    QuietOpt,
    RejectsOpt,
    SkipBadLinesOpt,
    StrictOpt,
    VerboseOpt,
    destinations,
    executor_and_policy,
    function_output,
    resolved_settings,
    setting_options,
    show_setting,
    with_options,
)

if TYPE_CHECKING:  # the batch module loads only when `--batch` or `batch ...` is asked
    from ..llm.batch import BatchBackend, BatchEntry, BatchSettings


def _finish(messages: Messages, summary: StageSummary, strict: bool, *, keeps_rejected: bool = True) -> None:
    """The closing lines; ``keeps_rejected``: the command has `--keep-rejected` (generate has not)."""
    if summary.dropped:
        also = ", or `--keep-rejected` to keep them in the output" if keeps_rejected else ""
        were = "was" if summary.dropped == 1 else "were"
        messages.info(
            f"{counted(summary.dropped, 'rejected row')} {were} dropped: pass `--rejects FILE` to keep them apart{also}"
        )
    messages.info(summary.line())
    if strict and summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


@dataclass
class StageRun:
    """What a stage command runs: the stage, how its progress shows, what it says at the end."""

    stage: Stage
    wrap: Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]] | None = None
    after: Callable[[], None] | None = None


def run_stage_command(command: str, params: Mapping[str, Any], setup: Callable[[Messages, ExitStack], StageRun]) -> None:
    """Run one stage command from its STAGE_IO_GROUP options: set up, read, check, route, summarise, exit.

    ``setup`` builds the stage inside the error handling, so a bad setting is an
    `error:` line with a hint; resources it opens go on the ExitStack.
    """
    messages = Messages(quiet=params["quiet"], verbose=params["verbose"])
    where = destinations(params)
    with errors_to_exit_codes(messages), ExitStack() as resources:
        where.validate()  # a bad combination of flags is reported before workers or clients start
        run = setup(messages, resources)
        messages.waiting_for_stdin(where.input)

        def check(summary: StageSummary) -> None:  # before the files replace the earlier ones: a failed stage replaces none
            if run.after is not None:
                run.after()
            _refuse_input_of_a_skipped_stage(command, summary, where.input)

        wrap = run.wrap or (lambda rows: messages.progress(rows, command))
        summary = run_stage(command, run.stage, where, wrap=wrap, check=check)
    _finish(messages, summary, params["strict"])


# the code a stage rejects a row with when the row skipped the stage before it -> that stage
_SKIPPED_STAGE = {"not_format_checked": "format-check", "not_exec_checked": "exec-check"}


def _refuse_input_of_a_skipped_stage(command: str, summary: StageSummary, source: str) -> None:
    """When no row passed and every row this stage saw missed the stage before, the input is the wrong file.

    Each row is rejected as data all the same; but 0 rows and exit 0 would let a pipe that left
    a stage out look like it ran.
    """
    mine = {code: count for (stage, code), count in summary.reasons.items() if stage == command.replace("-", "_")}
    if summary.passed or len(mine) != 1:
        return
    ((code, count),) = mine.items()
    before = _SKIPPED_STAGE.get(code)
    if before is None:
        return
    shown = "standard input" if source == "-" else f"`{source}`"
    raise InputError(
        f"none of the {count} rows of {shown} has been through `{before}`: every one was rejected as `{code}`",
        hint=f"run `apigen {before}` on them first: `apigen {before} FILE | apigen {command} ...`",
    )


@app.command("format-check")
@with_options(STAGE_IO_GROUP)
def format_check(ctx: typer.Context) -> None:
    """Check that each row's calls parse, name offered tools and fit their parameters.

    Rows holding the model's raw text in `raw_output` are parsed first (a code
    fence or prose around the JSON is fine); a list of pairs gives one row each.

    Examples:

        apigen format-check rows.jsonl -o checked.jsonl --rejects rejected.jsonl

        cat rows.jsonl | apigen format-check --strict > checked.jsonl

        apigen format-check xlam_function_calling_60k.json --keep-rejected | jq .reason
    """
    run_stage_command("format-check", ctx.params, lambda messages, resources: StageRun(format_check_rows))


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

    Examples:

        apigen stats dataset.jsonl rejects.jsonl

        apigen stats dataset.jsonl rejects.jsonl --json | jq .total.pass_rate

        cat out/*.jsonl | apigen stats -
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
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
    query length, calls per row, distinct values per argument, near duplicates.

    Examples:

        apigen report dataset.jsonl rejects.jsonl --html report.html --card README.md

        apigen report dataset.jsonl rejects.jsonl --json | jq .near_duplicates.rate

        cat dataset.jsonl | apigen report - --html report.html
    """
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
            where = data_files or (
                os.path.relpath(dataset, os.path.dirname(os.path.abspath(card))) if dataset != "-" else "data/train.jsonl"
            )
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


# --- training data: export, dedup, negatives --------------------------------------------


@app.command("export")
def export(
    format_name: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="xlam|openai|messages|sharegpt",
            help="xlam-function-calling-60k, OpenAI chat fine-tuning, chat messages for transformers/TRL, or ShareGPT.",
        ),
    ],
    input: InputArg = "-",
    output: OutputOpt = "-",
    jsonl: Annotated[bool, typer.Option("--jsonl", help="xlam: one row per line instead of one JSON array.")] = False,
    with_results: Annotated[
        bool,
        typer.Option(
            "--with-results", help="openai, messages: follow the calls with `tool` messages holding their execution results."
        ),
    ] = False,
    system: Annotated[
        Optional[str],
        typer.Option("--system", metavar="TEXT", help="openai, messages: open every conversation with this system message."),
    ] = None,
    string_arguments: Annotated[
        bool,
        typer.Option(
            "--string-arguments",
            help="messages: write call arguments as JSON strings, for templates that add them to a string (DeepSeek's).",
        ),
    ] = False,
    output_format: Annotated[
        str,
        typer.Option(
            "--output-format", metavar="json|parquet", help="JSON (Lines) or a Parquet file (needs the `parquet` extra)."
        ),
    ] = "json",
    render_check: Annotated[
        Optional[str],
        typer.Option(
            "--render-check",
            metavar="TEMPLATE_FILE",
            help="Render every row with this chat template (.jinja or tokenizer_config.json) as transformers does; "
            "exit 2 if a row fails or its rendered calls are not the row's.",
        ),
    ] = None,
    unverified: Annotated[
        bool,
        typer.Option(
            "--unverified",
            help="Also export rows that have not passed all three checks (format, execution, semantic), as they are: "
            "you give up the verification. Without it such a row stops the export (exit 2).",
        ),
    ] = False,
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write verified rows as training data: xlam, OpenAI fine-tuning, chat messages for TRL, or ShareGPT.

    Only rows that passed all three checks become training data: one that has not
    (raw `generate` output, a hand-made file) stops the export, unless `--unverified`.
    Rows rejected by an earlier stage are left out; irrelevance rows become a reply
    without calls. What a format cannot say about a tool is named once per kind.

    Examples:

        apigen export dataset.jsonl --format xlam -o xlam.json

        apigen export dataset.jsonl --format messages --with-results --render-check qwen2.5.jinja -o train.jsonl

        apigen dedup dataset.jsonl | apigen export --format sharegpt > sharegpt.jsonl
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    notes = NoteCollector()
    where = Destinations(input, output, skip_bad_lines=skip_bad_lines)
    with errors_to_exit_codes(messages):
        check: RecordCheck | None = None
        if render_check is not None:
            from ..stages.chat_template import ChatTemplate, RenderCheck  # jinja2 loads only when a check is asked

            check = RenderCheck(ChatTemplate.from_file(render_check))
        messages.waiting_for_stdin(input)
        summary = export_file(
            where,
            format_name,
            jsonl=jsonl,
            with_results=with_results,
            system=system,
            string_arguments=string_arguments,
            output_format=output_format,
            render_check=check,
            on_note=notes,
            wrap=lambda rows: messages.progress(rows, "export"),
            unverified=unverified,
        )
    if not quiet:
        for line in notes.lines():
            messages.warning(line)
    messages.info(summary.line())
    if check is not None:
        messages.info(check.line())


@app.command("dedup")
@with_options(STAGE_IO_GROUP)
def dedup(
    ctx: typer.Context,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", metavar="T", help="Near duplicates: the Jaccard similarity of the queries' words, in (0, 1]."
        ),
    ] = 0.8,
    near: Annotated[
        bool, typer.Option("--near/--no-near", help="Also reject near duplicates (same calls, queries a few words apart).")
    ] = True,
) -> None:
    """Reject rows that repeat a kept row: the same query and calls, or the same calls and a query a few words apart.

    The first row is kept; each duplicate names it in `duplicate_of`. Queries match
    ignoring case and spacing, calls ignoring the key order of the arguments.

    Examples:

        apigen dedup dataset.jsonl -o unique.jsonl --rejects duplicates.jsonl

        apigen dedup dataset.jsonl --threshold 0.9 --no-near > unique.jsonl

        apigen semantic-check executed.jsonl -J offline | apigen dedup | apigen export --format openai > train.jsonl
    """
    run_stage_command(
        "dedup", ctx.params, lambda messages, resources: StageRun(lambda rows: dedup_rows(rows, threshold=threshold, near=near))
    )


@app.command("negatives")
def negatives(
    rate: Annotated[float, typer.Option("--rate", metavar="R", help="The share of rows that get a negative, from 0 to 1.")],
    input: InputArg = "-",
    output: OutputOpt = "-",
    seed: Annotated[int, typer.Option("--seed", help="Which rows are chosen; the same seed chooses the same rows.")] = 0,
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Add irrelevance negatives: copies of some rows without the tools they call, whose right answer is no call.

    Every input row is kept; a chosen row is followed by its negative (`kind: "irrelevance"`,
    `answers: []`, id `<id>-irrelevant`, `source_id`).

    Examples:

        apigen negatives dataset.jsonl --rate 0.1 -o with_negatives.jsonl

        apigen negatives dataset.jsonl --rate 0.2 --seed 7 | apigen export --format openai > train.jsonl
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    summary = NegativesSummary()
    where = Destinations(input, output, keep_rejected=True, skip_bad_lines=skip_bad_lines)
    with errors_to_exit_codes(messages):
        check_rate(rate)
        messages.waiting_for_stdin(input)
        run_stage(
            "negatives",
            lambda rows: negative_rows(rows, rate=rate, seed=seed, summary=summary),
            where,
            wrap=lambda rows: messages.progress(rows, "negatives"),
        )
    messages.info(summary.line())


@app.command("exec-check")
@with_options(STAGE_IO_GROUP, setting_options("execution"))
def exec_check(ctx: typer.Context) -> None:
    """Execute every call of each row; keep the rows whose calls all succeed.

    Python functions run in reused worker processes, with a timeout per call and a
    memory limit; a crash, a hang or an exception rejects the row, not the run.
    Tools with an `http` binding are called over HTTP; tools with an `mcp` binding
    through the MCP servers named with `--mcp`/`--mcp-url`. Each row gets
    `execution_result` (one entry per call) and `keep_row_after_execution_check`.

    Examples:

        apigen exec-check checked.jsonl --functions sample_data/functions -o executed.jsonl --rejects failed.jsonl

        apigen format-check rows.jsonl | apigen exec-check --functions my_tools.py --exec-timeout 5 > executed.jsonl

        ITEMS_KEY=... apigen exec-check rest_rows.jsonl --pass-env ITEMS_KEY --http-concurrency 16 --strict

        apigen exec-check units_checked.jsonl --mcp units='python sample_data/mcp_server.py' -o executed.jsonl
    """

    def setup(messages: Messages, resources: ExitStack) -> StageRun:
        executor, policy = executor_and_policy(ctx, messages)
        resources.callback(executor.close)
        executor.start()
        tally = CallTally()
        functions = resolved_settings(ctx).values["functions"]
        return StageRun(
            lambda rows: exec_check_rows(rows, executor, policy, tally), after=lambda: tally.check_something_ran(functions)
        )

    run_stage_command("exec-check", ctx.params, setup)


config_app = typer.Typer(name="config", help="Show apigen's settings and where each comes from.", no_args_is_help=True)
app.add_typer(config_app)


@config_app.command("show")
@with_options(setting_options(*GROUPS))
def config_show(
    ctx: typer.Context,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per setting: name, value, source.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print each effective setting, its value and where it comes from; keys are never shown.

    Sources, highest first: a flag, an APIGEN_* variable, ./apigen.toml (or
    [tool.apigen] in ./pyproject.toml), the user file
    $XDG_CONFIG_HOME/apigen/config.toml, the default. Every setting's flag is
    accepted too, to see what a command given it would use.

    Examples:

        apigen config show

        apigen config show --json | jq -c 'select(.source != "default")'

        APIGEN_MODEL=offline apigen config show --concurrency 64
    """
    messages = Messages(verbose=verbose)
    with errors_to_exit_codes(messages):
        entries = describe(resolved_settings(ctx))
    if json_lines:
        sys.stdout.buffer.write(b"".join(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE) for entry in entries))
        sys.stdout.flush()
        return
    shown = [(entry["name"], show_setting(entry["value"]), entry["source"]) for entry in entries]
    name_width = max(len(name) for name, _value, _source in shown)
    value_width = min(48, max(len(value) for _name, value, _source in shown))
    for name, value, source in shown:
        typer.echo(f"{name:<{name_width}}  {value:<{value_width}}  {source}")


# --- the LLM stages and the whole pipeline --------------------------------------------

ApisArg = Annotated[
    str,
    typer.Argument(
        metavar="APIS", help="The API library: JSONL (or a JSON array) of tool definitions, each with an optional `category`."
    ),
]


# --- batch (`--batch`, `--batch-dir`): a stage's requests as provider batches (llm/batch.py) ---


def batch_settings(params: Mapping[str, Any], output: str) -> BatchSettings | None:
    """The BatchSettings the batch settings ask for, or None without `--batch` / `--batch-dir` (``params``: resolved values)."""
    from ..llm.batch import BatchSettings, state_path

    limits = {
        "max_requests": params["batch_max_requests"],
        "max_bytes": params["batch_max_bytes"],
        "poll_seconds": params["batch_poll_seconds"],
    }
    if params["batch_dir"]:
        return BatchSettings(folder=params["batch_dir"], **limits)
    if not params["batch"]:
        return None
    if output == "-":
        raise ConfigError(
            "`--batch` needs `-o FILE`: its batches are remembered beside the output, so that a rerun picks them up",
            hint="pass `-o FILE` (batches can take hours), or leave `--batch` out",
        )
    return BatchSettings(state_file=state_path(output), **limits)


def say_batches(messages: Messages, chat: LLMClient) -> dict[str, dict[str, int]]:
    """Say which stages ran as batches, with their tokens; the same for the report."""
    from ..llm.batch import summary, summary_lines

    backend = chat.batches
    if backend is None:
        return {}
    stages = summary(backend.state.batches)
    for line in summary_lines(stages):
        messages.info(line)
    return stages


# --- end batch ---


def library_file(beside: str | None, suffix: str, resources: ExitStack) -> str:
    """Where a library that `run` makes itself (from a pipe, from MCP servers) is kept.

    Beside a file output (`OUTPUT.<suffix>`), so that the same command resumes and the
    fingerprint covers it; else a temporary file, removed when the command ends.
    """
    if beside is not None and beside != "-":
        folder = os.path.dirname(beside)
        if folder:
            os.makedirs(folder, exist_ok=True)
        return f"{beside}.{suffix}"
    handle, path = tempfile.mkstemp(prefix="apigen-library-", suffix=".jsonl")
    os.close(handle)
    resources.callback(os.remove, path)
    return path


def library_from_stdin(apis: str, keep_beside: str | None, messages: Messages, resources: ExitStack) -> str:
    """APIS `-` (`apigen library from-openapi spec.yaml | apigen run - ...`): standard input saved to a file."""
    if apis != "-":
        return apis
    if sys.stdin.isatty():
        raise InputError("the API library is `-` but standard input is a terminal", hint="pipe a library in, or name its file")
    data = sys.stdin.buffer.read()
    path = library_file(keep_beside, "apis.jsonl", resources)
    if keep_beside not in (None, "-") and os.path.exists(path) and Path(path).read_bytes() != data:
        messages.info(f"the library on standard input differs from `{path}`, the one the run began with; using the new one")
    write_whole(path, data, "--output")  # kept beside the output
    return path


def _generation(ctx: typer.Context, apis: str, resolved: Resolved, llm: LLMSettings) -> Generation:
    """The generation job the settings describe; the seed is --seed, else a fresh random one."""
    values = resolved.values
    check_shard(values["shard"], llm.seed)
    settings = replace(generation_settings_from(values, llm), seed=chosen_seed(llm.seed))
    job = prepare_generation(apis, settings, examples_path=values["examples"], prompts_dir=values["prompts"])
    return replace(job, grow=grow_settings_from(values))


def _say_usage(messages: Messages, chat: ChatService) -> None:
    for line in usage_lines(chat.usage):
        messages.info(line)


@app.command("generate")
@with_options(setting_options("generation", "llm", "batch"))
def generate(
    ctx: typer.Context,
    apis: ApisArg,
    output: OutputOpt = "-",
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write queries and the calls that answer them from an API library (stage 1).

    Each request samples APIs (several of one category for the multiple styles),
    few-shot examples and a prompt template; the model writes K pairs. Every pair
    becomes a row; text that holds no pairs becomes a `raw_output` row that
    format-check rejects. `--model` given several times are used in turn.

    Examples:

        apigen generate sample_data/apis.jsonl -m offline --count 30 --seed 1 -o generated.jsonl

        apigen generate apis.jsonl --base-url http://localhost:8000/v1 -m Qwen/Qwen2.5-7B-Instruct -n 1000 --examples seeds.jsonl

        apigen generate apis.jsonl -m offline -n 50 | apigen format-check | apigen exec-check --functions lib/
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages), ExitStack() as stack:
        apis = library_from_stdin(apis, None, messages, stack)
        where = Destinations(apis, output, rejects)
        where.validate()  # an unwritable `-o` is said before any request
        resolved = resolved_settings(ctx)
        llm = resolved.llm_settings()
        job = _generation(ctx, apis, resolved, llm)
        if job.examples_left_out:
            messages.warning(f"`--examples`: {counted(job.examples_left_out, 'row')} left out, failing the format check")
        batch = batch_settings(resolved.values, output)
        chat = stack.enter_context(
            open_chat_service(llm, on_warning=messages.warning, batch=batch, on_batch_status=messages.info)
        )
        with_schema = llm.json_mode == "schema"
        rows = (
            generate_growing(job, chat, with_schema=with_schema)
            if job.grow is not None
            else generate_rows(job.plans(), chat, job.prompts, with_schema=with_schema)
        )
        summary = write_rows("generate", rows, where, wrap=lambda rows: messages.llm_progress(rows, "generate", chat.progress))
        summary.words = ("rows", "rejected")
        missing = summary.reasons[("generate", MISSING_PAIR)]
        if missing:
            messages.warning(
                f"the model left out {counted(missing, 'pair')} of those asked for (each a reject with reason `{MISSING_PAIR}`); "
                "a model that writes fewer pairs than asked may do better with a smaller `--pairs-per-prompt`"
            )
        messages.info(f"seed {job.settings.seed}: pass `--seed {job.settings.seed}` to sample the same requests again")
        _say_usage(messages, chat)
        say_batches(messages, chat)
    _finish(messages, summary, strict, keeps_rejected=False)


@app.command("semantic-check")
@with_options(STAGE_IO_GROUP, setting_options("judge", "llm", "batch"))
def semantic_check(ctx: typer.Context) -> None:
    """Ask an LLM judge whether each row's calls and results answer its query (stage 4).

    The judge sees every tool the row offered, the query, the calls and their
    execution results, and writes `thought` and `keep_row_after_semantic_check`.
    Rows that failed execution are not judged unless `--include-failed`.

    Examples:

        apigen semantic-check executed.jsonl --judge-model offline -o dataset.jsonl --rejects judged_out.jsonl

        apigen exec-check checked.jsonl --functions lib/ | apigen semantic-check --base-url http://localhost:11434/v1 -J qwen2.5:14b > dataset.jsonl

        apigen semantic-check executed.jsonl -J gpt-4o-mini -J gpt-4.1-mini -J o4-mini --cache .apigen-cache
    """

    def setup(messages: Messages, resources: ExitStack) -> StageRun:
        if ctx.params.get("model") and ctx.get_parameter_source("model").name == "COMMANDLINE":  # type: ignore[union-attr]
            raise ConfigError(
                "`--model` does not name the judge in semantic-check", hint="pass `--judge-model NAME` (`-J NAME`) instead"
            )
        resolved = resolved_settings(ctx)
        llm = resolved.llm_settings()
        judge = judge_settings_from(resolved.values, llm)
        if not judge.judges:
            raise ConfigError(
                "no judge model is given",
                hint="pass `--judge-model NAME` (repeat it for a committee), or `--judge-model offline`",
            )
        prompts = load_prompts(None)
        batch = batch_settings(resolved.values, ctx.params["output"])
        chat = resources.enter_context(
            open_chat_service(
                replace(llm, models=judge.judges), on_warning=messages.warning, batch=batch, on_batch_status=messages.info
            )
        )

        def after() -> None:
            _say_usage(messages, chat)
            say_batches(messages, chat)

        return StageRun(
            lambda rows: semantic_check_rows(rows, chat, prompts, judge),
            wrap=lambda rows: messages.llm_progress(rows, "semantic-check", chat.progress),
            after=after,
        )

    run_stage_command("semantic-check", ctx.params, setup)


@app.command("run")
@with_options(setting_options("generation", "execution", "judge", "llm", "batch"))
def run_command(
    ctx: typer.Context,
    apis: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[APIS]",
            help="The API library: JSONL (or a JSON array) of tool definitions, each with an optional `category`. "
            "With `--mcp`/`--mcp-url` it may be left out: the servers' tools are the library.",
        ),
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="The verified dataset; a file makes the run resumable.")
    ] = "-",
    rejects: RejectsOpt = None,
    report: Annotated[
        Optional[str], typer.Option("--report", metavar="FILE", help="Also write the report (Table 1, reasons, tokens) as JSON.")
    ] = None,
    dedup: Annotated[
        bool, typer.Option("--dedup", help="Also reject duplicates and near duplicates of kept rows (see `apigen dedup`).")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh even if the output holds an earlier run.")] = False,
    only_executable: Annotated[
        bool,
        typer.Option(
            "--only-executable",
            help="Sample only the APIs that something can execute (a function, an `http` or `mcp` binding); "
            "without it, such APIs are an error before any request.",
        ),
    ] = False,
    # --- past one machine, for runs one machine is too slow for: the checks on a Ray cluster;
    # the same rows as the local engine
    engine: Annotated[
        str, typer.Option("--engine", metavar="local|ray", help="Where the checks run: this process, or a Ray cluster.")
    ] = "local",
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            "--ray-address", metavar="ADDR", help="With `--engine ray`: the cluster (default: RAY_ADDRESS, else a local Ray)."
        ),
    ] = None,
    ray_actors: Annotated[
        int,
        typer.Option(
            "--ray-actors", metavar="N", min=1, help="With `--engine ray`: LLM clients (actors) for generation, and for judging."
        ),
    ] = 1,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole pipeline: generate, format-check, exec-check, semantic-check.

    The same rows as the shell pipe of the four commands with the same flags and
    seed, in one process, streaming. With `-o FILE` the run is resumable: after
    an interruption (Ctrl-C, a crash, kill -9) the same command carries on where it
    stopped, losing and repeating nothing. Ends with the paper's Table 1.

    Examples:

        apigen run sample_data/apis.jsonl --functions sample_data/functions -m offline -J offline -n 60 --seed 1 -o out/dataset.jsonl --rejects out/rejects.jsonl

        apigen run apis.jsonl --functions lib/ --base-url http://localhost:8000/v1 -m my-model -J my-model -n 10000 -o data.jsonl --rejects rej.jsonl --report report.json

        apigen run apis.jsonl --functions lib/ -m offline -J offline -n 100 | apigen export --format openai > train.jsonl

        apigen run --mcp 'python sample_data/mcp_server.py' -m offline -J offline -n 40 -o out/mcp_dataset.jsonl
    """
    started = time.monotonic()  # the report's wall time counts everything from here: MCP servers, workers, Ray
    messages = Messages(quiet=quiet, verbose=verbose)
    resumes = "run the same command again: it carries on where it stopped" if output != "-" else None
    with errors_to_exit_codes(messages, on_interrupt=resumes), ExitStack() as stack:
        resolved = resolved_settings(ctx)
        if apis == "-":
            apis = library_from_stdin(apis, output, messages, stack)
        if apis is None:  # --- run --mcp: the servers' tools are the library ---
            apis = _library_from_mcp_servers(execution_settings_from(resolved.values), output, messages, stack)
        settings = run_settings_from(resolved.values, apis, resolved.llm_settings(), dedup=dedup, only_executable=only_executable)
        batch = batch_settings(resolved.values, output)
        if batch is not None and batch.state_file and overwrite and os.path.exists(batch.state_file):
            os.remove(batch.state_file)  # afresh means new batches too
        session = stack.enter_context(
            open_run(
                settings,
                RunTarget(output, rejects, overwrite),
                report=report,
                on_warning=messages.warning,
                on_function_output=function_output(messages),
                chat_options={"batch": batch, "on_batch_status": messages.info},
                ray=_ray_options(engine, ray_address, ray_actors),
                started=started,
            )
        )
        assert session.chat is not None
        # on Ray the LLM clients are the actors', whose live counters this process does not see
        counters = None if session.ray is not None else session.chat.progress
        if session.ray is not None:
            messages.info(where_it_runs(session.ray))
        bars = stack.enter_context(StageBars(messages, session.stage_names, counters))
        outcome = session.execute(observe=bars.observe)
        if outcome.already_complete:
            messages.info(f"`{output}` already holds this run, complete; pass `--overwrite` to run it again")
        if outcome.rejects_dropped:
            were = "was" if outcome.rejects_dropped == 1 else "were"
            messages.info(
                f"{counted(outcome.rejects_dropped, 'rejected row')} {were} dropped: pass `--rejects FILE` to keep them"
            )
        if outcome.requests_skipped and not outcome.already_complete:
            messages.info(f"resumed: {outcome.requests_skipped} of {outcome.requests_total} requests were already done")
        for line in outcome.report.lines():
            messages.info(line)
        say_batches(messages, session.chat)
        messages.info(f"seed {outcome.seed}")
    total = outcome.report.total()
    messages.info(f"run: {total.verified} verified of {total.requested} requested ({total.pass_rate:.1%})")
    if strict and total.verified < total.requested:
        raise typer.Exit(EXIT_REJECTED)


# --- past one machine: `apigen run --shard K/N` splits a run over N machines, and `apigen merge`
# joins their outputs into the files of the unsharded run --------------------------------------


@app.command("merge")
def merge(
    output: Annotated[str, typer.Argument(metavar="OUT", help="The merged dataset (a file).")],
    shard_outputs: Annotated[
        list[str], typer.Argument(metavar="SHARD_OUTPUTS...", help="Each shard's `--output` file, in any order.")
    ],
    rejects: Annotated[
        Optional[str], typer.Option("--rejects", metavar="FILE", help="Also merge the shards' rejects into FILE.")
    ] = None,
    report: Annotated[
        Optional[str],
        typer.Option("--report", metavar="FILE", help="Write the summed report (Table 1, reasons, tokens) as JSON."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT (and the rejects file) if they exist.")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Join the shards of one `apigen run --shard K/N` into the files of the unsharded run.

    Every shard must be there and complete (its run state says so); the rows come
    out in plan order, the report is the shards' summed, and the merged output is
    a finished run: `apigen run` with the same flags and no `--shard` finds it done.

    Examples:

        apigen merge dataset.jsonl shard-0.jsonl shard-1.jsonl shard-2.jsonl --rejects rejects.jsonl --report report.json

        apigen merge dataset.jsonl out/shard-*.jsonl && apigen export dataset.jsonl --format openai > train.jsonl
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        if not output or output == "-":
            raise ConfigError("`merge` writes a file, not standard output", hint="name the merged output file first")
        if report is not None:
            check_writable(report, "--report")  # before any file is merged
        outcome = merge_shards(output, shard_outputs, rejects=rejects, overwrite=overwrite)
        if report is not None:
            data = orjson.dumps(outcome.report.as_dict() | {"seed": outcome.seed}, option=orjson.OPT_INDENT_2)
            write_whole(report, data, "--report")
    for line in outcome.report.lines():
        messages.info(line)
    if outcome.rejects_left_out:
        messages.info(f"the rejects of {outcome.rejects_left_out} shards were not merged: pass `--rejects FILE` to merge them")
    total = outcome.report.total()
    messages.info(
        f"merge: {outcome.shards} shards, {outcome.requests} requests, seed {outcome.seed}: "
        f"{total.verified} verified of {total.requested} requested into `{output}`"
    )


def _ray_options(engine: str, address: str | None, actors: int) -> RayOptions | None:
    if engine not in ENGINES:
        raise ConfigError(
            f"`--engine` is `{engine}`, not one of: {', '.join(ENGINES)}", hint="pass `--engine local` or `--engine ray`"
        )
    if engine == "local":
        if address is not None:
            raise ConfigError("`--ray-address` needs `--engine ray`", hint="add `--engine ray`, or leave out `--ray-address`")
        return None
    return RayOptions(address=address, actors=actors)


# --- library: importers (Python, OpenAPI, MCP, ToolBench), check, merge ----------------
# A library is made from what the user already has (Python code, an OpenAPI spec, an MCP
# server, ToolBench files), so that nobody writes tool definitions by hand. Each command calls
# one function of library/ and writes library JSONL (stdout or -o); notes go to stderr. Modules
# are imported when the command runs, so that the other commands do not load the importers.

library_app = typer.Typer(
    name="library",
    help="Make, check and merge API libraries: from Python code, OpenAPI specs, MCP servers and ToolBench files.",
    no_args_is_help=True,
)
app.add_typer(library_app)

LibraryOutputOpt = Annotated[
    str, typer.Option("--output", "-o", metavar="FILE", help="Where the library JSONL goes; `-` is standard output.")
]


def _write_imported(command: str, imported: Any, output: str, messages: Messages) -> int:
    """Print the importer's notes, write its tools, say how many; returns the count written."""
    from ..library.output import write_library

    for note in imported.notes:
        messages.info(f"note: {note}")
    if not imported.tools:
        raise ConfigError(f"{command}: no API could be imported ({imported.skipped} skipped)", hint="see the notes above for why")
    count = write_library(imported.tools, output)
    skipped = f", {imported.skipped} skipped" if imported.skipped else ""
    messages.info(f"{command}: {counted(count, 'API')} written{skipped}")
    return count


@library_app.command("from-python")
def library_from_python(
    specs: Annotated[list[str], typer.Argument(metavar="PATH|MODULE...", help="A .py file, a folder of .py files, or a module.")],
    output: LibraryOutputOpt = "-",
    untyped: Annotated[
        str,
        typer.Option(
            "--untyped",
            metavar="skip|loose",
            help="A function with a parameter that cannot be typed (no annotation, *args, a type with no JSON form): "
            "`skip` it, or keep it with that parameter typed `loose`ly (any JSON value).",
        ),
    ] = "skip",
    category: Annotated[
        Optional[str], typer.Option("--category", metavar="NAME", help="One category for every API, instead of the module's.")
    ] = None,
    import_timeout: Annotated[
        float, typer.Option("--import-timeout", min=0.1, metavar="SECONDS", help="Time limit of importing the code.")
    ] = 60.0,
    memory_mb: Annotated[
        int, typer.Option("--memory-mb", min=0, metavar="MB", help="Address-space limit of the importing process; 0 for none.")
    ] = 2048,
    pass_env: Annotated[
        Optional[list[str]],
        typer.Option("--pass-env", metavar="NAME", help="Let the imported code see this secret-looking variable. Repeatable."),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make an API library from the public functions of Python code.

    Signatures give the parameters (annotations as JSON Schema, defaults make a
    parameter optional), docstrings (Google, NumPy, reST) the descriptions, the
    module name the category. The code is imported (which runs its module-level
    code) in a separate process, as exec-check's workers do; no function is called.

    Examples:

        apigen library from-python sample_data/functions -o apis.jsonl

        apigen library from-python mypackage.tools --untyped loose > apis.jsonl
    """
    from ..library.from_python import UNTYPED_CHOICES, PythonImport, from_python

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        if untyped not in UNTYPED_CHOICES:
            raise ConfigError(
                f"`--untyped` is {untyped!r}, not `skip` or `loose`", hint="pass `--untyped skip` or `--untyped loose`"
            )
        options = PythonImport(untyped, import_timeout, memory_mb, tuple(pass_env or ()), category)
        _write_imported("from-python", from_python(specs, options), output, messages)
        if len(specs) == 1:
            messages.info(f"from-python: run them with `apigen exec-check --functions {specs[0]}` (and `apigen library check`)")
        else:
            messages.info(
                "from-python: exec-check takes one `--functions` library: put the files in one folder and pass that folder"
            )


@library_app.command("from-openapi")
def library_from_openapi(
    spec: Annotated[str, typer.Argument(metavar="SPEC", help="An OpenAPI 3.0/3.1 or Swagger 2.0 file, JSON or YAML.")],
    output: LibraryOutputOpt = "-",
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", metavar="URL", help="Call this server instead of the spec's first one.")
    ] = None,
    auth: Annotated[
        Optional[list[str]],
        typer.Option(
            "--auth",
            metavar="SCHEME=ENV_VAR",
            help="Fill the spec's security scheme SCHEME from the environment variable ENV_VAR at call time. Repeatable.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make an API library from an OpenAPI or Swagger spec: one tool with an `http` binding per operation.

    Path, query, header and JSON-body parameters become one parameters object;
    `$ref`s are followed within the file. Operations a JSON call cannot make
    (multipart forms, file uploads, other body types) are skipped with a note.

    Examples:

        apigen library from-openapi petstore.yaml -o apis.jsonl

        apigen library from-openapi api.json --base-url http://127.0.0.1:8000 --auth api_key=PETS_KEY > apis.jsonl
    """
    from ..library.from_openapi import OpenApiImport, from_openapi, parse_auth

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        try:
            schemes = parse_auth(auth or [])
        except ValueError as error:
            raise ConfigError(f"`--auth`: {error}", hint="pass `--auth SCHEME=ENV_VAR`, e.g. `--auth api_key=PETS_KEY`") from None
        _write_imported("from-openapi", from_openapi(spec, OpenApiImport(base_url, schemes)), output, messages)


@library_app.command("from-toolbench")
def library_from_toolbench(
    path: Annotated[str, typer.Argument(metavar="FILE|DIR", help="A ToolBench tool .json file, or a folder of them.")],
    output: LibraryOutputOpt = "-",
    key_env: Annotated[
        Optional[str],
        typer.Option("--key-env", metavar="ENV_VAR", help="Environment variable whose value goes in the key header."),
    ] = None,
    key_header: Annotated[str, typer.Option("--key-header", metavar="NAME", help="Header carrying the key.")] = "X-RapidAPI-Key",
    host_header: Annotated[
        str, typer.Option("--host-header", metavar="NAME", help="Header carrying the tool's host.")
    ] = "X-RapidAPI-Host",
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", metavar="URL", help="Send every call to this server (scheme and host).")
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make an API library from ToolBench / RapidAPI tool files; the folder names the category.

    Examples:

        apigen library from-toolbench data/toolenv/tools --key-env RAPIDAPI_KEY -o apis.jsonl

        apigen library from-toolbench tools/Finance/stock.json --base-url http://127.0.0.1:8080 > apis.jsonl
    """
    from ..library.from_toolbench import ToolBenchImport, from_toolbench

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        options = ToolBenchImport(key_env, key_header, host_header, base_url)
        _write_imported("from-toolbench", from_toolbench(path, options), output, messages)


@library_app.command("check")
@with_options(setting_options("execution"))
def library_check(
    ctx: typer.Context,
    library: Annotated[str, typer.Argument(metavar="LIB", help="The API library (JSONL) to check; `-` reads standard input.")],
    keep: Annotated[
        Optional[str], typer.Option("--keep", metavar="FILE", help="Write the APIs whose call worked to FILE.")
    ] = None,
    lint_only: Annotated[bool, typer.Option("--lint-only", help="Only lint the definitions; call nothing.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when an API fails its call or the lint finds something.")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Call each API once with arguments made from its schema, and lint the definitions.

    The accessibility test of the APIGen paper: an API that does not answer is
    no use to generate from. Arguments come from each parameter's examples,
    default or enum, its description's cues ("e.g. X", YYYY-MM-DD, ISO 4217),
    format and pattern, else its name and type; a call that fails is tried again
    with up to two other argument sets. Prints one line per API on stderr (ok,
    error, timeout, HTTP status, the arguments; `-v` every try); `--keep` writes
    the ones that work.

    Examples:

        apigen library check sample_data/apis.jsonl --functions sample_data/functions --keep working.jsonl

        apigen library from-openapi pets.yaml --auth key=PETS_KEY | PETS_KEY=... apigen library check - --pass-env PETS_KEY
    """
    from ..library.check import call_each, lint, read_entries, table_lines
    from ..library.output import write_library

    def judge(result: Any) -> str | None:  # exec-check's own policy, so that a kept API passes exec-check
        problem = policy.problem_with(result)
        if problem is None:
            return None
        return "the result is empty" if problem.code == "empty_result" else "the result is an error payload"

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages), ExitStack() as resources:
        if keep is not None:
            check_writable(keep, "--keep")  # before any API is called
        entries, findings = read_entries(library)
        findings = findings + lint(entries)
        for finding in findings:
            messages.info(f"lint: {finding.where}" + (f" `{finding.name}`" if finding.name else "") + f": {finding.message}")
        failed = 0
        if not lint_only:
            executor, policy = executor_and_policy(ctx, messages)
            resources.callback(executor.close)
            call_each(entries, executor, judge)
            for line in table_lines(entries, verbose=verbose):
                messages.info(line)
            working = [entry for entry in entries if entry.status == "ok"]
            failed = len(entries) - len(working)
            if keep is not None:
                write_library([entry.definition for entry in working], keep, flag="--keep")
            messages.info(
                f"check: {len(working)} of {counted(len(entries), 'API')} answered, {counted(len(findings), 'lint finding')}"
            )
        else:
            messages.info(f"check: {counted(len(entries), 'API')} linted, {counted(len(findings), 'lint finding')}")
    if strict and (failed or findings):
        raise typer.Exit(EXIT_REJECTED)


@library_app.command("merge")
def library_merge(
    libraries: Annotated[
        list[str], typer.Argument(metavar="LIB...", help="API libraries (JSONL) to merge, in order; `-` reads standard input.")
    ],
    output: LibraryOutputOpt = "-",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Merge API libraries into one; a name used by two different APIs is renamed (`name_2`), bindings kept.

    Examples:

        apigen library merge python_apis.jsonl rest_apis.jsonl -o apis.jsonl

        apigen library merge a.jsonl b.jsonl | apigen library check - --lint-only
    """
    from ..library.merge import merge

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        _write_imported("merge", merge(libraries), output, messages)


@library_app.command("from-mcp")
def library_from_mcp(
    command: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="-- COMMAND [ARGS]", help="The command that starts the MCP server over stdio (after `--`)."),
    ] = None,
    url: Annotated[
        Optional[str], typer.Option("--url", metavar="URL", help="Reach the server over streamable HTTP instead of starting it.")
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option(
            "--name",
            metavar="NAME",
            help="The server's name in the bindings, which `--mcp NAME=...` gives later [default: from the command, or `mcp`].",
        ),
    ] = None,
    category: Annotated[
        Optional[str], typer.Option("--category", metavar="TEXT", help="Category of every tool [default: the server's name].")
    ] = None,
    output: OutputOpt = "-",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, metavar="SECONDS", help="Time limit to start the server and list its tools.")
    ] = 30.0,
    pass_env: Annotated[
        Optional[list[str]],
        typer.Option(
            "--pass-env", metavar="NAME", help="Pass this secret-looking environment variable to the server. Repeatable."
        ),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write an MCP server's tools as an API library (JSONL), each bound to the server by name.

    Starts the server (or reaches it with `--url`), asks for `tools/list` and writes
    one library entry per tool: its name, description, `inputSchema` as
    `parameters`, and `"mcp": {"server": NAME, "tool": ...}`. The binding never
    holds a command: exec-check runs the tools only through servers given with
    `--mcp NAME=COMMAND` or `--mcp-url NAME=URL`.

    Examples:

        apigen library from-mcp -- python sample_data/mcp_server.py

        apigen library from-mcp --url http://127.0.0.1:8000/mcp --name units -o units.jsonl

        apigen library from-mcp -o mcp_apis.jsonl -- python sample_data/mcp_server.py && apigen generate mcp_apis.jsonl -m offline -n 5 | apigen format-check
    """
    from ..execution.mcp import McpServer, check_server_name, check_url
    from ..library.from_mcp import default_server_name, import_server

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        words = list(command or [])
        if (url is None) == (not words):
            raise ConfigError(
                "give either the command that starts the MCP server (after `--`) or `--url`, not both"
                if words
                else "no MCP server given",
                hint="e.g. `apigen library from-mcp -- python sample_data/mcp_server.py` or `--url http://127.0.0.1:8000/mcp`",
            )
        server_name = check_server_name(name or (default_server_name(words) if words else "mcp"), "--name")
        if url is not None:
            server = McpServer(server_name, url=check_url(url, "--url"))
        else:
            server = McpServer(server_name, command=tuple(words))
        imported = import_server(server, timeout=timeout, category=category, pass_env=tuple(pass_env or ()))
        write_jsonl(output, imported.entries)
        for tool, why in imported.skipped.items():
            messages.warning(f"skipped the tool `{tool}`: {why}")
        option = f"--mcp-url {server.name}={url}" if url is not None else f"--mcp {server.name}={shlex.quote(server.shown)}"
        messages.info(
            f"library from-mcp: {counted(len(imported.entries), 'tool')} of MCP server `{server.name}`; run them with `{option}`"
        )


def _library_from_mcp_servers(execution: ExecutionSettings, output: str, messages: Messages, resources: ExitStack) -> str:
    """`run --mcp ...` without APIS: list the servers' tools into a library file (see ``library_file``)."""
    from ..library.from_mcp import import_server

    options = execution.mcp_options()
    if not options.servers:
        raise ConfigError(
            "no API library given",
            hint="pass the APIS file, or `--mcp NAME=COMMAND` / `--mcp-url NAME=URL` to use a server's tools",
        )
    entries = []
    for server in options.servers:
        imported = import_server(server, timeout=max(options.timeout, 30.0), pass_env=options.pass_env)
        for tool, why in imported.skipped.items():
            messages.warning(f"skipped the tool `{tool}` of MCP server `{server.name}`: {why}")
        entries += imported.entries
    path = library_file(output, "tools.jsonl", resources)
    write_jsonl(path, entries)
    names = ", ".join(f"`{server.name}`" for server in options.servers)
    messages.info(f"run: {len(entries)} tools of MCP server(s) {names}, written to `{path}`")
    return path


# --- end of library commands ------------------------------------------------------------


# --- batch status / batch cancel: the batches a `--batch` command left beside its output ---

batch_app = typer.Typer(name="batch", help="Show or cancel the provider batches of a `--batch` run.", no_args_is_help=True)
app.add_typer(batch_app)

BatchOutputArg = Annotated[str, typer.Argument(metavar="OUTPUT", help="The `-o FILE` of the command that ran with `--batch`.")]
BatchBaseUrlOpt = Annotated[
    Optional[str],
    typer.Option("--base-url", envvar="APIGEN_BASE_URL", metavar="URL", help="The endpoint [default: the one the run used]."),
]


BatchApiKeyEnvOpt = Annotated[
    Optional[str],
    typer.Option("--api-key-env", metavar="VAR", help="Environment variable holding the API key (default: APIGEN_API_KEY)."),
]


def _batch_backend(output: str, base_url: str | None, api_key_env: str | None) -> BatchBackend:
    """The batch backend over the state beside ``output``; ConfigError when there is none."""
    from ..llm.batch import BatchBackend, BatchSettings, BatchState, state_path
    from ..llm.http_backend import normalise_base_url

    path = state_path(output)
    state = BatchState.load(path)
    if not os.path.exists(path):
        raise ConfigError(
            f"no batches are recorded for `{output}` (`{path}` is absent)",
            hint="name the output file (`-o FILE`) of a command that ran with batches",
        )
    url = base_url or state.base_url
    if not url:
        raise ConfigError(f"`{path}` does not say which endpoint its batches are at", hint="pass `--base-url URL`")
    settings = LLMSettings(base_url=url, api_key_env=api_key_env)
    backend = BatchBackend(settings, BatchSettings(state_file=path), base_url=normalise_base_url(url))
    backend.refused_hint = "check `--base-url`: the batches are at the endpoint the run used"
    return backend


def _batch_line(entry: BatchEntry) -> str:
    counts = entry.counts
    total = counts.get("total") or len(entry.custom_ids)
    return (
        f"{entry.id or '(not created)'}  {entry.stage}  {entry.model}  {entry.status}  "
        f"{counts.get('completed', 0)}/{total} done  {counts.get('failed', 0)} failed"
    )


@batch_app.command("status")
def batch_status(
    output: BatchOutputArg,
    refresh: Annotated[
        bool, typer.Option("--refresh/--no-refresh", help="Ask the provider for the state of unfinished batches first.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per batch.")] = False,
    base_url: BatchBaseUrlOpt = None,
    api_key_env: BatchApiKeyEnvOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the batches of a `--batch` run: id, stage, model, status, requests done and failed.

    Examples:

        apigen batch status data.jsonl

        apigen batch status data.jsonl --no-refresh --json | jq -r .status
    """
    messages = Messages(verbose=verbose)
    with errors_to_exit_codes(messages):
        backend = _batch_backend(output, base_url, api_key_env)
        try:
            if refresh:
                backend.refresh()
        finally:
            backend.close()
        entries = backend.state.batches
    if as_json:
        sys.stdout.buffer.write(
            b"".join(orjson.dumps(vars(entry) | {"custom_ids": len(entry.custom_ids)}) + b"\n" for entry in entries)
        )
        sys.stdout.flush()
        return
    for entry in entries:
        typer.echo(_batch_line(entry))


@batch_app.command("cancel")
def batch_cancel(
    output: BatchOutputArg,
    base_url: BatchBaseUrlOpt = None,
    api_key_env: BatchApiKeyEnvOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Cancel the unfinished batches of a `--batch` run; a rerun then rejects their requests as `llm_error`.

    Examples:

        apigen batch cancel data.jsonl

        apigen batch cancel data.jsonl --base-url https://api.openai.com/v1
    """
    messages = Messages(verbose=verbose)
    with errors_to_exit_codes(messages):
        backend = _batch_backend(output, base_url, api_key_env)
        try:
            cancelled = backend.cancel()
        finally:
            backend.close()
    for entry in cancelled:
        typer.echo(_batch_line(entry))
    messages.info(f"batch cancel: {counted(len(cancelled), 'batch', 'batches')} cancelled")
