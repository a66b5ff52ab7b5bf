"""Training data from verified rows: export, dedup, negatives."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..console import Messages
from ..errors import ConfigError
from ..rows.runner import Destinations, run_stage
from ..stages.dedup import dedup as dedup_rows
from ..stages.export import ExportSummary, NoteCollector, RecordCheck, export_file
from ..stages.export_preference import PREFERENCE, PreferenceSummary, check_preference_options, export_preference_file
from ..stages.negatives import NegativesSummary, check_rate
from ..stages.negatives import negatives as negative_rows
from .main import app, errors_to_exit_codes
from .options import STAGE_IO_GROUP, InputArg, OutputOpt, QuietOpt, SkipBadLinesOpt, VerboseOpt, with_options
from .stages import StageRun, run_stage_command


@app.command("export")
def export(
    format_name: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="xlam|openai|messages|sharegpt|preference",
            help="xlam-function-calling-60k, OpenAI chat fine-tuning, chat messages for transformers/TRL, ShareGPT, "
            "or preference pairs of conversations (with `--rejects-in`).",
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
    tools: Annotated[
        Optional[str],
        typer.Option(
            "--tools",
            metavar="FILE",
            help="Conversations without `tools`: the environment's API library (as `library from-python --class` "
            "writes it), offering the tools of the classes each row's `environment` names.",
        ),
    ] = None,
    per_turn: Annotated[
        bool,
        typer.Option(
            "--per-turn",
            help="Conversations: one sample per assistant turn, the conversation before it as the prompt.",
        ),
    ] = False,
    rejects_in: Annotated[
        Optional[str],
        typer.Option(
            "--rejects-in",
            metavar="FILE",
            help="preference: the failed attempts (rejects of `simulate` or `trajectory-check`), each paired with "
            "the verified conversation of its blueprint.",
        ),
    ] = None,
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write verified rows as training data: xlam, OpenAI fine-tuning, chat messages for TRL, or ShareGPT.

    Only rows that passed all three checks become training data: one that has not
    (raw `generate` output, a hand-made file) stops the export, unless `--unverified`.
    Rows rejected by an earlier stage are left out; irrelevance rows become a reply
    without calls. What a format cannot say about a tool is named once per kind.
    Multi-turn conversations (rows of chat `messages`) must have passed
    `trajectory-check`; they keep their per-call labels in `call_labels`.

    Examples:

        apigen export dataset.jsonl --format xlam -o xlam.json

        apigen export dataset.jsonl --format messages --with-results --render-check qwen2.5.jinja -o train.jsonl

        apigen dedup dataset.jsonl | apigen export --format sharegpt > sharegpt.jsonl

        apigen export verified.jsonl --tools env_tools.jsonl --format messages --per-turn -o turns.jsonl

        apigen export verified.jsonl --format preference --rejects-in failed.jsonl --tools env_tools.jsonl -o pairs.jsonl
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    notes = NoteCollector()
    where = Destinations(input, output, skip_bad_lines=skip_bad_lines)
    check: RecordCheck | None = None
    summary: ExportSummary | PreferenceSummary
    with errors_to_exit_codes(messages):
        if format_name == PREFERENCE:
            given = {"--jsonl": jsonl, "--with-results": with_results, "--system": system is not None}
            given |= {"--string-arguments": string_arguments, "--output-format": output_format != "json"}
            given |= {"--render-check": render_check is not None, "--unverified": unverified, "--per-turn": per_turn}
            check_preference_options(rejects_in, given)
            messages.waiting_for_stdin(input)
            summary = export_preference_file(
                where, rejects_in=str(rejects_in), tools=tools, on_note=notes, wrap=lambda rows: messages.progress(rows, "export")
            )
        else:
            if rejects_in is not None:
                raise ConfigError(
                    f"`--rejects-in` does not apply to `--format {format_name}`",
                    hint=f"it names the failed attempts of `--format {PREFERENCE}`; leave it out",
                )
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
                per_turn=per_turn,
                tools=tools,
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
