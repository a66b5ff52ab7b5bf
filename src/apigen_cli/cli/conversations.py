"""The multi-turn commands: conversations checked against the real state of a stateful environment."""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..checkpoint import fingerprint
from ..config import SETTINGS, LLMSettings
from ..console import Messages
from ..errors import ConfigError
from ..llm.chat import LLMProgress
from ..llm.service import LLMClient, import_http_backend_meanwhile, open_chat_service, usage_lines
from ..resumable import ResumableRun, Resumed, is_resumable, write_resumable
from ..rows.jsonl import STDIO, read_rows
from ..rows.records import Row
from ..rows.routing import StageSummary
from ..rows.runner import Destinations, Wrapper, refusing_api_definitions, write_rows
from ..run_settings import chosen_seed, execution_settings_from, judge_settings_from, plain_setting
from .main import app, errors_to_exit_codes
from .options import (
    STAGE_IO_GROUP,
    OutputOpt,
    QuietOpt,
    RejectsOpt,
    StrictOpt,
    VerboseOpt,
    destinations,
    executor_and_policy,
    function_output,
    resolved_settings,
    setting_options,
    with_options,
)
from .stages import StageRun, finish_stage, run_stage_command

if TYPE_CHECKING:  # the multi-turn modules load when a multi-turn command runs, not for every command
    from ..conversations.blueprint import BlueprintRun
    from ..conversations.blueprint_generation import BlueprintPlan
    from ..conversations.conversation_review import ConversationReview
    from ..conversations.simulation import Simulation, SimulationTally
    from ..execution.executor import Executor
    from ..execution.mcp_environment import McpEnvironment
    from ..execution.sessions import LiveEnvironment
    from ..stages.exec_check import ExecPolicy


def command_as_typed(ctx: typer.Context) -> str:
    """The command as the user typed it, for the errors of a missing environment (`run --multi-turn`, not `blueprint`)."""
    return "run --multi-turn" if ctx.params.get("multi_turn") else str(ctx.info_name)


def environment_functions(ctx: typer.Context, what_it_replays: str) -> str:
    """The `--functions` path of the environment's classes, which every multi-turn command needs.

    Without it the command cannot start: the error says what the command (``ctx``'s) would have
    run there (``what_it_replays``).
    """
    functions = resolved_settings(ctx).values.get("functions")
    if not functions:
        raise ConfigError(
            f"`{command_as_typed(ctx)}` {what_it_replays} on the environment's classes, and no `--functions` names them",
            hint="pass `--functions PATH`, the Python file or folder that defines the environment's classes",
        )
    return str(functions)


def environment_executor(
    ctx: typer.Context, messages: Messages, resources: ExitStack, what_it_replays: str
) -> tuple[Executor, ExecPolicy]:
    """The started executor of the environment's classes, closed with ``resources``, and the execution policy."""
    environment_functions(ctx, what_it_replays)
    executor, policy = executor_and_policy(ctx, messages)
    resources.callback(executor.close)
    executor.start()
    return executor, policy


StateToolOpt = Annotated[
    Optional[str],
    typer.Option(
        "--state-tool",
        metavar="NAME",
        help="With `--mcp COMMAND` as the environment: the server's tool (no arguments) whose answer is its state; "
        "without it, the state cannot be read and the gold's outputs are compared instead.",
    ),
]


def mcp_environment(ctx: typer.Context, state_tool: str | None, what_it_replays: str, at_once: int) -> McpEnvironment | None:
    """The MCP server `--mcp` names as the environment, when `--functions` is not given (not started); else None.

    ``what_it_replays`` says what the command runs on the environment, for the error without either;
    ``at_once``: the most servers running whole sessions (replays) at once."""
    execution = execution_settings_from(resolved_settings(ctx).values)
    if execution.functions and (execution.mcp or execution.mcp_url):
        raise ConfigError(
            "the environment is given twice: `--functions` (Python classes) and `--mcp`/`--mcp-url` (an MCP server)",
            hint="pass `--functions FILE_OR_FOLDER` or `--mcp COMMAND`, not both",
        )
    if execution.functions:
        if state_tool is not None:
            raise ConfigError(
                "`--state-tool` names an MCP server's tool, and the environment is `--functions`'s classes",
                hint="leave `--state-tool` out: a class's state is read from the class",
            )
        return None
    if not (execution.mcp or execution.mcp_url):
        raise ConfigError(
            f"`{command_as_typed(ctx)}` {what_it_replays} on an environment, and neither `--functions` nor `--mcp` names one",
            hint="pass `--functions PATH`, the Python file or folder that defines the environment's classes, "
            "or `--mcp COMMAND`, an MCP server started afresh for each conversation",
        )
    # MCP code, loaded only when `--mcp` gives the environment
    from ..execution.mcp_environment import McpEnvironment, McpEnvironmentOptions, environment_server

    options = execution.mcp_options()
    server = environment_server(options.servers)
    return McpEnvironment(McpEnvironmentOptions(replace(options, servers=(server,)), state_tool, at_once))


