"""The `apigen` command line: thin Typer commands over the library's stages.

Each command resolves its options, calls one library function, prints the
summary on stderr and maps the outcome to an exit code:
0 ran to the end, 1 rejections under ``--strict``, 2 could not run, 130 interrupted.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import random
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar, get_type_hints

import orjson
import typer

from .checkpoint import fingerprint
from .config import LLMSettings, Resolved, describe, resolve
from .console import Messages, StageBars
from .errors import ApigenError, ConfigError
from .execution.calls import ExecutorOptions, HttpOptions
from .execution.executor import Executor
from .llm.chat import ChatService
from .llm.service import LLMClient, open_chat_service, usage_lines
from .pipeline import STAGE_NAMES, PipelineParts, RunTarget, run_job
from .report import report_from_files
from .rows.routing import StageSummary
from .rows.runner import Destinations, Stage, run_stage, write_rows
from .stages.exec_check import ExecPolicy
from .stages.exec_check import exec_check as exec_check_rows
from .stages.format_check import format_check as format_check_rows
from .stages.generate import Generation, prepare_generation
from .stages.generate import generate as generate_rows
from .stages.prompts import load_prompts
from .stages.sampling import GenerationSettings, parse_range, parse_styles
from .stages.semantic_check import JudgeSettings
from .stages.semantic_check import semantic_check as semantic_check_rows
from .version import __version__

if TYPE_CHECKING:  # the batch module (httpx) loads only when `--batch` or `batch ...` is asked
    from .llm.batch import BatchBackend, BatchEntry, BatchSettings

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
    Optional[str],
    typer.Option("--rejects", metavar="FILE", help="Write rejected rows, with `rejected_by` and `reason`, to FILE."),
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

F = TypeVar("F", bound=Callable[..., Any])
OptionGroup = Mapping[str, tuple[Any, Any]]  # parameter name -> (Annotated option, default)


def _with_options(*groups: OptionGroup) -> Callable[[F], F]:
    """Give a command a group of options defined once; it reads them from ``ctx.params``.

    Typer builds a command's options from its signature, so the groups are
    appended to the signature (as keyword-only parameters) instead of being
    written out again in every command that takes them.
    """

    def decorate(command: F) -> F:
        signature = inspect.signature(command)
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for group in groups
            for name, (annotation, default) in group.items()
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for parameter in added:
                kwargs.pop(parameter.name, None)
            return command(*args, **kwargs)

        hints = get_type_hints(command, include_extras=True)  # the command's own annotations, evaluated
        own = [
            parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
            for parameter in signature.parameters.values()
        ]
        wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**hints, **{parameter.name: parameter.annotation for parameter in added}}
        return wrapper  # type: ignore[return-value]

    return decorate


STAGE_IO_GROUP: OptionGroup = {
    "input": (InputArg, "-"),
    "output": (OutputOpt, "-"),
    "rejects": (RejectsOpt, None),
    "keep_rejected": (KeepRejectedOpt, False),
    "strict": (StrictOpt, False),
    "skip_bad_lines": (SkipBadLinesOpt, False),
    "quiet": (QuietOpt, False),
    "verbose": (VerboseOpt, False),
}


def _destinations(params: Mapping[str, Any]) -> Destinations:
    """Where a stage command reads and writes, from its STAGE_IO_GROUP options."""
    return Destinations(params["input"], params["output"], params["rejects"], params["keep_rejected"], params["skip_bad_lines"])


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
        messages.error(
            f"unexpected {type(error).__name__}: {error}", "rerun with `--verbose` to see the traceback, and report it"
        )
        raise typer.Exit(EXIT_ERROR) from None


def _finish(messages: Messages, summary: StageSummary, strict: bool) -> None:
    if summary.dropped:
        messages.info(
            f"{summary.dropped} rejected rows were dropped: pass `--rejects FILE` to keep them apart, "
            "or `--keep-rejected` to keep them in the output"
        )
    messages.info(summary.line())
    if strict and summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


@dataclass
class _StageRun:
    """What a stage command runs: the stage, how its progress shows, what it says at the end."""

    stage: Stage
    wrap: Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]] | None = None
    after: Callable[[], None] | None = None


def _run_stage_command(command: str, params: Mapping[str, Any], setup: Callable[[Messages, ExitStack], _StageRun]) -> None:
    """Run one stage command from its STAGE_IO_GROUP options: set up, read, check, route, summarise, exit.

    ``setup`` builds the stage inside the error handling, so a bad setting is an
    `error:` line with a hint; resources it opens go on the ExitStack.
    """
    messages = Messages(quiet=params["quiet"], verbose=params["verbose"])
    where = _destinations(params)
    with _errors_to_exit_codes(messages), ExitStack() as resources:
        where.validate()  # a bad combination of flags is reported before workers or clients start
        run = setup(messages, resources)
        messages.waiting_for_stdin(where.input)
        summary = run_stage(command, run.stage, where, wrap=run.wrap or (lambda rows: messages.progress(rows, command)))
        if run.after is not None:
            run.after()
    _finish(messages, summary, params["strict"])


@app.command("format-check")
@_with_options(STAGE_IO_GROUP)
def format_check(ctx: typer.Context) -> None:
    """Check that each row's calls parse, name offered tools and fit their parameters.

    Rows holding the model's raw text in `raw_output` are parsed first (a code
    fence or prose around the JSON is fine); a list of pairs gives one row each.

    Examples:

        apigen format-check rows.jsonl -o checked.jsonl --rejects rejected.jsonl

        cat rows.jsonl | apigen format-check --strict > checked.jsonl

        apigen format-check xlam_function_calling_60k.json --keep-rejected | jq .reason
    """
    _run_stage_command("format-check", ctx.params, lambda messages, resources: _StageRun(format_check_rows))


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
    from .stages.export import NoteCollector, export_file

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
@_with_options(STAGE_IO_GROUP)
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

        apigen format-check rows.jsonl | apigen dedup | apigen export --format openai > train.jsonl
    """
    from .stages.dedup import dedup as dedup_rows

    _run_stage_command(
        "dedup", ctx.params, lambda messages, resources: _StageRun(lambda rows: dedup_rows(rows, threshold=threshold, near=near))
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
    from .stages.negatives import NegativesSummary, check_rate
    from .stages.negatives import negatives as negative_rows

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


def _exec_group(timeout_flag: str) -> OptionGroup:
    """The execution options; ``run`` names the call timeout `--exec-timeout`, as `--timeout` is the LLM's there."""
    return {
        "functions": (
            Annotated[
                Optional[str],
                typer.Option(
                    "--functions",
                    metavar="PATH",
                    help="Python library of the tools: a .py file, a folder of .py files, or an importable module. "
                    "May be omitted when every tool has an `http` binding.",
                ),
            ],
            None,
        ),
        "workers": (
            Annotated[
                Optional[int],
                typer.Option(
                    "--workers", min=1, metavar="N", help="Worker processes for Python functions.  [default: CPU count]"
                ),
            ],
            None,
        ),
        "call_timeout": (
            Annotated[
                float,
                typer.Option(
                    timeout_flag, min=0.001, metavar="SECONDS", help="Time limit of one Python call; past it, the row fails."
                ),
            ],
            10.0,
        ),
        "memory_mb": (
            Annotated[
                int,
                typer.Option("--memory-mb", min=0, metavar="MB", help="Address-space limit of each worker process; 0 for none."),
            ],
            2048,
        ),
        "max_result_chars": (
            Annotated[
                int,
                typer.Option("--max-result-chars", min=1, metavar="N", help="Cut each recorded result to about N characters."),
            ],
            4000,
        ),
        "empty_result": (
            Annotated[
                str,
                typer.Option(
                    "--empty-result",
                    metavar="pass|fail",
                    callback=_pass_or_fail,
                    help='Whether a result of null, [], {} or "" passes.',
                ),
            ],
            "pass",
        ),
        "error_result": (
            Annotated[
                str,
                typer.Option(
                    "--error-result",
                    metavar="pass|fail",
                    callback=_pass_or_fail,
                    help='Whether a result that is an error payload ({"error": ...}, "Error: ...") passes.',
                ),
            ],
            "fail",
        ),
        "pass_env": (
            Annotated[
                Optional[list[str]],
                typer.Option(
                    "--pass-env",
                    metavar="NAME",
                    help="Pass this environment variable (a glob such as `AWS_*` works) to the workers although its name looks "
                    "secret (*KEY*, *TOKEN*, *SECRET*, *PASSWORD*, APIGEN_*, OPENAI_*). Repeatable.",
                ),
            ],
            None,
        ),
        "http_timeout": (
            Annotated[
                float, typer.Option("--http-timeout", min=0.001, metavar="SECONDS", help="Time limit of one HTTP attempt.")
            ],
            10.0,
        ),
        "http_concurrency": (
            Annotated[int, typer.Option("--http-concurrency", min=1, metavar="N", help="HTTP calls in flight at once.")],
            8,
        ),
        "http_retries": (
            Annotated[
                int,
                typer.Option(
                    "--http-retries", min=0, metavar="N", help="Retries of an HTTP call on a transport error, 408, 429 or 5xx."
                ),
            ],
            2,
        ),
    }


def _executor(params: Mapping[str, Any], messages: Messages) -> tuple[Executor, ExecPolicy]:
    """The executor and policy the exec options ask for (not started)."""
    options = ExecutorOptions(
        workers=params["workers"],
        timeout=params["call_timeout"],
        memory_mb=params["memory_mb"],
        max_result_chars=params["max_result_chars"],
        pass_env=tuple(params["pass_env"] or ()),
        on_output=(lambda line: messages.info(f"function output: {line}")) if messages.verbose else None,
    )
    http = HttpOptions(timeout=params["http_timeout"], concurrency=params["http_concurrency"], retries=params["http_retries"])
    policy = ExecPolicy(fail_on_empty=params["empty_result"] == "fail", fail_on_error_result=params["error_result"] == "fail")
    return Executor(params["functions"], options, http), policy


@app.command("exec-check")
@_with_options(STAGE_IO_GROUP, _exec_group("--timeout"))
def exec_check(ctx: typer.Context) -> None:
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

    def setup(messages: Messages, resources: ExitStack) -> _StageRun:
        executor, policy = _executor(ctx.params, messages)
        resources.callback(executor.close)
        executor.start()
        return _StageRun(lambda rows: exec_check_rows(rows, executor, policy))

    _run_stage_command("exec-check", ctx.params, setup)


# --- LLM options, shared by the stages that ask a model (generate, semantic-check) -----
# A command takes `ctx: typer.Context` and these options under these parameter names,
# then calls `llm_settings(ctx)`: flags win over APIGEN_* variables, which win over
# apigen.toml / [tool.apigen], the user config file and the defaults (see config.py).
_LLM_PANEL = "LLM endpoint and requests"

BaseUrlOpt = Annotated[
    Optional[str],
    typer.Option(
        "--base-url",
        envvar="APIGEN_BASE_URL",
        metavar="URL",
        rich_help_panel=_LLM_PANEL,
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.",
    ),
]
ModelOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--model",
        "-m",
        envvar="APIGEN_MODEL",
        metavar="NAME",
        rich_help_panel=_LLM_PANEL,
        help="Model to ask; repeat for several. `offline` is the built-in backend (demos, tests).",
    ),
]
ApiKeyEnvOpt = Annotated[
    Optional[str],
    typer.Option(
        "--api-key-env",
        envvar="APIGEN_API_KEY_ENV",
        metavar="VAR",
        rich_help_panel=_LLM_PANEL,
        help="Environment variable holding the API key (default: APIGEN_API_KEY, else OPENAI_API_KEY).",
    ),
]
TemperatureOpt = Annotated[
    Optional[float],
    typer.Option("--temperature", envvar="APIGEN_TEMPERATURE", rich_help_panel=_LLM_PANEL, help="Sampling temperature."),
]
MaxTokensOpt = Annotated[
    Optional[int],
    typer.Option("--max-tokens", envvar="APIGEN_MAX_TOKENS", rich_help_panel=_LLM_PANEL, help="Most tokens per reply."),
]
TopPOpt = Annotated[
    Optional[float], typer.Option("--top-p", envvar="APIGEN_TOP_P", rich_help_panel=_LLM_PANEL, help="Nucleus sampling mass.")
]
SeedOpt = Annotated[
    Optional[int],
    typer.Option(
        "--seed", envvar="APIGEN_SEED", rich_help_panel=_LLM_PANEL, help="Seed sent to the provider; makes `offline` repeatable."
    ),
]
LLMOptionOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--option",
        "-O",
        metavar="KEY=VALUE",
        rich_help_panel=_LLM_PANEL,
        help="Any other provider parameter, VALUE read as JSON when it parses (`-O frequency_penalty=0.5`). Repeatable.",
    ),
]
ConcurrencyOpt = Annotated[
    Optional[int],
    typer.Option(
        "--concurrency", envvar="APIGEN_CONCURRENCY", rich_help_panel=_LLM_PANEL, help="Requests in flight at most [default: 16]."
    ),
]
RpmOpt = Annotated[
    Optional[int], typer.Option("--rpm", envvar="APIGEN_RPM", rich_help_panel=_LLM_PANEL, help="Requests per minute at most.")
]
TpmOpt = Annotated[
    Optional[int], typer.Option("--tpm", envvar="APIGEN_TPM", rich_help_panel=_LLM_PANEL, help="Tokens per minute at most.")
]
MaxAttemptsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--max-attempts",
        envvar="APIGEN_MAX_ATTEMPTS",
        rich_help_panel=_LLM_PANEL,
        help="Attempts per request, the first included [default: 6].",
    ),
]
MaxRetrySecondsOpt = Annotated[
    Optional[float],
    typer.Option(
        "--max-retry-seconds",
        envvar="APIGEN_MAX_RETRY_SECONDS",
        rich_help_panel=_LLM_PANEL,
        help="Most seconds spent retrying one request [default: 120].",
    ),
]
TimeoutOpt = Annotated[
    Optional[float],
    typer.Option(
        "--timeout",
        envvar="APIGEN_TIMEOUT",
        rich_help_panel=_LLM_PANEL,
        help="Seconds to wait for a reply, per attempt [default: 120].",
    ),
]
JsonModeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--json-mode",
        envvar="APIGEN_JSON_MODE",
        metavar="schema|object|off",
        rich_help_panel=_LLM_PANEL,
        help="Structured output: a JSON Schema, any JSON object, or nothing [default: schema].",
    ),
]
CacheOpt = Annotated[
    Optional[str],
    typer.Option(
        "--cache",
        envvar="APIGEN_CACHE",
        metavar="DIR",
        rich_help_panel=_LLM_PANEL,
        help="Keep successful replies in DIR (SQLite) and reuse them: a rerun sends no request twice.",
    ),
]
LogLLMOpt = Annotated[
    Optional[str],
    typer.Option(
        "--log-llm",
        envvar="APIGEN_LOG_LLM",
        metavar="FILE",
        rich_help_panel=_LLM_PANEL,
        help="Append every exchange (row key, model, messages, reply, latency, tokens, attempts) to FILE as JSONL.",
    ),
]

