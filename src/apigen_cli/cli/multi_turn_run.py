"""`apigen run --multi-turn`: APIGen-MT's two phases in one process, resumable as a whole.

The blueprint phase writes the blueprints into a file beside `-o` (``OUT.blueprints.jsonl``, its
rejects beside `--rejects`), resumable as `apigen blueprint -o` is; the simulate phase then acts
them out into `-o` and `--rejects`, resumable as `apigen simulate -o` is. Each phase has its own
run state beside its own output, so a kill -9 in either phase and the same command carries on:
a finished phase is found complete and not asked again. The run holds `-o`'s lock from start to
end, so a second run of the same command is refused whichever phase the first is in.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer._click.core import ParameterSource

from ..config import settings_of
from ..console import Field, Messages, Phase, PhaseLines
from ..errors import ConfigError
from ..llm.chat import LLMProgress
from ..llm.service import usage_lines
from ..rows.lock import OutputLock
from ..rows.runner import Destinations, Wrapper
from ..run_settings import chosen_seed
from .conversations import BlueprintMaker, SimulationMaker, write_resumable_blueprints, write_resumable_simulation
from .main import errors_to_exit_codes
from .stages import finish_stage

if TYPE_CHECKING:
    from ..conversations.conversation_report import ConversationReport
    from ..conversations.simulation import SimulationTally

#: `run`'s flags of the single-turn pipeline, which a multi-turn run has no use for
SINGLE_TURN_ONLY = (
    "dedup", "only_executable", "engine", "ray_address", "ray_actors", "include_failed",
    "pairs_per_prompt", "styles", "apis_per_prompt", "examples", "examples_per_prompt", "grow_examples",
    "example_pool", "grow_lag", "shard", *(setting.name for setting in settings_of("batch")),
)  # fmt: skip
#: `run`'s flags of the multi-turn run, which the single-turn pipeline has no use for
MULTI_TURN_ONLY = (
    "initial_state", "policy", "personas", "blueprint_examples", "policy_checks", "max_revisions", "negative_share",
    "tools", "user_model", "user_base_url", "user_api_key_env", "attempts", "keep_all_verified", "max_turns",
    "max_tool_calls", "max_reply_chars", "max_seconds", "stop_tools",
)  # fmt: skip


def refuse_flags_of_the_other_mode(ctx: typer.Context, multi_turn: bool) -> None:
    """A flag typed on the command line that this mode of `run` would ignore is an error naming it."""
    names = SINGLE_TURN_ONLY if multi_turn else MULTI_TURN_ONLY
    given = [name for name in names if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
    if not given:
        return
    flag = _flag_of(ctx, given[0])
    if multi_turn:
        raise ConfigError(
            f"`{flag}` is a flag of the single-turn pipeline, and `run --multi-turn` does not use it",
            hint="leave out `--multi-turn` for the single-turn pipeline",
        )
    raise ConfigError(
        f"`{flag}` is a flag of the multi-turn run, and `run` without `--multi-turn` does not use it",
        hint="pass `--multi-turn` to make conversations for the environment of ENV_LIBRARY",
    )


def _flag_of(ctx: typer.Context, name: str) -> str:
    for parameter in ctx.command.params:
        if parameter.name == name and parameter.opts:
            return str(max(parameter.opts, key=len))
    return name


def side_file(path: str) -> str:
    """``out/conversations.jsonl`` -> ``out/conversations.blueprints.jsonl``: the blueprints of a run, beside it."""
    file = Path(path)
    return str(file.with_name(f"{file.stem}.blueprints{file.suffix or '.jsonl'}"))


def apigen_mt_report(paths: list[str | None]) -> ConversationReport | None:
    """APIGen-MT's table (``apigen stats``'s) over the run's files, those written: the whole run's, resumed or
    not; None when no file holds a row (no blueprint was asked for)."""
    from ..conversations.conversation_report import conversation_report_from_files  # (a single-turn run loads none of it)

    written = [path for path in paths if path is not None and path != "-" and Path(path).is_file()]
    if not any(Path(path).stat().st_size for path in written):
        return None
    return conversation_report_from_files(written)


BLUEPRINTS, CONVERSATIONS = "blueprints", "conversations"


def run_phases(blueprints: BlueprintMaker, simulations: SimulationMaker, tally: SimulationTally) -> list[Phase]:
    """The run's two lines, read from the tallies each phase keeps (and a resumed run restores from its state):
    blueprints requested, verified, rejected and sent back for revision; blueprints acted out, their
    conversations attempted, verified and rejected; each phase with its models' live counters."""
    revising = bool(blueprints.params["max_revisions"])

    def blueprint_figures() -> list[Field]:
        made = blueprints.run.tally
        figures = [Field(f"{made.after_revisions:,} verified", 4), Field(f"{made.total - made.after_revisions:,} rejected", 5)]
        return figures + ([Field(f"{made.revisions:,} revisions", 7)] if revising else [])

    def conversation_figures() -> list[Field]:
        return [
            Field(f"{tally.conversations:,} attempts", 6),
            Field(f"{tally.verified:,} verified", 4),
            Field(f"{tally.conversations - tally.verified:,} rejected", 5),
        ]

    return [
        Phase(BLUEPRINTS, "requests", lambda: blueprints.run.tally.total, blueprint_figures, lambda: blueprints.chat.progress),
        Phase(
            CONVERSATIONS,
            "blueprints",
            lambda: tally.blueprints,
            conversation_figures,
            lambda: combined(service.progress for service in simulations.chats),
            waits_for="waiting for the blueprints",
        ),
    ]