_CONVERSATION_JUDGE = ("judge_model", "judge_result_chars", "judge_max_tokens", "max_reasks")  # the committee's settings


def judge_options() -> dict[str, Any]:
    """The settings of a committee of judges (`-J`, repeatable): blueprint's review, the conversation judges."""
    return {name: option for name, option in setting_options("judge").items() if name in _CONVERSATION_JUDGE}


def conversation_review(
    ctx: typer.Context, messages: Messages, resources: ExitStack, seed: int | None = None
) -> tuple[ConversationReview, LLMClient] | None:
    """The judges `-J` names for kept conversations, and their service, open; None when no judge is given."""
    from ..conversations.conversation_review import ConversationReview

    resolved = resolved_settings(ctx)
    llm = resolved.llm_settings()
    judges = judge_settings_from({**resolved.values, "include_failed": False}, llm)
    if not judges.judges:
        return None
    chat = resources.enter_context(
        open_chat_service(
            replace(llm, models=judges.judges, seed=seed if seed is not None else llm.seed), on_warning=messages.warning
        )
    )
    return ConversationReview.of(chat, judges, resolved.values.get("prompts")), chat


@app.command("trajectory-check")
@with_options(
    STAGE_IO_GROUP,
    setting_options("execution"),
    judge_options(),
    {name: option for name, option in setting_options("llm").items() if name != "model"},
    {name: option for name, option in setting_options("generation").items() if name == "prompts"},
)
def trajectory_check(ctx: typer.Context, state_tool: StateToolOpt = None) -> None:
    """Replay each conversation on its environment; keep it only when the state and what it told the user are right.

    Each row names its environment (`"environment": {"ClassName": {initial state}}`,
    the classes coming from `--functions`), its chat `messages`, the gold `actions`
    and optional `outputs`. The gold actions and the conversation's own calls are
    replayed on fresh instances, in worker processes; the row is kept when both end
    in the same state, every output was told, and every tool message says what the
    environment says. A kept row gets per-call labels backed by state. With
    `--mcp COMMAND` instead of `--functions`, each replay gets a fresh server.
    With `-J NAME` (repeatable), judges read each kept conversation and vote.

    Examples:

        apigen trajectory-check sample_data/store/conversations.jsonl --functions sample_data/store -o verified.jsonl --rejects failed.jsonl

        apigen trajectory-check conversations.jsonl --functions my_env.py --exec-timeout 5 --keep-rejected | jq -c '{id, reason}'

        apigen trajectory-check sample_data/todo/conversations.jsonl --mcp 'python sample_data/todo/todo_server.py' --state-tool todo_state -J offline -o todo_checked.jsonl
    """

    def setup(messages: Messages, resources: ExitStack) -> StageRun:
        from ..conversations.conversation_review import judged
        from ..conversations.trajectory_check import trajectory_check as trajectory_check_rows

        execution = execution_settings_from(resolved_settings(ctx).values)
        at_once = execution.options.workers or os.cpu_count() or 1
        served = mcp_environment(ctx, state_tool, "replays each conversation", at_once)
        judges = conversation_review(ctx, messages, resources)
        check: Callable[[Iterable[Row]], Iterator[Row]]
        if served is not None:
            resources.callback(served.close)
            served.list_tools()  # a server that cannot start, or has no such state tool, stops the run before any row

            def check(rows: Iterable[Row]) -> Iterator[Row]:
                return trajectory_check_rows(rows, served, environment_required=False)
        else:
            executor, _policy = environment_executor(ctx, messages, resources, "replays each conversation")

            def check(rows: Iterable[Row]) -> Iterator[Row]:
                return trajectory_check_rows(rows, executor)

        if judges is None:
            return StageRun(check)
        review, chat = judges
        return StageRun(lambda rows: judged(check(rows), review), counters=chat.progress)

    run_stage_command("trajectory-check", ctx.params, setup)