LLM_GROUP: OptionGroup = {
    "base_url": (BaseUrlOpt, None),
    "model": (ModelOpt, None),
    "api_key_env": (ApiKeyEnvOpt, None),
    "temperature": (TemperatureOpt, None),
    "max_tokens": (MaxTokensOpt, None),
    "top_p": (TopPOpt, None),
    "seed": (SeedOpt, None),
    "option": (LLMOptionOpt, None),
    "concurrency": (ConcurrencyOpt, None),
    "rpm": (RpmOpt, None),
    "tpm": (TpmOpt, None),
    "max_attempts": (MaxAttemptsOpt, None),
    "max_retry_seconds": (MaxRetrySecondsOpt, None),
    "timeout": (TimeoutOpt, None),
    "json_mode": (JsonModeOpt, None),
    "cache": (CacheOpt, None),
    "log_llm": (LogLLMOpt, None),
}

# Parameter name of each option -> the setting it feeds.
LLM_OPTIONS = {
    "base_url": "base_url",
    "model": "model",
    "api_key_env": "api_key_env",
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "top_p": "top_p",
    "seed": "seed",
    "option": "options",
    "concurrency": "concurrency",
    "rpm": "rpm",
    "tpm": "tpm",
    "max_attempts": "max_attempts",
    "max_retry_seconds": "max_retry_seconds",
    "timeout": "timeout",
    "json_mode": "json_mode",
    "cache": "cache",
    "log_llm": "log_llm",
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
@_with_options(LLM_GROUP)
def config_show(
    ctx: typer.Context,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per setting: name, value, source.")] = False,
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


# --- the LLM stages and the whole pipeline --------------------------------------------

ApisArg = Annotated[
    str,
    typer.Argument(
        metavar="APIS", help="The API library: JSONL (or a JSON array) of tool definitions, each with an optional `category`."
    ),
]
JudgeModelOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--judge-model",
        "-J",
        envvar="APIGEN_JUDGE_MODEL",
        metavar="NAME",
        help="The judge; repeat for a committee that decides by majority. `offline` is the built-in rule judge.",
    ),
]
GENERATION_GROUP: OptionGroup = {
    "count": (
        Annotated[
            int, typer.Option("--count", "-n", min=1, help="Rows wanted (requests = count / pairs per prompt, rounded up).")
        ],
        100,
    ),
    "pairs_per_prompt": (
        Annotated[
            int, typer.Option("--pairs-per-prompt", min=1, metavar="K", help="Query/answer pairs the model writes per request.")
        ],
        3,
    ),
    "styles": (
        Annotated[str, typer.Option("--styles", metavar="STYLE=WEIGHT,...", help="Query styles and their weights.")],
        "simple=0.4,multiple=0.2,parallel=0.2,parallel_multiple=0.2",
    ),
    "apis_per_prompt": (
        Annotated[
            str,
            typer.Option(
                "--apis-per-prompt",
                metavar="MIN-MAX",
                help="APIs of one category offered in a multiple or parallel-multiple request.",
            ),
        ],
        "2-4",
    ),
    "examples": (
        Annotated[
            Optional[str],
            typer.Option("--examples", metavar="FILE", help="Seed rows (xlam or apigen rows) for the few-shot examples."),
        ],
        None,
    ),
    "examples_per_prompt": (
        Annotated[
            str,
            typer.Option(
                "--examples-per-prompt", metavar="MIN-MAX", help="Few-shot examples per request, same style and category first."
            ),
        ],
        "1-3",
    ),
    "prompts": (
        Annotated[
            Optional[str],
            typer.Option(
                "--prompts",
                metavar="DIR",
                help="A folder of prompt templates replacing the built-in ones (see prompts/README.md).",
            ),
        ],
        None,
    ),
}
JUDGE_GROUP: OptionGroup = {
    "judge_model": (JudgeModelOpt, None),
    "include_failed": (
        Annotated[bool, typer.Option("--include-failed", help="Judge rows that failed execution too (they stay rejected).")],
        False,
    ),
    "judge_result_chars": (
        Annotated[
            int,
            typer.Option(
                "--judge-result-chars", min=1, metavar="N", help="Cut each execution result shown to the judge to N characters."
            ),
        ],
        2000,
    ),
    "max_reasks": (
        Annotated[
            int,
            typer.Option(
                "--max-reasks", min=0, metavar="N", help="Times an unreadable verdict is asked again before the row is rejected."
            ),
        ],
        2,
    ),
}


