"""The stage commands: generate, format-check, exec-check, semantic-check.

Each reads rows, runs one stage of the library over them, routes them to the output or the
rejects and ends with a summary; `dedup` runs the same way (`run_stage_command`).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import LLMSettings, Resolved
from ..console import Messages
from ..errors import ConfigError, InputError
from ..llm.chat import ChatService, LLMProgress
from ..llm.service import open_chat_service, usage_lines
from ..rows.records import MISSING_PAIR
from ..rows.replacement import write_whole
from ..rows.routing import StageSummary
from ..rows.runner import Destinations, Stage, run_stage, write_rows
from ..run_settings import check_shard, chosen_seed, generation_settings_from, grow_settings_from, judge_settings_from
from ..stages.example_pool import generate_growing
from ..stages.exec_check import CallTally
from ..stages.exec_check import exec_check as exec_check_rows
from ..stages.format_check import format_check as format_check_rows
from ..stages.generate import Generation, prepare_generation
from ..stages.generate import generate as generate_rows
from ..stages.prompts import load_prompts
from ..stages.semantic_check import semantic_check as semantic_check_rows
from ..wording import counted
from .batch import batch_settings, say_batches
from .main import EXIT_REJECTED, app, errors_to_exit_codes
from .options import (
    STAGE_IO_GROUP,
    OutputOpt,
    QuietOpt,
    RejectsOpt,
    StrictOpt,
    VerboseOpt,
    destinations,
    executor_and_policy,
    resolved_settings,
    setting_options,
    with_options,
)


def finish_stage(messages: Messages, summary: StageSummary, strict: bool, *, keeps_rejected: bool = True) -> None:
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
    """What a stage command runs: the stage, the LLM counters its progress line shows, what it says at the end."""

    stage: Stage
    counters: LLMProgress | None = None
    after: Callable[[], None] | None = None


class RowsTaken:
    """Counts the rows a stage takes from its input: its progress, when it writes more or fewer than it reads."""

    def __init__(self) -> None:
        self.count = 0

    def counting(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.count += 1
            yield row


def rows_in_file(path: str) -> int | None:
    """The rows of a JSONL file, counted ahead for a progress bar's total; None when that cannot be known
    without reading the rows themselves (standard input, a pipe, a JSON array file, an unreadable file)."""
    try:
        if path == "-" or not stat.S_ISREG(os.stat(path).st_mode):
            return None
        count, first, last = 0, b"", b"\n"
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                first = first or chunk.lstrip()[:1]
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    if first == b"[":
        return None
    return count + (last != b"\n")  # a last line without its newline


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

        taken = RowsTaken()  # the progress counts rows read: a stage may write more rows than it reads, or fewer
        total = rows_in_file(where.input) if messages.interactive else None
        summary = run_stage(
            command,
            lambda rows: run.stage(taken.counting(rows)),
            where,
            wrap=lambda rows: messages.progress(rows, command, total=total, taken=lambda: taken.count, counters=run.counters),
            check=check,
        )
    finish_stage(messages, summary, params["strict"])


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


# --- exec-check: Python functions run in the worker pool, REST calls load httpx only when a
# row's tool has an `http` binding (see execution/executor.py).


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


# --- the LLM stages: generate and semantic-check -------------------------------------

ApisArg = Annotated[
    str,
    typer.Argument(
        metavar="APIS", help="The API library: JSONL (or a JSON array) of tool definitions, each with an optional `category`."
    ),
]


def library_file(beside: str | None, suffix: str, resources: ExitStack) -> str:
    """Where a library that `run` makes itself (from a pipe, from MCP servers) is kept.

    Beside a file output (`OUTPUT.<suffix>`), so that the same command resumes and the
    fingerprint covers it; else a temporary file, removed when the command ends.
    """
    if beside is not None and beside != "-":
        folder = os.path.dirname(beside)
        if folder:
            os.makedirs(folder, exist_ok=True)
        path = f"{beside}.{suffix}"
        if os.path.islink(path):  # apigen's own name: a link there was planted, and is not written through
            os.unlink(path)
        elif os.path.lexists(path) and not os.path.isfile(path):  # a FIFO would hold the write for ever
            raise ConfigError(
                f"`{path}`, where the run keeps its API library, is not a regular file",
                hint="remove it, or pass another `--output`",
            )
        return path
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
        where = Destinations(apis, output, rejects, input_flag="APIS")
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
        plan = job.settings.planned
        summary = write_rows(
            "generate", rows, where, wrap=lambda rows: messages.progress(rows, "generate", counters=chat.progress, plan=plan)
        )
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
    finish_stage(messages, summary, strict, keeps_rejected=False)


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
            counters=chat.progress,
            after=after,
        )

    run_stage_command("semantic-check", ctx.params, setup)