# --- blueprint: tasks written by a model around the environment's tools, verified on its state

EnvLibraryArg = Annotated[
    str,
    typer.Argument(
        metavar="ENV_LIBRARY",
        help="The environment's API library, as `apigen library from-python FILE --class NAME` writes it (each tool names its `class`).",
    ),
]
InitialStateOpt = Annotated[
    Optional[str],
    typer.Option(
        "--initial-state",
        metavar="FILE",
        help="JSON object of class names to their initial state; without it, each class's own default state.",
    ),
]
PolicyOpt = Annotated[
    Optional[str], typer.Option("--policy", metavar="FILE", help="The policy the agent follows (markdown), shown to the model.")
]
PersonasOpt = Annotated[
    Optional[str],
    typer.Option(
        "--personas", metavar="FILE", help="Personas of users, one a line (or JSONL with `persona`); one is drawn per blueprint."
    ),
]
PolicyChecksOpt = Annotated[
    Optional[str],
    typer.Option(
        "--policy-checks",
        metavar="FILE.py",
        help="Python functions taking initial_state, actions, results, final_state and returning violations; run in workers.",
    ),
]
MaxRevisionsOpt = Annotated[
    int,
    typer.Option(
        "--max-revisions",
        min=0,
        metavar="N",
        help="Send a blueprint a check rejected back to the model with the critique, up to N times; every attempt is kept.",
    ),
]
NegativeShareOpt = Annotated[
    float,
    typer.Option(
        "--negative-share",
        min=0.0,
        max=1.0,
        metavar="F",
        help="Share of blueprints negative on purpose: a wish the policy forbids, or a detail the user lacks (no write).",
    ),
]
BlueprintExamplesOpt = Annotated[
    Optional[str],
    typer.Option(
        "--examples",
        metavar="FILE",
        help="Kept blueprints of an earlier run on this environment, two a request shown for their form.",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Start afresh even if the output holds an earlier run.")]
_BLUEPRINT_GENERATION = ("count", "max_tokens", "prompts")  # of the generation settings, the ones a blueprint uses
_BLUEPRINT_JUDGE = ("judge_model", "judge_result_chars", "judge_max_tokens", "max_reasks")  # the committee's


@app.command("blueprint")
@with_options(
    {name: option for name, option in setting_options("generation").items() if name in _BLUEPRINT_GENERATION},
    {name: option for name, option in setting_options("judge").items() if name in _BLUEPRINT_JUDGE},
    setting_options("llm", "execution"),
)
def blueprint(
    ctx: typer.Context,
    env_library: EnvLibraryArg,
    initial_state: InitialStateOpt = None,
    policy: PolicyOpt = None,
    personas: PersonasOpt = None,
    blueprint_examples: BlueprintExamplesOpt = None,
    policy_checks: PolicyChecksOpt = None,
    max_revisions: MaxRevisionsOpt = 0,
    negative_share: NegativeShareOpt = 0.0,
    output: OutputOpt = "-",
    rejects: RejectsOpt = None,
    overwrite: OverwriteOpt = False,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write task blueprints for a stateful environment and keep those whose actions prove right on its state.

    Each request shows the model a write tool with the reads that find what it needs,
    records of the initial state (so ids are real), a persona and the policy; the model
    writes an `instruction` (to the user, in the second person), the gold `actions` and
    the `outputs` to tell. Each blueprint is then checked: format (tools and arguments),
    execution (the actions replayed on fresh instances in worker processes) and
    necessity (every write changes the state, and none can be dropped), and with
    `--policy-checks` the policy (your functions find no violation) and with `-J`
    the review (a committee of judges, shown the instruction, the actions and the
    state's diff, votes; the majority decides). `--max-revisions N` sends a
    rejected blueprint back to the model with the critique, up to N times;
    `--negative-share F` makes a share of them negative on purpose. With `-o FILE`
    the run is resumable: after an interruption (Ctrl-C, a crash, kill -9) the same
    command carries on, asking nothing again for the blueprints already written.

    Examples:

        apigen blueprint store_tools.jsonl --functions sample_data/store --initial-state sample_data/store/initial_state.json --policy sample_data/store/policy.md -m offline -n 20 --seed 1 -o blueprints.jsonl --rejects blueprint_rejects.jsonl

        apigen blueprint env_tools.jsonl --functions my_env.py --initial-state state.json --base-url http://localhost:8000/v1 -m Qwen/Qwen2.5-7B-Instruct -n 200 --cache .apigen-cache | jq -c '{instruction, actions}'
    """
    messages = Messages(quiet=quiet, verbose=verbose)
    resumes = "run the same command again: it carries on where it stopped" if is_resumable(output) else None
    with errors_to_exit_codes(messages, on_interrupt=resumes), ExitStack() as stack:
        where = Destinations(env_library, output, rejects)
        where.validate()  # an unwritable `-o` is said before any request
        blueprints = BlueprintMaker.open(ctx, env_library, messages, stack)
        run, llm = blueprints.run, blueprints.llm
        seed = chosen_seed(llm.seed)
        if is_resumable(output):
            summary, seed = write_resumable_blueprints(blueprints.resumable(seed, overwrite), blueprints, where, messages)
        else:
            summary = write_rows("blueprint", run.rows(blueprints.plans(seed)), where, wrap=blueprints.progress)
        blueprints.say_after(seed)
    finish_stage(messages, summary, strict, keeps_rejected=False)


@dataclass
class BlueprintMaker:
    """blueprint's parts, set up from its flags (``ctx.params``): the run, the plans, the run's fingerprint."""

    run: BlueprintRun
    chat: LLMClient
    llm: LLMSettings
    values: dict[str, Any]
    params: dict[str, Any]
    env_library: str
    messages: Messages

    @classmethod
    def open(cls, ctx: typer.Context, env_library: str, messages: Messages, stack: ExitStack) -> BlueprintMaker:
        """Check the flags and the files, start the workers and the models; errors before any request."""
        # the multi-turn modules load when a multi-turn command runs, not for every command
        from ..conversations.blueprint import BlueprintRun, check_environment_loads, prepare_blueprints
        from ..conversations.blueprint_review import Review
        from ..conversations.policy_checks import PolicyChecks, find_policy_checks

        params = ctx.params
        resolved = resolved_settings(ctx)
        llm = resolved.llm_settings()
        values = resolved.values
        executor, exec_policy = environment_executor(ctx, messages, stack, "replays each blueprint's actions")
        initial_state = params["initial_state"]
        job = prepare_blueprints(
            env_library,
            initial_state,
            executor=executor,
            policy_path=params["policy"],
            personas_path=params["personas"],
            prompts_dir=values["prompts"],
            examples_path=params["blueprint_examples"],
        )
        if initial_state is not None:
            check_environment_loads(job, executor, initial_state)
        checks = None
        if params["policy_checks"] is not None:
            found = find_policy_checks(params["policy_checks"])
            checker = replace(execution_settings_from(values), functions=params["policy_checks"]).executor(
                function_output(messages)
            )
            stack.callback(checker.close)
            checker.start()
            checks = PolicyChecks(found, checker)
        judges = judge_settings_from({**values, "include_failed": False}, llm)
        models = tuple(dict.fromkeys([*llm.models, *judges.judges]))
        chat = stack.enter_context(open_chat_service(replace(llm, models=models), on_warning=messages.warning))
        review = Review.of(chat, judges, job.policy, values["prompts"]) if judges.judges else None
        run = BlueprintRun(
            job,
            chat,
            executor,
            with_schema=llm.json_mode == "schema",
            policy=exec_policy,
            policy_checks=checks,
            review=review,
            max_revisions=params["max_revisions"],
        )
        return cls(run, chat, llm, dict(values), dict(params), env_library, messages)

    def plans(self, seed: int, skip: int = 0) -> Iterator[BlueprintPlan]:
        values = self.values
        models = list(self.llm.models)
        return self.run.job.plans(values["count"], seed, models, values["max_tokens"], self.params["negative_share"], skip=skip)

    def progress(self, rows: Iterator[Row]) -> Iterator[Row]:
        return self.messages.progress(rows, "blueprint", counters=self.chat.progress)

    def resumable(self, seed: int, overwrite: bool) -> ResumableRun:
        """The run as its checkpoints know it: every setting and file that decides its blueprints."""
        params, values = self.params, self.values
        names = ("initial_state", "policy", "personas", "blueprint_examples", "policy_checks")
        files = [self.env_library, *(params[name] for name in names), values["functions"], values["prompts"]]
        deciding = {  # as resolved (flag, environment, config file), for the settings this command takes
            name: plain_setting(values[name])
            for name in params
            if name in SETTINGS and SETTINGS[name].decides_rows and name in values
        }
        deciding |= {
            "max_revisions": params["max_revisions"],
            "negative_share": params["negative_share"],
            "seed": self.llm.seed,
        }
        digest = fingerprint(deciding, [path for path in files if path])
        return ResumableRun(
            "blueprint", digest, seed, values["count"], deciding, overwrite=overwrite, seed_given=self.llm.seed is not None
        )

    def say_after(self, seed: int) -> None:
        """The revision and negative tallies, the seed and the tokens used, at the end of the run."""
        if self.params["max_revisions"]:
            self.messages.info(self.run.tally.line())
        if self.params["negative_share"]:
            self.messages.info(self.run.tally.negatives_line())
        self.messages.info(f"seed {seed}: pass `--seed {seed}` to sample the same requests again")
        for line in usage_lines(self.chat.usage):
            self.messages.info(line)


def write_resumable_blueprints(
    resumable: ResumableRun,
    blueprints: BlueprintMaker,
    where: Destinations,
    messages: Messages,
    progress: Wrapper | None = None,
) -> tuple[StageSummary, int]:
    """Write the blueprints into `-o` in place, resuming a run killed there (``resumable``); the summary and the seed.
    ``progress`` sees the rows as they are made (default: blueprint's own progress line)."""
    run = blueprints.run
    resumable = replace(
        resumable, request_field="id", counts=run.tally.to_counts, restore=run.tally.restore
    )  # a blueprint is its own request; the revision tally is carried across sessions
    resumed = write_resumable(
        resumable,
        lambda seed, skip: run.checked_rows(blueprints.plans(seed, skip)),
        where,
        wrap=progress or blueprints.progress,
        written=run.tally.counted,
    )
    if resumed.already_complete:
        messages.info(f"`{where.output}` already holds this run, complete; pass `--overwrite` to run it again")
    elif resumed.skipped:
        messages.info(f"resumed: {resumed.skipped} of {resumable.total} blueprints were already written")
    return resumed.summary, resumed.seed


# --- simulate: each blueprint acted out by a simulated user and an agent, kept when verified

SIMULATION_PANEL = "Simulation"
SimToolsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tools",
        metavar="ENV_LIBRARY",
        rich_help_panel=SIMULATION_PANEL,
        help="The agent's tools, as `apigen library from-python --class` writes them; default: read from `--functions`.",
    ),
]
UserModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--user-model", metavar="NAME", rich_help_panel=SIMULATION_PANEL, help="The user simulator's model; default: `-m`."
    ),
]
UserBaseUrlOpt = Annotated[
    Optional[str],
    typer.Option(
        "--user-base-url",
        metavar="URL",
        rich_help_panel=SIMULATION_PANEL,
        help="The user simulator's endpoint, when not `--base-url`.",
    ),
]
UserApiKeyEnvOpt = Annotated[
    Optional[str],
    typer.Option(
        "--user-api-key-env",
        metavar="NAME",
        rich_help_panel=SIMULATION_PANEL,
        help="The variable holding the user endpoint's key, when not `--api-key-env`.",
    ),
]
AttemptsOpt = Annotated[
    int,
    typer.Option(
        "--attempts",
        min=1,
        metavar="N",
        rich_help_panel=SIMULATION_PANEL,
        help="Conversations tried per blueprint until one is verified; every failed one goes to the rejects.",
    ),
]
KeepAllVerifiedOpt = Annotated[
    bool,
    typer.Option(
        "--keep-all-verified",
        rich_help_panel=SIMULATION_PANEL,
        help="Make every attempt, and keep every distinct verified conversation, not only the first.",
    ),
]
MaxTurnsOpt = Annotated[
    int,
    typer.Option(
        "--max-turns", min=1, metavar="N", rich_help_panel=SIMULATION_PANEL, help="User messages per conversation (turn_limit)."
    ),
]
MaxToolCallsOpt = Annotated[
    int,
    typer.Option(
        "--max-tool-calls",
        min=1,
        metavar="N",
        rich_help_panel=SIMULATION_PANEL,
        help="Agent tool calls between two user messages (tool_call_limit).",
    ),
]
MaxReplyCharsOpt = Annotated[
    int,
    typer.Option(
        "--max-reply-chars",
        min=1,
        metavar="N",
        rich_help_panel=SIMULATION_PANEL,
        help="Characters in one message of the agent or the user (reply_too_long).",
    ),
]
MaxSecondsOpt = Annotated[
    float,
    typer.Option(
        "--max-seconds",
        min=0.0,
        metavar="S",
        rich_help_panel=SIMULATION_PANEL,
        help="Wall time of one conversation, checked before each step (time_limit).",
    ),
]
StopToolsOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--stop-tools",
        metavar="NAME",
        rich_help_panel=SIMULATION_PANEL,
        help="A tool whose call ends the conversation (repeat it); default: transfer_to_human_agents.",
    ),
]