# --- batch (`--batch`, `--batch-dir`): a stage's requests as provider batches (llm/batch.py) ---
_BATCH_PANEL = "Batch (half price, within 24 hours)"
BATCH_GROUP: OptionGroup = {
    "batch": (
        Annotated[
            bool,
            typer.Option(
                "--batch",
                rich_help_panel=_BATCH_PANEL,
                help="Send the LLM requests through the provider's batch API (needs `-o FILE`; a rerun picks the batches up).",
            ),
        ],
        False,
    ),
    "batch_dir": (
        Annotated[
            Optional[str],
            typer.Option(
                "--batch-dir",
                metavar="DIR",
                rich_help_panel=_BATCH_PANEL,
                help="Self-hosted: write DIR/requests.jsonl for `vllm run-batch` and stop; rerun once DIR/results.jsonl is there.",
            ),
        ],
        None,
    ),
    "batch_max_requests": (
        Annotated[
            int,
            typer.Option(
                "--batch-max-requests",
                envvar="APIGEN_BATCH_MAX_REQUESTS",
                min=1,
                metavar="N",
                rich_help_panel=_BATCH_PANEL,
                help="Most requests in one batch; more are split.",
            ),
        ],
        50_000,
    ),
    "batch_max_bytes": (
        Annotated[
            int,
            typer.Option(
                "--batch-max-bytes",
                envvar="APIGEN_BATCH_MAX_BYTES",
                min=1,
                metavar="BYTES",
                rich_help_panel=_BATCH_PANEL,
                help="Largest batch input file; larger ones are split.",
            ),
        ],
        200_000_000,
    ),
    "batch_poll_seconds": (
        Annotated[
            float,
            typer.Option(
                "--batch-poll-seconds",
                envvar="APIGEN_BATCH_POLL_SECONDS",
                min=0,
                metavar="S",
                rich_help_panel=_BATCH_PANEL,
                help="First wait between status checks; it doubles up to 5 minutes.",
            ),
        ],
        10.0,
    ),
}
_BATCH_FLAGS = frozenset(BATCH_GROUP)


