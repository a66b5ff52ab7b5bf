"""The `apigen` command line: thin Typer commands over the library's stages.

Each command resolves its options, calls one library function, prints the
summary on stderr and maps the outcome to an exit code:
0 ran to the end, 1 rejections under ``--strict``, 2 could not run, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import orjson
import typer

from . import __version__
from .console import Messages
from .errors import ApigenError
from .format_check import format_check as format_check_rows
from .report import report_from_files
from .routing import StageSummary
from .runner import Destinations, Stage, run_stage

app = typer.Typer(
    name="apigen",
    help="Turn API definitions into verified function-calling training data (the APIGen pipeline).",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_REJECTED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

# --- options shared by the stage commands ---------------------------------------------

InputArg = Annotated[str, typer.Argument(metavar="INPUT", help="JSONL (or JSON array) file of rows; `-` reads standard input.")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="Where kept rows go; `-` is standard output.")]
RejectsOpt = Annotated[
    Optional[str], typer.Option("--rejects", metavar="FILE", help="Write rejected rows, with `rejected_by` and `reason`, to FILE.")
]
KeepRejectedOpt = Annotated[
    bool, typer.Option("--keep-rejected", help="Keep rejected rows in the output, flagged `keep_row_after_<check>: false`.")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit 1 when any row was rejected.")]
SkipBadLinesOpt = Annotated[
    bool, typer.Option("--skip-bad-lines", help="Send lines that are not JSON objects to the rejects instead of stopping.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr but errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks of unexpected errors (also APIGEN_DEBUG=1).")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"apigen {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Turn API definitions into verified function-calling training data (the APIGen pipeline)."""


@contextmanager
def _errors_to_exit_codes(messages: Messages) -> Iterator[None]:
    """Turn what can go wrong into one message and an exit code; never a traceback unless asked."""
    debug = messages.verbose or os.environ.get("APIGEN_DEBUG") == "1"
    try:
        yield
    except ApigenError as error:
        if debug:
            raise
        messages.error(error.message, error.hint)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        messages.error("interrupted; every line already written is a complete row")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # The reader went away (`apigen ... | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(EXIT_OK) from None
    except typer.Exit:
        raise
    except Exception as error:  # a bug: say so plainly, the traceback is one flag away
        if debug:
            raise
        messages.error(f"unexpected {type(error).__name__}: {error}", "rerun with `--verbose` to see the traceback, and report it")
        raise typer.Exit(EXIT_ERROR) from None


def _finish(messages: Messages, summary: StageSummary, where: Destinations, strict: bool) -> None:
    if summary.dropped:
        messages.info(
            f"{summary.dropped} rejected rows were dropped: pass `--rejects FILE` to keep them apart, "
            "or `--keep-rejected` to keep them in the output"
        )
    messages.info(summary.line())
    if strict and summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _run_stage_command(
    command: str, stage: Stage, where: Destinations, *, strict: bool, quiet: bool, verbose: bool,
    prepare: Callable[[], None] | None = None,
) -> None:
    messages = Messages(quiet=quiet, verbose=verbose)
    with _errors_to_exit_codes(messages):
        if prepare is not None:
            prepare()
        messages.waiting_for_stdin(where.input)
        summary = run_stage(command, stage, where, wrap=lambda rows: messages.progress(rows, command))
    _finish(messages, summary, where, strict)