_SIMULATE_GENERATION = ("max_tokens", "prompts")  # of the generation settings, the ones the user and the agent use
# `--workers` is not simulate's: each conversation's environment runs in a process of its own (`execution/live.py`)


@app.command("simulate")
@with_options(
    STAGE_IO_GROUP,
    {name: option for name, option in setting_options("generation").items() if name in _SIMULATE_GENERATION},
    {name: option for name, option in setting_options("llm", "execution").items() if name != "workers"},
    judge_options(),
)
def simulate(
    ctx: typer.Context,
    tools: SimToolsOpt = None,
    policy: PolicyOpt = None,
    user_model: UserModelOpt = None,
    user_base_url: UserBaseUrlOpt = None,
    user_api_key_env: UserApiKeyEnvOpt = None,
    attempts: AttemptsOpt = 3,
    keep_all_verified: KeepAllVerifiedOpt = False,
    max_turns: MaxTurnsOpt = 20,
    max_tool_calls: MaxToolCallsOpt = 10,
    max_reply_chars: MaxReplyCharsOpt = 8000,
    max_seconds: MaxSecondsOpt = 600.0,
    stop_tools: StopToolsOpt = None,
    state_tool: StateToolOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Act out each verified blueprint: a simulated user and an agent talk, and a conversation is kept when verified.

    The user simulator (`--user-model`) gets the blueprint's instruction, never its
    actions; the agent (`-m`) gets the policy and the environment's tools, and its
    calls run on the blueprint's environment, in one process kept for the whole
    conversation (only its new calls are sent at each step). Each conversation
    that ends normally goes through the trajectory check; a failed one is tried
    again, up to `--attempts`, and every failed attempt goes to the rejects with
    its reason and whole conversation. `-m offline` runs a scripted user and agent.
    With `--mcp COMMAND` instead of `--functions`, the environment is an MCP server,
    a fresh one for every conversation; with `-J NAME`, judges read each verified attempt.
    With INPUT a file and `-o FILE` the run is resumable: after an interruption
    (Ctrl-C, a crash, kill -9) the same command carries on, asking nothing again
    for the blueprints whose conversations are already written.

    Examples:

        apigen simulate blueprints.jsonl --functions sample_data/store --policy sample_data/store/policy.md -m offline --seed 1 -o simulated.jsonl --rejects failed_simulations.jsonl

        apigen simulate blueprints.jsonl --functions my_env.py --base-url http://localhost:8000/v1 -m Qwen/Qwen2.5-7B-Instruct --cache .apigen-cache | jq -c '{id, attempt}'
    """

    if is_resumable(ctx.params["output"]) and ctx.params["input"] != STDIO:
        _simulate_resumable(ctx, overwrite)
        return

    def setup(messages: Messages, resources: ExitStack) -> StageRun:
        from ..conversations.simulation import SimulationTally

        simulations = SimulationMaker.open(ctx, messages, resources, judges=True)
        seed = chosen_seed(simulations.llm.seed)
        simulation, tally = simulations.make(seed), SimulationTally()
        return StageRun(
            lambda rows: tally.counted(simulation.rows(rows)),
            counters=simulations.counters,
            after=lambda: simulations.say_after(tally, seed),
        )

    run_stage_command("simulate", ctx.params, setup)


@dataclass
class SimulationMaker:
    """simulate's parts, opened before its seed is known (a resumed run without `--seed` takes its first session's)."""

    make_with: Callable[[int], Simulation]
    llm: LLMSettings
    messages: Messages
    chats: list[LLMClient] = field(default_factory=list)  # the services the simulations ask, for the usage lines

    @classmethod
    def open(cls, ctx: typer.Context, messages: Messages, resources: ExitStack, *, judges: bool = False) -> SimulationMaker:
        """Check simulate's settings and start its workers; ``make`` then opens the models for a seed.

        ``judges``: `-J` names judges of the conversations (simulate's; in `run --multi-turn`, `-J` is the blueprints')."""
        from ..conversations.agent import Agent, ToolModes, load_agent_prompt, openai_tools
        from ..conversations.blueprint_sampling import read_text_file
        from ..conversations.conversation_review import judge_one
        from ..conversations.simulation import DEFAULT_STOP_TOOLS, Bounds, Simulation, simulation_tools
        from ..conversations.user_simulator import UserSimulator, load_user_prompt
        from ..execution.live import LiveSessions

        params = ctx.params
        resolved = resolved_settings(ctx)
        llm = resolved.llm_settings()
        if len(llm.models) != 1:
            raise ConfigError(
                f"simulate takes one agent model, and {len(llm.models)} are given",
                hint="pass one `-m NAME` (`-m offline` runs the scripted agent)",
            )
        agent_model = llm.models[0]
        # the HTTP client loads while the environment's server starts and its tools are read (in child processes)
        import_http_backend_meanwhile([agent_model, params["user_model"] or agent_model])
        policy = params["policy"]
        policy_text = read_text_file(policy, "--policy", "policy") if policy is not None else None
        sessions: LiveEnvironment
        state_tool = params.get("state_tool")  # simulate's own flag (`run --multi-turn` has no MCP environment)
        # a server per conversation, and one per blueprint for the gold's replay: at most `--concurrency` of those at once
        served = mcp_environment(ctx, state_tool, "runs the agent's calls", llm.concurrency)
        if served is not None:
            from ..conversations.mcp_tools import mcp_agent_tools  # MCP code, only with `--mcp`

            resources.callback(served.close)
            listed = served.list_tools()  # a server that cannot start, or has no such state tool, stops the run here
            definitions, writes = mcp_agent_tools(params["tools"], listed, served.options.server.name, state_tool)
            sessions = served
        else:
            functions = environment_functions(ctx, "runs the agent's calls")
            execution = execution_settings_from(resolved.values)
            live = LiveSessions(functions, replace(execution.options, on_output=function_output(messages)))
            resources.callback(live.close)
            live.start(wait=False)  # the environment's server imports the library while the tools are read here
            definitions, writes = simulation_tools(params["tools"], functions)
            live.start()  # the library imported meanwhile
            sessions = live
        prompts, max_tokens = resolved.values["prompts"], resolved.values["max_tokens"] or None
        bounds = Bounds(
            params["max_turns"],
            params["max_tool_calls"],
            params["max_reply_chars"],
            params["max_seconds"],
            tuple(params["stop_tools"] or DEFAULT_STOP_TOOLS),
        )

        def make(seed: int) -> Simulation:
            chat = resources.enter_context(
                open_chat_service(replace(llm, models=(agent_model,), seed=seed), on_warning=messages.warning)
            )
            user_chat = chat
            user_llm = replace(
                llm,
                models=(params["user_model"] or agent_model,),
                seed=seed,
                base_url=params["user_base_url"] or llm.base_url,
                api_key_env=params["user_api_key_env"] or llm.api_key_env,
            )
            if user_llm.models != (agent_model,) or params["user_base_url"] or params["user_api_key_env"]:
                user_chat = resources.enter_context(open_chat_service(user_llm, on_warning=messages.warning))
            maker.chats[:] = dict.fromkeys([chat, user_chat])
            committee = conversation_review(ctx, messages, resources, seed) if judges else None
            if committee is not None:
                maker.chats.append(committee[1])
            return Simulation(
                Agent(
                    chat,
                    agent_model,
                    openai_tools(definitions),
                    ToolModes(messages.warning),
                    load_agent_prompt(prompts),
                    policy_text,
                    max_tokens,
                ),
                UserSimulator(user_chat, user_llm.models[0], load_user_prompt(prompts), max_tokens),
                sessions,
                frozenset(writes),
                bounds,
                attempts=params["attempts"],
                keep_all_verified=params["keep_all_verified"],
                seed=seed,
                concurrency=llm.concurrency,
                environment_required=served is None,
                review=functools.partial(judge_one, review=committee[0]) if committee is not None else None,
            )

        maker = cls(make, llm, messages)
        return maker

    def make(self, seed: int) -> Simulation:
        return self.make_with(seed)

    @property
    def counters(self) -> LLMProgress | None:
        return self.chats[0].progress if self.chats else None

    def say_after(self, tally: SimulationTally, seed: int) -> None:
        """The tally, the seed and the tokens used, at the end of the run."""
        for line in tally.lines():
            self.messages.info(line)
        self.messages.info(f"seed {seed}: pass `--seed {seed}` to run the same conversations again")
        for service in self.chats:
            for line in usage_lines(service.usage):
                self.messages.info(line)


_SIMULATE_ITS_OWN = (  # simulate's own flags that decide its rows (the settings' are found by `decides_rows`)
    "tools", "policy", "user_model", "user_base_url", "attempts", "keep_all_verified",
    "max_turns", "max_tool_calls", "max_reply_chars", "max_seconds", "stop_tools",
)  # fmt: skip


def _simulate_resumable(ctx: typer.Context, overwrite: bool) -> None:
    """simulate from a file into `-o FILE`, checkpointed at each blueprint, resuming a run killed there."""
    params = ctx.params
    messages = Messages(quiet=params["quiet"], verbose=params["verbose"])
    where = destinations(params)
    resumes = "run the same command again: it carries on where it stopped"
    with errors_to_exit_codes(messages, on_interrupt=resumes), ExitStack() as resources:
        where.validate()
        simulations = SimulationMaker.open(ctx, messages, resources, judges=True)
        seed = chosen_seed(simulations.llm.seed)
        resumed, tally = write_resumable_simulation(ctx, simulations, where, seed, overwrite)
        simulations.say_after(tally, resumed.seed)
    finish_stage(messages, resumed.summary, params["strict"])


def write_resumable_simulation(
    ctx: typer.Context,
    simulations: SimulationMaker,
    where: Destinations,
    seed: int,
    overwrite: bool,
    tally: SimulationTally | None = None,
    progress: Callable[[int], Wrapper] | None = None,
) -> tuple[Resumed, SimulationTally]:
    """Simulate ``where.input``'s blueprints into its files in place, resuming a run killed there; what it did, and
    the tally of the whole run. ``seed``: this session's (a resumed run without `--seed` takes its first's).
    ``tally``: where to count (a display may read it); ``progress(blueprints)``: what sees the rows as they
    are made, given how many blueprints there are (default: simulate's own progress line)."""
    from ..conversations.simulation import REQUEST_FIELD, SimulationTally

    params, messages = ctx.params, simulations.messages
    values = resolved_settings(ctx).values

    def blueprint_rows() -> Iterator[Row]:
        return refusing_api_definitions(read_rows(where.input, skip_bad_lines=where.skip_bad_lines), where.input)

    blueprints = sum(1 for _ in blueprint_rows())  # before any request: a bad line or an API library is said now
    deciding = {
        name: plain_setting(values[name])
        for name in params
        if name in SETTINGS and SETTINGS[name].decides_rows and name in values
    }
    deciding |= {name: plain_setting(params[name]) for name in _SIMULATE_ITS_OWN}
    if params.get("state_tool"):  # only when given: a run of Python classes keeps the fingerprint it had
        deciding["state_tool"] = params["state_tool"]
    deciding["skip_bad_lines"] = where.skip_bad_lines
    files = [where.input, params["tools"], params["policy"], values["functions"], values["prompts"]]
    tally = tally if tally is not None else SimulationTally()
    resumable = ResumableRun(
        "simulate",
        fingerprint(deciding, [path for path in files if path]),
        seed,
        blueprints,
        deciding,
        overwrite=overwrite,
        seed_given=simulations.llm.seed is not None,
        request_field=REQUEST_FIELD,
        counts=tally.to_counts,
        restore=tally.restore,
    )

    def rows_from(seed: int, skip: int) -> Iterator[Row]:
        simulation = simulations.make(seed)
        return simulation.rows(itertools.islice(blueprint_rows(), skip, None), first=skip)

    def own_line(rows: Iterator[Row]) -> Iterator[Row]:
        return messages.progress(rows, "simulate", counters=simulations.counters)

    wrap = progress(blueprints) if progress is not None else own_line
    resumed = write_resumable(resumable, rows_from, where, wrap=wrap, written=tally.counted)
    if resumed.already_complete:
        messages.info(f"`{where.output}` already holds this run, complete; pass `--overwrite` to run it again")
    elif resumed.skipped:
        messages.info(f"resumed: {resumed.skipped} of {blueprints} blueprints were already simulated")
    return resumed, tally