def _batch_settings(params: Mapping[str, Any], output: str) -> BatchSettings | None:
    """The BatchSettings the batch options ask for, or None without `--batch` / `--batch-dir`."""
    from .llm.batch import BatchSettings, state_path

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


def _say_batches(messages: Messages, chat: LLMClient) -> dict[str, dict[str, int]]:
    """Say which stages ran as batches, with their tokens; the same for the report."""
    from .llm.batch import summary, summary_lines

    backend = chat.batches
    if backend is None:
        return {}
    stages = summary(backend.state.batches)
    for line in summary_lines(stages):
        messages.info(line)
    return stages


# --- end batch ---


def _generation(params: Mapping[str, Any], apis: str, llm: LLMSettings) -> Generation:
    """The generation job the options describe; the seed is --seed, else a fresh random one."""
    seed = llm.seed if llm.seed is not None else random.SystemRandom().randrange(1, 2**31)
    settings = GenerationSettings(
        count=params["count"],
        pairs_per_prompt=params["pairs_per_prompt"],
        styles=tuple(parse_styles(params["styles"]).items()),
        apis_per_prompt=parse_range(params["apis_per_prompt"], "--apis-per-prompt", minimum=1),
        examples_per_prompt=parse_range(params["examples_per_prompt"], "--examples-per-prompt"),
        models=llm.models,
        seed=seed,
    )
    return prepare_generation(apis, settings, examples_path=params["examples"], prompts_dir=params["prompts"])