@app.command("format-check")
def format_check(
    input: InputArg = "-",
    output: OutputOpt = "-",
    rejects: RejectsOpt = None,
    keep_rejected: KeepRejectedOpt = False,
    strict: StrictOpt = False,
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check that each row's calls parse, name offered tools and fit their parameters.

    Rows holding the model's raw text in `raw_output` are parsed first (a code
    fence or prose around the JSON is fine); a list of pairs gives one row each.

    Examples:

        apigen format-check rows.jsonl -o checked.jsonl --rejects rejected.jsonl

        cat rows.jsonl | apigen format-check --strict > checked.jsonl

        apigen format-check xlam_function_calling_60k.json --keep-rejected | jq .reason
    """
    where = Destinations(input, output, rejects, keep_rejected, skip_bad_lines)
    _run_stage_command("format-check", format_check_rows, where, strict=strict, quiet=quiet, verbose=verbose)


@app.command("stats")
def stats(
    files: Annotated[list[str], typer.Argument(metavar="FILE...", help="Output and rejects files of a run (JSONL); `-` reads standard input.")],
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
    with _errors_to_exit_codes(messages):
        report = report_from_files(files)
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(report.as_dict()) + b"\n")
        else:
            sys.stdout.write("\n".join(report.lines()) + "\n")
        sys.stdout.flush()


# --- training data: export, dedup, negatives --------------------------------------------


@app.command("export")
def export(
    format_name: Annotated[
        str,
        typer.Option(
            "--format", metavar="xlam|openai|sharegpt", help="xlam-function-calling-60k, OpenAI chat fine-tuning, or ShareGPT."
        ),
    ],
    input: InputArg = "-",
    output: OutputOpt = "-",
    jsonl: Annotated[bool, typer.Option("--jsonl", help="xlam: one row per line instead of one JSON array.")] = False,
    with_results: Annotated[
        bool,
        typer.Option("--with-results", help="openai: follow the calls with `tool` messages holding their execution results."),
    ] = False,
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write verified rows as training data: xlam, OpenAI chat fine-tuning JSONL, or ShareGPT for LLaMA-Factory.

    Rows rejected by an earlier stage are left out; irrelevance rows become a reply
    without calls. What a format cannot say about a tool is named once per kind.

    Examples:

        apigen export dataset.jsonl --format xlam -o xlam.json

        apigen export dataset.jsonl --format openai --with-results -o train.jsonl

        apigen dedup dataset.jsonl | apigen export --format sharegpt > sharegpt.jsonl
    """
    from .export import NoteCollector, export_file

    messages = Messages(quiet=quiet, verbose=verbose)
    notes = NoteCollector()
    where = Destinations(input, output, skip_bad_lines=skip_bad_lines)
    with _errors_to_exit_codes(messages):
        messages.waiting_for_stdin(input)
        summary = export_file(
            where,
            format_name,
            jsonl=jsonl,
            with_results=with_results,
            on_note=notes,
            wrap=lambda rows: messages.progress(rows, "export"),
        )
    if not quiet:
        for line in notes.lines():
            messages.warning(line)
    messages.info(summary.line())