def combined(counters: Iterable[LLMProgress]) -> LLMProgress | None:
    """The agent's and the user simulator's counters as one (they may be two model services); None before either."""
    every = list(counters)
    if not every:
        return None
    return LLMProgress(
        **{name: sum(getattr(one, name) for one in every) for name in (field.name for field in fields(LLMProgress))}
    )


def run_multi_turn(ctx: typer.Context, env_library: str | None, output: str, rejects: str | None, overwrite: bool) -> None:
    """Blueprints, then conversations: both phases into their files, each resumable; the closing summary."""
    params = ctx.params
    messages = Messages(quiet=params["quiet"], verbose=params["verbose"])
    resumes = "run the same command again: it carries on where it stopped"
    with errors_to_exit_codes(messages, on_interrupt=resumes), ExitStack() as stack:
        if env_library is None or env_library == "-":
            raise ConfigError(
                "`run --multi-turn` reads the environment's API library from a file, and none is given",
                hint="pass ENV_LIBRARY, as `apigen library from-python FILE --class NAME -o ENV_LIBRARY` writes it",
            )
        if output == "-":
            raise ConfigError(
                "`run --multi-turn` writes its blueprints beside `--output`, and `--output` is standard output",
                hint="pass `-o FILE`; the blueprints go to FILE's side, `FILE.blueprints.jsonl`",
            )
        blueprint_files = Destinations(env_library, side_file(output), side_file(rejects) if rejects else None)
        conversation_files = Destinations(blueprint_files.output, output, rejects)
        blueprint_files.validate()
        conversation_files.validate()
        report_file = None
        if params.get("report"):
            from ..pipeline import ReportFile  # the single-turn run's module: loaded only for this

            report_file = ReportFile(params["report"])  # checked writable before any request
        # one lock for the whole run, on `-o`: a second run of it is refused in either phase (the phases take it again)
        stack.enter_context(OutputLock.acquire(output))
        blueprints = BlueprintMaker.open(ctx, env_library, messages, stack)
        simulations = SimulationMaker.open(ctx, messages, stack)  # its flags checked too before any request
        seed = chosen_seed(blueprints.llm.seed)
        from ..conversations.simulation import SimulationTally

        tally = SimulationTally()
        with PhaseLines(messages, run_phases(blueprints, simulations, tally)) as lines:  # gone before the table
            lines.start(BLUEPRINTS, blueprints.values["count"])
            blueprint_summary, seed = write_resumable_blueprints(
                blueprints.resumable(seed, overwrite),
                blueprints,
                blueprint_files,
                messages,
                progress=lambda rows: lines.observe(BLUEPRINTS, rows),
            )
            lines.finished(BLUEPRINTS)
            messages.info(blueprint_summary.line())

            def conversations_line(total: int) -> Wrapper:
                lines.start(CONVERSATIONS, total)
                return lambda rows: lines.observe(CONVERSATIONS, rows)

            resumed, tally = write_resumable_simulation(
                ctx, simulations, conversation_files, seed, overwrite, tally=tally, progress=conversations_line
            )
            lines.finished(CONVERSATIONS)
        if params["max_revisions"]:
            messages.info(blueprints.run.tally.line())
        for line in tally.lines():
            messages.info(line)
        for service in dict.fromkeys([blueprints.chat, *simulations.chats]):
            for line in usage_lines(service.usage):
                messages.info(line)
        if not messages.quiet or report_file is not None:
            table = apigen_mt_report([output, rejects, blueprint_files.output, blueprint_files.rejects])
            for line in table.lines() if table is not None and not messages.quiet else []:
                messages.info(line)
            if report_file is not None:
                report_file.write((table.as_dict() if table is not None else {}) | {"seed": resumed.seed, "complete": True})
        messages.info(f"seed {resumed.seed}: pass `--seed {resumed.seed}` to run the same blueprints and conversations again")
        attempts = f", {tally.conversations / tally.verified:.2f} attempts per verified conversation" if tally.verified else ""
        messages.info(
            f"run --multi-turn: {blueprints.values['count']} blueprints requested, {blueprint_summary.passed} verified "
            f"(`{blueprint_files.output}`); {tally.conversations} conversations attempted, {tally.verified} verified{attempts}"
        )
    finish_stage(messages, resumed.summary, params["strict"])