def _judge_settings(params: Mapping[str, Any], llm: LLMSettings) -> JudgeSettings:
    judges = tuple(params["judge_model"] or ())
    if not judges:
        raise ConfigError(
            "no judge model is given", hint="pass `--judge-model NAME` (repeat it for a committee), or `--judge-model offline`"
        )
    return JudgeSettings(
        judges=judges,
        include_failed=params["include_failed"],
        max_result_chars=params["judge_result_chars"],
        with_schema=llm.json_mode == "schema",
        max_reasks=params["max_reasks"],
    )


def _say_usage(messages: Messages, chat: ChatService) -> None:
    for line in usage_lines(chat.usage):
        messages.info(line)


@app.command("generate")
@_with_options(GENERATION_GROUP, LLM_GROUP, BATCH_GROUP)
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
    where = Destinations(apis, output, rejects)
    with _errors_to_exit_codes(messages), ExitStack() as stack:
        llm = llm_settings(ctx)
        job = _generation(ctx.params, apis, llm)
        if job.examples_left_out:
            messages.warning(f"{job.examples_left_out} rows of `--examples` fail the format check and are not used")
        batch = _batch_settings(ctx.params, output)
        chat = stack.enter_context(
            open_chat_service(llm, on_warning=messages.warning, batch=batch, on_batch_status=messages.info)
        )
        rows = generate_rows(job.plans(), chat, job.prompts, with_schema=llm.json_mode == "schema")
        summary = write_rows("generate", rows, where, wrap=lambda rows: messages.llm_progress(rows, "generate", chat.progress))
        summary.words = ("rows", "failed requests")
        messages.info(f"seed {job.settings.seed}: pass `--seed {job.settings.seed}` to sample the same requests again")
        _say_usage(messages, chat)
        _say_batches(messages, chat)
    _finish(messages, summary, strict)