@app.command("dedup")
def dedup(
    input: InputArg = "-",
    output: OutputOpt = "-",
    rejects: RejectsOpt = None,
    keep_rejected: KeepRejectedOpt = False,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", metavar="T", help="Near duplicates: the Jaccard similarity of the queries' words, in (0, 1]."
        ),
    ] = 0.8,
    near: Annotated[
        bool, typer.Option("--near/--no-near", help="Also reject near duplicates (same calls, queries a few words apart).")
    ] = True,
    strict: StrictOpt = False,
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Reject rows that repeat a kept row: the same query and calls, or the same calls and a query a few words apart.

    The first row is kept; each duplicate names it in `duplicate_of`. Queries match
    ignoring case and spacing, calls ignoring the key order of the arguments.

    Examples:

        apigen dedup dataset.jsonl -o unique.jsonl --rejects duplicates.jsonl

        apigen dedup dataset.jsonl --threshold 0.9 --no-near > unique.jsonl

        apigen format-check rows.jsonl | apigen dedup | apigen export --format openai > train.jsonl
    """
    from .dedup import dedup as dedup_rows

    where = Destinations(input, output, rejects, keep_rejected, skip_bad_lines)
    _run_stage_command(
        "dedup", lambda rows: dedup_rows(rows, threshold=threshold, near=near), where, strict=strict, quiet=quiet, verbose=verbose
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
    from .negatives import NegativesSummary, check_rate
    from .negatives import negatives as negative_rows

    messages = Messages(quiet=quiet, verbose=verbose)
    summary = NegativesSummary()
    where = Destinations(input, output, keep_rejected=True, skip_bad_lines=skip_bad_lines)
    with _errors_to_exit_codes(messages):
        check_rate(rate)
        messages.waiting_for_stdin(input)
        run_stage(
            "negatives",
            lambda rows: negative_rows(rows, rate=rate, seed=seed, summary=summary),
            where,
            wrap=lambda rows: messages.progress(rows, "negatives"),
        )
    messages.info(summary.line())
# --- exec-check: the stage's modules are imported when the command runs, so that
# `apigen --help` and the other commands never load httpx or the worker pool.


def _pass_or_fail(value: str) -> str:
    if value not in ("pass", "fail"):
        raise typer.BadParameter(f"{value!r} is neither `pass` nor `fail`")
    return value


@app.command("exec-check")
def exec_check(
    input: InputArg = "-",
    functions: Annotated[
        Optional[str],
        typer.Option(
            "--functions",
            metavar="PATH",
            help="Python library of the tools: a .py file, a folder of .py files, or an importable module. "
            "May be omitted when every tool has an `http` binding.",
        ),
    ] = None,
    output: OutputOpt = "-",
    rejects: RejectsOpt = None,
    keep_rejected: KeepRejectedOpt = False,
    strict: StrictOpt = False,
    skip_bad_lines: SkipBadLinesOpt = False,
    workers: Annotated[
        Optional[int],
        typer.Option("--workers", min=1, metavar="N", help="Worker processes for Python functions.  [default: CPU count]"),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.001, metavar="SECONDS", help="Time limit of one Python call; past it, the row fails."),
    ] = 10.0,
    memory_mb: Annotated[
        int, typer.Option("--memory-mb", min=0, metavar="MB", help="Address-space limit of each worker process; 0 for none.")
    ] = 2048,
    max_result_chars: Annotated[
        int, typer.Option("--max-result-chars", min=1, metavar="N", help="Cut each recorded result to about N characters.")
    ] = 4000,
    empty_result: Annotated[
        str,
        typer.Option(
            "--empty-result", metavar="pass|fail", callback=_pass_or_fail, help='Whether a result of null, [], {} or "" passes.'
        ),
    ] = "pass",
    error_result: Annotated[
        str,
        typer.Option(
            "--error-result",
            metavar="pass|fail",
            callback=_pass_or_fail,
            help='Whether a result that is an error payload ({"error": ...}, "Error: ...") passes.',
        ),
    ] = "fail",
    pass_env: Annotated[
        Optional[list[str]],
        typer.Option(
            "--pass-env",
            metavar="NAME",
            help="Pass this environment variable (a glob such as `AWS_*` works) to the workers although its name looks "
            "secret (*KEY*, *TOKEN*, *SECRET*, *PASSWORD*, APIGEN_*, OPENAI_*). Repeatable.",
        ),
    ] = None,
    http_timeout: Annotated[
        float, typer.Option("--http-timeout", min=0.001, metavar="SECONDS", help="Time limit of one HTTP attempt.")
    ] = 10.0,
    http_concurrency: Annotated[
        int, typer.Option("--http-concurrency", min=1, metavar="N", help="HTTP calls in flight at once.")
    ] = 8,
    http_retries: Annotated[
        int,
        typer.Option("--http-retries", min=0, metavar="N", help="Retries of an HTTP call on a transport error, 408, 429 or 5xx."),
    ] = 2,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Execute every call of each row; keep the rows whose calls all succeed.

    Python functions run in reused worker processes, with a timeout per call and a
    memory limit; a crash, a hang or an exception rejects the row, not the run.
    Tools with an `http` binding are called over HTTP. Each row gets
    `execution_result` (one entry per call) and `keep_row_after_execution_check`.

    Examples:

        apigen exec-check checked.jsonl --functions sample_data/functions -o executed.jsonl --rejects failed.jsonl

        apigen format-check rows.jsonl | apigen exec-check --functions my_tools.py --timeout 5 > executed.jsonl

        ITEMS_KEY=... apigen exec-check rest_rows.jsonl --http-concurrency 16 --strict
    """
    from .exec_check import ExecPolicy
    from .exec_check import exec_check as exec_check_rows
    from .executor import Executor, ExecutorOptions, HttpOptions

    where = Destinations(input, output, rejects, keep_rejected, skip_bad_lines)
    function_output = Messages(quiet=quiet, verbose=verbose)
    options = ExecutorOptions(
        workers=workers,
        timeout=timeout,
        memory_mb=memory_mb,
        max_result_chars=max_result_chars,
        pass_env=tuple(pass_env or ()),
        on_output=(lambda line: function_output.info(f"function output: {line}")) if verbose else None,
    )
    http = HttpOptions(timeout=http_timeout, concurrency=http_concurrency, retries=http_retries)
    policy = ExecPolicy(fail_on_empty=empty_result == "fail", fail_on_error_result=error_result == "fail")
    executor = Executor(functions, options, http)

    def prepare() -> None:
        where.validate()  # a bad combination of flags is reported before any worker starts
        executor.start()

    try:
        _run_stage_command(
            "exec-check",
            lambda rows: exec_check_rows(rows, executor, policy),
            where,
            strict=strict,
            quiet=quiet,
            verbose=verbose,
            prepare=prepare,
        )
    finally:
        executor.close()


def run() -> None:
    """Console-script entry point."""
    app()
