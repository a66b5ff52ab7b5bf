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
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Annotated, Any, Optional, TypeVar, get_type_hints

import orjson
import typer

from .config import GROUPS, SETTINGS, LLMSettings, Resolved, describe, resolve, settings_of, show_setting_value
from .console import Messages, StageBars
from .errors import ApigenError, ConfigError
from .execution.executor import Executor
from .llm.chat import ChatService
from .llm.service import open_chat_service, usage_lines
from .pipeline import RunTarget, open_run
from .ray_engine import ENGINES, RayOptions
from .report import report_from_files
from .rows.routing import StageSummary
from .rows.runner import Destinations, Stage, run_stage, write_rows
from .run_settings import (
    check_shard,
    chosen_seed,
    execution_settings_from,
    generation_settings_from,
    judge_settings_from,
    run_settings_from,
)
from .shards import merge_shards
from .stages.dedup import dedup as dedup_rows
from .stages.exec_check import ExecPolicy
from .stages.exec_check import exec_check as exec_check_rows
from .stages.export import NoteCollector, RecordCheck, export_file
from .stages.format_check import format_check as format_check_rows
from .stages.generate import Generation, prepare_generation
from .stages.generate import generate as generate_rows
from .stages.negatives import NegativesSummary, check_rate
from .stages.negatives import negatives as negative_rows
from .stages.prompts import load_prompts
from .stages.semantic_check import semantic_check as semantic_check_rows
from .version import __version__

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


# --- settings: every option below is derived from its declaration in config.SETTINGS -----
# A flag wins over its APIGEN_* variable, which wins over apigen.toml / [tool.apigen],
# the user config file and the default. Typer hands the flag's text over as it was
# typed, so a bad value gets the same message whichever of these it came from.

_PANELS = {"llm": "LLM endpoint and requests", "generation": "Generation", "execution": "Execution", "judge": "Judge"}


def setting_options(*groups: str) -> OptionGroup:
    """The options of the settings in ``groups``, parameter named as the setting."""
    options: dict[str, tuple[Any, Any]] = {}
    for setting in settings_of(*groups):
        declarations = [setting.flag, *setting.aliases]
        kind: Any = Optional[str]
        if setting.kind in ("list", "options"):
            kind = Optional[list[str]]
        elif setting.kind == "bool":
            kind = Optional[bool]
            declarations[0] = f"{setting.flag}/--no-{setting.flag[2:]}"
        default = show_setting_value(setting, setting.default)
        shown = f"default: {_show_setting(default)}; " if default not in (None, (), [], {}) else ""
        option = typer.Option(
            *declarations,
            metavar=setting.metavar,
            rich_help_panel=_PANELS[setting.group],
            show_default=False,
            help=f"{setting.help} [{shown}env: {setting.env}]",
        )
        options[setting.name] = (Annotated[kind, option], None)
    return options


def _show_setting(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, (dict, bool)):
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def resolved_settings(ctx: typer.Context) -> Resolved:
    """Every setting with its source, the command's own flags (those typed on the command line) on top."""
    flags = {}
    for name in SETTINGS:
        if name not in ctx.params:
            continue
        source = ctx.get_parameter_source(name)
        if source is not None and source.name != "COMMANDLINE":
            continue
        flags[name] = ctx.params[name]
    return resolve(flags)


def llm_settings(ctx: typer.Context) -> LLMSettings:
    """The LLMSettings for a command that declares the LLM options; raises ConfigError."""
    return resolved_settings(ctx).llm_settings()


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
    skip_bad_lines: SkipBadLinesOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write verified rows as training data: xlam, OpenAI fine-tuning, chat messages for TRL, or ShareGPT.

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
    with _errors_to_exit_codes(messages):
        check: RecordCheck | None = None
        if render_check is not None:
            from .stages.chat_template import ChatTemplate, RenderCheck  # jinja2 loads only when a check is asked

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
        )
    if not quiet:
        for line in notes.lines():
            messages.warning(line)
    messages.info(summary.line())
    if check is not None:
        messages.info(check.line())


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


# --- exec-check: Python functions run in the worker pool, REST calls load httpx only when a
# row's tool has an `http` binding (see execution/executor.py).


def _function_output(messages: Messages) -> Callable[[str], None] | None:
    """With `--verbose`, what the user's functions print is shown on stderr."""
    return (lambda line: messages.info(f"function output: {line}")) if messages.verbose else None


def _executor(ctx: typer.Context, messages: Messages) -> tuple[Executor, ExecPolicy]:
    """The executor and policy the execution settings ask for (not started)."""
    execution = execution_settings_from(resolved_settings(ctx).values)
    options = replace(execution.options, on_output=_function_output(messages))
    return Executor(execution.functions, options, execution.http), execution.policy


@app.command("exec-check")
@_with_options(STAGE_IO_GROUP, setting_options("execution"))
def exec_check(ctx: typer.Context) -> None:
    """Execute every call of each row; keep the rows whose calls all succeed.

    Python functions run in reused worker processes, with a timeout per call and a
    memory limit; a crash, a hang or an exception rejects the row, not the run.
    Tools with an `http` binding are called over HTTP. Each row gets
    `execution_result` (one entry per call) and `keep_row_after_execution_check`.

    Examples:

        apigen exec-check checked.jsonl --functions sample_data/functions -o executed.jsonl --rejects failed.jsonl

        apigen format-check rows.jsonl | apigen exec-check --functions my_tools.py --exec-timeout 5 > executed.jsonl

        ITEMS_KEY=... apigen exec-check rest_rows.jsonl --http-concurrency 16 --strict
    """

    def setup(messages: Messages, resources: ExitStack) -> _StageRun:
        executor, policy = _executor(ctx, messages)
        resources.callback(executor.close)
        executor.start()
        return _StageRun(lambda rows: exec_check_rows(rows, executor, policy))

    _run_stage_command("exec-check", ctx.params, setup)