@app.command("semantic-check")
@_with_options(STAGE_IO_GROUP, JUDGE_GROUP, LLM_GROUP, BATCH_GROUP)
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

    def setup(messages: Messages, resources: ExitStack) -> _StageRun:
        llm = llm_settings(ctx)
        judge = _judge_settings(ctx.params, llm)
        prompts = load_prompts(None)
        batch = _batch_settings(ctx.params, ctx.params["output"])
        chat = resources.enter_context(
            open_chat_service(
                replace(llm, models=judge.judges), on_warning=messages.warning, batch=batch, on_batch_status=messages.info
            )
        )

        def after() -> None:
            _say_usage(messages, chat)
            _say_batches(messages, chat)

        return _StageRun(
            lambda rows: semantic_check_rows(rows, chat, prompts, judge),
            wrap=lambda rows: messages.llm_progress(rows, "semantic-check", chat.progress),
            after=after,
        )

    _run_stage_command("semantic-check", ctx.params, setup)


@contextmanager
def _open_report(path: str) -> Iterator[Any]:
    """Open `--report` before the run, so a bad path fails at once, not after hours of work."""
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        handle = open(path, "wb")  # noqa: SIM115 (closed below)
    except OSError as error:
        raise ConfigError(
            f"`--report` cannot write `{path}`: {error.strerror or error}", hint="give a writable file path"
        ) from None
    with handle:
        yield handle


