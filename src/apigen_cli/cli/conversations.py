"""The multi-turn commands: conversations checked against the real state of a stateful environment."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import Annotated, Optional

import typer

from ..console import Messages
from ..errors import ConfigError
from ..llm.service import open_chat_service, usage_lines
from ..rows.runner import Destinations, write_rows
from ..run_settings import chosen_seed, execution_settings_from, judge_settings_from
from .main import app, errors_to_exit_codes
from .options import (
    STAGE_IO_GROUP,
    OutputOpt,
    QuietOpt,
    RejectsOpt,
    StrictOpt,
    VerboseOpt,
    executor_and_policy,
    function_output,
    resolved_settings,
    setting_options,
    with_options,
)
from .stages import StageRun, finish_stage, run_stage_command


@app.command("trajectory-check")
@with_options(STAGE_IO_GROUP, setting_options("execution"))
def trajectory_check(ctx: typer.Context) -> None:
    """Replay each conversation on its environment; keep it only when the state and what it told the user are right.

    Each row names its environment (`"environment": {"ClassName": {initial state}}`,
    the classes coming from `--functions`), its chat `messages`, the gold `actions`
    and optional `outputs`. The gold actions and the conversation's own calls are
    replayed on fresh instances, in worker processes; the row is kept when both end
    in the same state, every output was told, and every tool message says what the
    environment says. A kept row gets per-call labels backed by state.

    Examples:

        apigen trajectory-check sample_data/store/conversations.jsonl --functions sample_data/store -o verified.jsonl --rejects failed.jsonl

        apigen trajectory-check conversations.jsonl --functions my_env.py --exec-timeout 5 --keep-rejected | jq -c '{id, reason}'
    """

    def setup(messages: Messages, resources: ExitStack) -> StageRun:
        if not resolved_settings(ctx).values.get("functions"):
            raise ConfigError(
                "trajectory-check replays each conversation on the environment's classes, and no `--functions` names them",
                hint="pass `--functions FILE_OR_FOLDER`, the Python code that defines the classes the rows' `environment` names",
            )
        from ..conversations.trajectory_check import trajectory_check as trajectory_check_rows

        executor, _policy = executor_and_policy(ctx, messages)
        resources.callback(executor.close)
        executor.start()
        return StageRun(lambda rows: trajectory_check_rows(rows, executor))

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
    typer.Option("--initial-state", metavar="FILE", help="JSON object of class names to their initial state (required for now)."),
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
    `--negative-share F` makes a share of them negative on purpose.

    Examples:

        apigen blueprint store_tools.jsonl --functions sample_data/store --initial-state sample_data/store/initial_state.json --policy sample_data/store/policy.md -m offline -n 20 --seed 1 -o blueprints.jsonl --rejects rejected.jsonl

        apigen blueprint env_tools.jsonl --functions my_env.py --initial-state state.json --base-url http://localhost:8000/v1 -m Qwen/Qwen2.5-7B-Instruct -n 200 --cache .apigen-cache | jq -c '{instruction, actions}'
    """
    # the multi-turn modules load when a multi-turn command runs, not for every command
    from ..conversations.blueprint import BlueprintRun, check_environment_loads, prepare_blueprints
    from ..conversations.blueprint_review import Review
    from ..conversations.policy_checks import PolicyChecks, find_policy_checks

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages), ExitStack() as stack:
        where = Destinations(env_library, output, rejects)
        where.validate()  # an unwritable `-o` is said before any request
        resolved = resolved_settings(ctx)
        llm = resolved.llm_settings()
        values = resolved.values
        if not values.get("functions"):
            raise ConfigError(
                "blueprint replays each blueprint's actions on the environment's classes, and no `--functions` names them",
                hint="pass `--functions FILE_OR_FOLDER`, the Python code that defines the classes of ENV_LIBRARY",
            )
        if initial_state is None:
            raise ConfigError(
                "blueprint needs the environment's initial state, and no `--initial-state` gives it",
                hint="pass `--initial-state FILE`, a JSON object of class names to their state",
            )
        job = prepare_blueprints(
            env_library,
            initial_state,
            policy_path=policy,
            personas_path=personas,
            prompts_dir=values["prompts"],
            examples_path=blueprint_examples,
        )
        seed = chosen_seed(llm.seed)
        executor, exec_policy = executor_and_policy(ctx, messages)
        stack.callback(executor.close)
        executor.start()
        check_environment_loads(job, executor, initial_state)
        checks = None
        if policy_checks is not None:
            found = find_policy_checks(policy_checks)
            checker = replace(execution_settings_from(values), functions=policy_checks).executor(function_output(messages))
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
            max_revisions=max_revisions,
        )
        plans = job.plans(values["count"], seed, list(llm.models), values["max_tokens"], negative_share)
        summary = write_rows(
            "blueprint", run.rows(plans), where, wrap=lambda rows: messages.progress(rows, "blueprint", counters=chat.progress)
        )
        if max_revisions:
            messages.info(run.tally.line())
        if negative_share:
            messages.info(run.tally.negatives_line())
        messages.info(f"seed {seed}: pass `--seed {seed}` to sample the same requests again")
        for line in usage_lines(chat.usage):
            messages.info(line)
    finish_stage(messages, summary, strict, keeps_rejected=False)
