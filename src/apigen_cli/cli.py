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
# --- LLM options, shared by the stages that ask a model (generate, semantic-check) -----
# A command takes `ctx: typer.Context` and these options under these parameter names,
# then calls `llm_settings(ctx)`: flags win over APIGEN_* variables, which win over
# apigen.toml / [tool.apigen], the user config file and the defaults (see config.py).
# (These imports sit here to keep this block in one piece for merging; move them up at will.)

import json  # noqa: E402

import orjson  # noqa: E402

from .config import LLMSettings, Resolved, describe, resolve  # noqa: E402

_LLM_PANEL = "LLM endpoint and requests"

BaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", envvar="APIGEN_BASE_URL", metavar="URL", rich_help_panel=_LLM_PANEL,
    help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")]
ModelOpt = Annotated[Optional[list[str]], typer.Option(
    "--model", "-m", envvar="APIGEN_MODEL", metavar="NAME", rich_help_panel=_LLM_PANEL,
    help="Model to ask; repeat for several. `offline` is the built-in backend (demos, tests).")]
ApiKeyEnvOpt = Annotated[Optional[str], typer.Option(
    "--api-key-env", envvar="APIGEN_API_KEY_ENV", metavar="VAR", rich_help_panel=_LLM_PANEL,
    help="Environment variable holding the API key (default: APIGEN_API_KEY, else OPENAI_API_KEY).")]
TemperatureOpt = Annotated[Optional[float], typer.Option(
    "--temperature", envvar="APIGEN_TEMPERATURE", rich_help_panel=_LLM_PANEL, help="Sampling temperature.")]
MaxTokensOpt = Annotated[Optional[int], typer.Option(
    "--max-tokens", envvar="APIGEN_MAX_TOKENS", rich_help_panel=_LLM_PANEL, help="Most tokens per reply.")]
TopPOpt = Annotated[Optional[float], typer.Option(
    "--top-p", envvar="APIGEN_TOP_P", rich_help_panel=_LLM_PANEL, help="Nucleus sampling mass.")]
SeedOpt = Annotated[Optional[int], typer.Option(
    "--seed", envvar="APIGEN_SEED", rich_help_panel=_LLM_PANEL, help="Seed sent to the provider; makes `offline` repeatable.")]
LLMOptionOpt = Annotated[Optional[list[str]], typer.Option(
    "--option", "-O", metavar="KEY=VALUE", rich_help_panel=_LLM_PANEL,
    help="Any other provider parameter, VALUE read as JSON when it parses (`-O frequency_penalty=0.5`). Repeatable.")]
ConcurrencyOpt = Annotated[Optional[int], typer.Option(
    "--concurrency", envvar="APIGEN_CONCURRENCY", rich_help_panel=_LLM_PANEL, help="Requests in flight at most [default: 16].")]
RpmOpt = Annotated[Optional[int], typer.Option(
    "--rpm", envvar="APIGEN_RPM", rich_help_panel=_LLM_PANEL, help="Requests per minute at most.")]
TpmOpt = Annotated[Optional[int], typer.Option(
    "--tpm", envvar="APIGEN_TPM", rich_help_panel=_LLM_PANEL, help="Tokens per minute at most.")]
MaxAttemptsOpt = Annotated[Optional[int], typer.Option(
    "--max-attempts", envvar="APIGEN_MAX_ATTEMPTS", rich_help_panel=_LLM_PANEL,
    help="Attempts per request, the first included [default: 6].")]
MaxRetrySecondsOpt = Annotated[Optional[float], typer.Option(
    "--max-retry-seconds", envvar="APIGEN_MAX_RETRY_SECONDS", rich_help_panel=_LLM_PANEL,
    help="Most seconds spent retrying one request [default: 120].")]
TimeoutOpt = Annotated[Optional[float], typer.Option(
    "--timeout", envvar="APIGEN_TIMEOUT", rich_help_panel=_LLM_PANEL,
    help="Seconds to wait for a reply, per attempt [default: 120].")]