# Flags that change how a run goes but not which rows it writes: a rerun may change them and still resume.
_NOT_DECIDING_ROWS = (
    frozenset({"quiet", "verbose", "overwrite", "report", "output", "rejects", "strict", "workers", "http_concurrency"})
    | _BATCH_FLAGS
)


@app.command("run")
@_with_options(GENERATION_GROUP, _exec_group("--exec-timeout"), JUDGE_GROUP, LLM_GROUP, BATCH_GROUP)
def run_command(
    ctx: typer.Context,
    apis: ApisArg,
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
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    with _errors_to_exit_codes(messages), ExitStack() as stack:
        llm = llm_settings(ctx)
        judge = _judge_settings(ctx.params, llm)
        Destinations(apis, output, rejects).validate()
        report_file = stack.enter_context(_open_report(report)) if report is not None else None
        job = _generation(ctx.params, apis, llm)
        digest = fingerprint(
            {key: value for key, value in ctx.params.items() if key not in _NOT_DECIDING_ROWS and key not in LLM_GROUP}
            | {"llm": repr(replace(llm, concurrency=0, rpm=None, tpm=None, cache_dir=None, log_path=None, reorder_window=None))},
            [apis, *(path for path in (ctx.params["examples"], ctx.params["functions"], ctx.params["prompts"]) if path)],
        )
        executor, policy = _executor(ctx.params, messages)
        stack.callback(executor.close)
        executor.start()
        batch = _batch_settings(ctx.params, output)
        if batch is not None and batch.state_file and overwrite and os.path.exists(batch.state_file):
            os.remove(batch.state_file)  # afresh means new batches too
        chat = stack.enter_context(
            open_chat_service(
                replace(llm, models=tuple(dict.fromkeys(llm.models + judge.judges))),
                on_warning=messages.warning,
                batch=batch,
                on_batch_status=messages.info,
            )
        )
        parts = PipelineParts(chat, job.prompts, executor, policy, judge, with_schema=llm.json_mode == "schema")
        names = [*STAGE_NAMES, "dedup"] if dedup else list(STAGE_NAMES)
        bars = stack.enter_context(StageBars(messages, names, chat.progress))
        outcome = run_job(
            job,
            parts,
            RunTarget(output, rejects, overwrite),
            settings_digest=digest,
            observe=bars.observe,
            dedup={"threshold": 0.8, "near": True} if dedup else None,
        )
        if outcome.already_complete:
            messages.info(f"`{output}` already holds this run, complete; pass `--overwrite` to run it again")
        if outcome.rejects_dropped:
            messages.info(f"{outcome.rejects_dropped} rejected rows were dropped: pass `--rejects FILE` to keep them")
        if outcome.requests_skipped and not outcome.already_complete:
            messages.info(f"resumed: {outcome.requests_skipped} of {outcome.requests_total} requests were already done")
        for line in outcome.report.lines():
            messages.info(line)
        batches = _say_batches(messages, chat)
        if report_file is not None:
            extra = {"seed": outcome.seed} | ({"batches": batches} if batches else {})
            report_file.write(orjson.dumps(outcome.report.as_dict() | extra, option=orjson.OPT_INDENT_2))
            report_file.close()
        messages.info(f"seed {outcome.seed}")
    total = outcome.report.total()
    messages.info(f"run: {total.verified} verified of {total.requested} requested ({total.pass_rate:.1%})")
    if strict and total.verified < total.requested:
        raise typer.Exit(EXIT_REJECTED)


# --- batch status / batch cancel: the batches a `--batch` command left beside its output ---

batch_app = typer.Typer(name="batch", help="Show or cancel the provider batches of a `--batch` run.", no_args_is_help=True)
app.add_typer(batch_app)

BatchOutputArg = Annotated[str, typer.Argument(metavar="OUTPUT", help="The `-o FILE` of the command that ran with `--batch`.")]
BatchBaseUrlOpt = Annotated[
    Optional[str],
    typer.Option("--base-url", envvar="APIGEN_BASE_URL", metavar="URL", help="The endpoint [default: the one the run used]."),
]


def _batch_backend(output: str, base_url: str | None, api_key_env: str | None) -> BatchBackend:
    """The batch backend over the state beside ``output``; ConfigError when there is none."""
    from .llm.batch import BatchBackend, BatchSettings, BatchState, state_path
    from .llm.http_backend import normalise_base_url

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
    api_key_env: ApiKeyEnvOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the batches of a `--batch` run: id, stage, model, status, requests done and failed.

    Examples:

        apigen batch status data.jsonl

        apigen batch status data.jsonl --no-refresh --json | jq -r .status
    """
    messages = Messages(verbose=verbose)
    with _errors_to_exit_codes(messages):
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
    api_key_env: ApiKeyEnvOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Cancel the unfinished batches of a `--batch` run; a rerun then rejects their requests as `llm_error`.

    Examples:

        apigen batch cancel data.jsonl

        apigen batch cancel data.jsonl --base-url https://api.openai.com/v1
    """
    messages = Messages(verbose=verbose)
    with _errors_to_exit_codes(messages):
        backend = _batch_backend(output, base_url, api_key_env)
        try:
            cancelled = backend.cancel()
        finally:
            backend.close()
    for entry in cancelled:
        typer.echo(_batch_line(entry))
    messages.info(f"batch cancel: {len(cancelled)} batches cancelled")


# --- end batch ---


def run() -> None:
    """Console-script entry point."""
    app()