config_app = typer.Typer(name="config", help="Show apigen's settings and where each comes from.", no_args_is_help=True)
app.add_typer(config_app)


@config_app.command("show")
@_with_options(setting_options(*GROUPS))
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
    with _errors_to_exit_codes(messages):
        entries = describe(resolved_settings(ctx))
    if json_lines:
        sys.stdout.buffer.write(b"".join(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE) for entry in entries))
        sys.stdout.flush()
        return
    shown = [(entry["name"], _show_setting(entry["value"]), entry["source"]) for entry in entries]
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


def _generation(ctx: typer.Context, apis: str, resolved: Resolved, llm: LLMSettings) -> Generation:
    """The generation job the settings describe; the seed is --seed, else a fresh random one."""
    values = resolved.values
    check_shard(values["shard"], llm.seed)
    settings = replace(generation_settings_from(values, llm), seed=chosen_seed(llm.seed))
    return prepare_generation(apis, settings, examples_path=values["examples"], prompts_dir=values["prompts"])


def _say_usage(messages: Messages, chat: ChatService) -> None:
    for line in usage_lines(chat.usage):
        messages.info(line)


@app.command("generate")
@_with_options(setting_options("generation", "llm"))
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
        resolved = resolved_settings(ctx)
        llm = resolved.llm_settings()
        job = _generation(ctx, apis, resolved, llm)
        if job.examples_left_out:
            messages.warning(f"{job.examples_left_out} rows of `--examples` fail the format check and are not used")
        chat = stack.enter_context(open_chat_service(llm, on_warning=messages.warning))
        rows = generate_rows(job.plans(), chat, job.prompts, with_schema=llm.json_mode == "schema")
        summary = write_rows("generate", rows, where, wrap=lambda rows: messages.llm_progress(rows, "generate", chat.progress))
        summary.words = ("rows", "failed requests")
        messages.info(f"seed {job.settings.seed}: pass `--seed {job.settings.seed}` to sample the same requests again")
        _say_usage(messages, chat)
    _finish(messages, summary, strict)


@app.command("semantic-check")
@_with_options(STAGE_IO_GROUP, setting_options("judge", "llm"))
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
        chat = resources.enter_context(open_chat_service(replace(llm, models=judge.judges), on_warning=messages.warning))
        return _StageRun(
            lambda rows: semantic_check_rows(rows, chat, prompts, judge),
            wrap=lambda rows: messages.llm_progress(rows, "semantic-check", chat.progress),
            after=lambda: _say_usage(messages, chat),
        )

    _run_stage_command("semantic-check", ctx.params, setup)


@app.command("run")
@_with_options(setting_options("generation", "execution", "judge", "llm"))
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
    # --- past one machine (issue 15): the checks on a Ray cluster; the same rows as the local engine
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
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    with _errors_to_exit_codes(messages), ExitStack() as stack:
        resolved = resolved_settings(ctx)
        settings = run_settings_from(resolved.values, apis, resolved.llm_settings(), dedup=dedup)
        session = stack.enter_context(
            open_run(
                settings,
                RunTarget(output, rejects, overwrite),
                report=report,
                on_warning=messages.warning,
                on_function_output=_function_output(messages),
                ray=_ray_options(engine, ray_address, ray_actors),
            )
        )
        assert session.chat is not None
        bars = stack.enter_context(StageBars(messages, session.stage_names, session.chat.progress))
        outcome = session.execute(observe=bars.observe)
        if outcome.already_complete:
            messages.info(f"`{output}` already holds this run, complete; pass `--overwrite` to run it again")
        if outcome.rejects_dropped:
            messages.info(f"{outcome.rejects_dropped} rejected rows were dropped: pass `--rejects FILE` to keep them")
        if outcome.requests_skipped and not outcome.already_complete:
            messages.info(f"resumed: {outcome.requests_skipped} of {outcome.requests_total} requests were already done")
        for line in outcome.report.lines():
            messages.info(line)
        messages.info(f"seed {outcome.seed}")
    total = outcome.report.total()
    messages.info(f"run: {total.verified} verified of {total.requested} requested ({total.pass_rate:.1%})")
    if strict and total.verified < total.requested:
        raise typer.Exit(EXIT_REJECTED)


# --- past one machine: `apigen merge` joins the outputs of `apigen run --shard K/N` (issue 15) ----


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
    with _errors_to_exit_codes(messages):
        if not output or output == "-":
            raise ConfigError("`merge` writes a file, not standard output", hint="name the merged output file first")
        outcome = merge_shards(output, shard_outputs, rejects=rejects, overwrite=overwrite)
        if report is not None:
            try:
                with open(report, "wb") as handle:
                    handle.write(orjson.dumps(outcome.report.as_dict() | {"seed": outcome.seed}, option=orjson.OPT_INDENT_2))
            except OSError as error:
                raise ConfigError(
                    f"`--report` cannot write `{report}`: {error.strerror or error}", hint="give a writable file path"
                ) from None
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


def run() -> None:
    """Console-script entry point."""
    app()
