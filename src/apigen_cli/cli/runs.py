"""`apigen run`, the whole pipeline in one resumable process, and `apigen merge`, which joins the
outputs of a run split with `--shard K/N`."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated, Optional

import orjson
import typer

from ..console import Messages, StageBars
from ..errors import ConfigError
from ..rows.jsonl import write_jsonl
from ..rows.replacement import check_writable, write_whole
from ..run_settings import ExecutionSettings, execution_settings_from, run_settings_from
from ..wording import counted
from .batch import batch_settings, say_batches
from .conversations import (
    AttemptsOpt,
    BlueprintExamplesOpt,
    InitialStateOpt,
    KeepAllVerifiedOpt,
    MaxReplyCharsOpt,
    MaxRevisionsOpt,
    MaxSecondsOpt,
    MaxToolCallsOpt,
    MaxTurnsOpt,
    NegativeShareOpt,
    PersonasOpt,
    PolicyChecksOpt,
    PolicyOpt,
    SimToolsOpt,
    StopToolsOpt,
    UserApiKeyEnvOpt,
    UserBaseUrlOpt,
    UserModelOpt,
)
from .help import ENGINE_PANEL, GENERATION_PANEL, INPUT_OUTPUT_PANEL
from .main import EXIT_REJECTED, app, errors_to_exit_codes
from .options import (
    QuietOpt,
    RejectsOpt,
    StrictOpt,
    VerboseOpt,
    function_output,
    in_panel,
    resolved_settings,
    setting_options,
    with_options,
)
from .stages import library_file, library_from_stdin

MULTI_TURN_PANEL = "Multi-turn (--multi-turn)"

if TYPE_CHECKING:  # the pipeline and Ray's engine load when `apigen run` runs, not for every command
    from ..ray_engine import RayOptions


@app.command("run")
@with_options(setting_options("generation", "execution", "judge", "llm", "batch"))
def run_command(
    ctx: typer.Context,
    apis: Annotated[
        Optional[str],
        typer.Argument(
            metavar="APIS",
            help="The API library: JSONL (or a JSON array) of tool definitions, each with an optional `category`. "
            "With `--mcp`/`--mcp-url` it may be left out: the servers' tools are the library. "
            "With `--multi-turn`, the environment's library (ENV_LIBRARY, as `library from-python --class` writes it).",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="The verified dataset; a file makes the run resumable.",
            rich_help_panel=INPUT_OUTPUT_PANEL,
        ),
    ] = "-",
    rejects: Annotated[Optional[str], in_panel(RejectsOpt, INPUT_OUTPUT_PANEL)] = None,
    report: Annotated[
        Optional[str],
        typer.Option(
            "--report",
            metavar="FILE",
            help="Also write the report (Table 1, reasons, tokens; with --multi-turn APIGen-MT's table) as JSON.",
            rich_help_panel=INPUT_OUTPUT_PANEL,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Start afresh even if the output holds an earlier run.", rich_help_panel=INPUT_OUTPUT_PANEL
        ),
    ] = False,
    dedup: Annotated[
        bool,
        typer.Option(
            "--dedup",
            help="Also reject duplicates and near duplicates of kept rows (see `apigen dedup`).",
            rich_help_panel=INPUT_OUTPUT_PANEL,
        ),
    ] = False,
    only_executable: Annotated[
        bool,
        typer.Option(
            "--only-executable",
            rich_help_panel=GENERATION_PANEL,
            help="Sample only the APIs that something can execute (a function, an `http` or `mcp` binding); "
            "without it, such APIs are an error before any request.",
        ),
    ] = False,
    # --- past one machine, when one is too slow: the checks on a Ray cluster; the same rows as the local engine
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="local|ray",
            help="Where the checks run: this process, or a Ray cluster.",
            rich_help_panel=ENGINE_PANEL,
        ),
    ] = "local",
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            "--ray-address",
            metavar="ADDR",
            help="With `--engine ray`: the cluster (default: RAY_ADDRESS, else a local Ray).",
            rich_help_panel=ENGINE_PANEL,
        ),
    ] = None,
    ray_actors: Annotated[
        int,
        typer.Option(
            "--ray-actors",
            metavar="N",
            min=1,
            help="With `--engine ray`: LLM clients (actors) for generation, and for judging.",
            rich_help_panel=ENGINE_PANEL,
        ),
    ] = 1,
    # --- multi-turn: blueprints, then conversations acted out on a stateful environment (APIGen-MT)
    multi_turn: Annotated[
        bool,
        typer.Option(
            "--multi-turn",
            help="Make multi-turn conversations for the environment of APIS (ENV_LIBRARY): blueprints into "
            "`OUT.blueprints.jsonl`, then conversations into `-o`.",
            rich_help_panel=MULTI_TURN_PANEL,
        ),
    ] = False,
    initial_state: Annotated[Optional[str], in_panel(InitialStateOpt, MULTI_TURN_PANEL)] = None,
    policy: Annotated[Optional[str], in_panel(PolicyOpt, MULTI_TURN_PANEL)] = None,
    personas: Annotated[Optional[str], in_panel(PersonasOpt, MULTI_TURN_PANEL)] = None,
    blueprint_examples: Annotated[Optional[str], in_panel(BlueprintExamplesOpt, MULTI_TURN_PANEL)] = None,
    policy_checks: Annotated[Optional[str], in_panel(PolicyChecksOpt, MULTI_TURN_PANEL)] = None,
    max_revisions: Annotated[int, in_panel(MaxRevisionsOpt, MULTI_TURN_PANEL)] = 0,
    negative_share: Annotated[float, in_panel(NegativeShareOpt, MULTI_TURN_PANEL)] = 0.0,
    tools: Annotated[Optional[str], in_panel(SimToolsOpt, MULTI_TURN_PANEL)] = None,
    user_model: Annotated[Optional[str], in_panel(UserModelOpt, MULTI_TURN_PANEL)] = None,
    user_base_url: Annotated[Optional[str], in_panel(UserBaseUrlOpt, MULTI_TURN_PANEL)] = None,
    user_api_key_env: Annotated[Optional[str], in_panel(UserApiKeyEnvOpt, MULTI_TURN_PANEL)] = None,
    attempts: Annotated[int, in_panel(AttemptsOpt, MULTI_TURN_PANEL)] = 3,
    keep_all_verified: Annotated[bool, in_panel(KeepAllVerifiedOpt, MULTI_TURN_PANEL)] = False,
    max_turns: Annotated[int, in_panel(MaxTurnsOpt, MULTI_TURN_PANEL)] = 20,
    max_tool_calls: Annotated[int, in_panel(MaxToolCallsOpt, MULTI_TURN_PANEL)] = 10,
    max_reply_chars: Annotated[int, in_panel(MaxReplyCharsOpt, MULTI_TURN_PANEL)] = 8000,
    max_seconds: Annotated[float, in_panel(MaxSecondsOpt, MULTI_TURN_PANEL)] = 600.0,
    stop_tools: Annotated[Optional[list[str]], in_panel(StopToolsOpt, MULTI_TURN_PANEL)] = None,
    strict: Annotated[bool, in_panel(StrictOpt, INPUT_OUTPUT_PANEL)] = False,
    quiet: Annotated[bool, in_panel(QuietOpt, INPUT_OUTPUT_PANEL)] = False,
    verbose: Annotated[bool, in_panel(VerboseOpt, INPUT_OUTPUT_PANEL)] = False,
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

        apigen run --multi-turn store_tools.jsonl --functions sample_data/store --policy sample_data/store/policy.md -m offline -J offline -n 12 --seed 23 -o out/conversations.jsonl --rejects out/failed.jsonl
    """
    from .multi_turn_run import refuse_flags_of_the_other_mode, run_multi_turn

    if multi_turn:
        messages = Messages(quiet=quiet, verbose=verbose)
        with errors_to_exit_codes(messages):
            refuse_flags_of_the_other_mode(ctx, multi_turn=True)
        run_multi_turn(ctx, apis, output, rejects, overwrite)
        return
    with errors_to_exit_codes(Messages(quiet=quiet, verbose=verbose)):
        refuse_flags_of_the_other_mode(ctx, multi_turn=False)
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
        from ..pipeline import RunTarget, open_run

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
            from ..ray_engine import where_it_runs

            messages.info(where_it_runs(session.ray))
        plan = session.generation.settings.planned if session.generation is not None else None
        with StageBars(messages, session.stage_names, counters, plan) as bars:  # gone before the table is printed
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


# --- past one machine: `apigen merge` joins the outputs of `apigen run --shard K/N`, a run split over N machines ---


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
        from ..shards import merge_shards  # the shards' and the report's code: a `run` loads none of it

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
    from ..ray_engine import ENGINES, RayOptions

    if engine not in ENGINES:
        raise ConfigError(
            f"`--engine` is `{engine}`, not one of: {', '.join(ENGINES)}", hint="pass `--engine local` or `--engine ray`"
        )
    if engine == "local":
        if address is not None:
            raise ConfigError("`--ray-address` needs `--engine ray`", hint="add `--engine ray`, or leave out `--ray-address`")
        return None
    return RayOptions(address=address, actors=actors)


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