JsonModeOpt = Annotated[Optional[str], typer.Option(
    "--json-mode", envvar="APIGEN_JSON_MODE", metavar="schema|object|off", rich_help_panel=_LLM_PANEL,
    help="Structured output: a JSON Schema, any JSON object, or nothing [default: schema].")]
CacheOpt = Annotated[Optional[str], typer.Option(
    "--cache", envvar="APIGEN_CACHE", metavar="DIR", rich_help_panel=_LLM_PANEL,
    help="Keep successful replies in DIR (SQLite) and reuse them: a rerun sends no request twice.")]
LogLLMOpt = Annotated[Optional[str], typer.Option(
    "--log-llm", envvar="APIGEN_LOG_LLM", metavar="FILE", rich_help_panel=_LLM_PANEL,
    help="Append every exchange (row key, model, messages, reply, latency, tokens, attempts) to FILE as JSONL.")]

# Parameter name of each option -> the setting it feeds.
LLM_OPTIONS = {
    "base_url": "base_url", "model": "model", "api_key_env": "api_key_env", "temperature": "temperature",
    "max_tokens": "max_tokens", "top_p": "top_p", "seed": "seed", "option": "options", "concurrency": "concurrency",
    "rpm": "rpm", "tpm": "tpm", "max_attempts": "max_attempts", "max_retry_seconds": "max_retry_seconds",
    "timeout": "timeout", "json_mode": "json_mode", "cache": "cache", "log_llm": "log_llm",
}


def llm_config(ctx: typer.Context) -> Resolved:
    """Every setting with its source, from the command's LLM options (those typed on the command line)."""
    flags = {}
    for name, setting in LLM_OPTIONS.items():
        if name not in ctx.params:
            continue
        source = ctx.get_parameter_source(name)
        if source is not None and source.name != "COMMANDLINE":
            continue  # environment variables and defaults are read, and named, by config.py
        flags[setting] = ctx.params[name]
    return resolve(flags)


def llm_settings(ctx: typer.Context) -> LLMSettings:
    """The LLMSettings for a command that declares the LLM options above; raises ConfigError."""
    return llm_config(ctx).llm_settings()


config_app = typer.Typer(name="config", help="Show apigen's settings and where each comes from.", no_args_is_help=True)
app.add_typer(config_app)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per setting: name, value, source.")] = False,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    top_p: TopPOpt = None,
    seed: SeedOpt = None,
    option: LLMOptionOpt = None,
    concurrency: ConcurrencyOpt = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_attempts: MaxAttemptsOpt = None,
    max_retry_seconds: MaxRetrySecondsOpt = None,
    timeout: TimeoutOpt = None,
    json_mode: JsonModeOpt = None,
    cache: CacheOpt = None,
    log_llm: LogLLMOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Print each effective setting, its value and where it comes from; keys are never shown.

    Sources, highest first: a flag, an APIGEN_* variable, ./apigen.toml (or
    [tool.apigen] in ./pyproject.toml), the user file
    $XDG_CONFIG_HOME/apigen/config.toml, the default. The LLM flags are accepted
    too, to see what a command given them would use.

    Examples:

        apigen config show

        apigen config show --json | jq -c 'select(.source != "default")'

        APIGEN_MODEL=offline apigen config show --concurrency 64
    """
    messages = Messages(verbose=verbose)
    with _errors_to_exit_codes(messages):
        entries = describe(llm_config(ctx))
    if json_lines:
        sys.stdout.buffer.write(b"".join(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE) for entry in entries))
        sys.stdout.flush()
        return
    shown = [(entry["name"], _show_setting(entry["value"]), entry["source"]) for entry in entries]
    name_width = max(len(name) for name, _value, _source in shown)
    value_width = min(48, max(len(value) for _name, value, _source in shown))
    for name, value, source in shown:
        typer.echo(f"{name:<{name_width}}  {value:<{value_width}}  {source}")


def _show_setting(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, (dict, bool)):
        return json.dumps(value)
    return str(value)


def run() -> None:
    """Console-script entry point."""
    app()
