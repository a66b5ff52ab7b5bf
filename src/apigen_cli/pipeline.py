"""``apigen run``: the four stages composed in one process, resumable.

It chains the very generator functions the four commands run, in the same
order with the same settings, so a run and the shell pipe
``generate | format-check | exec-check | semantic-check`` give the same rows.

From Python, ``run(settings, target)`` is the whole of ``apigen run``: it opens
the executor and the LLM client, resumes an earlier run of the same settings
into the same files, and returns the report. ``open_run`` does the same in two
steps, for a caller that wants to watch the stages (the CLI's progress bars).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from .checkpoint import RunState, checkpoint_at_request_boundaries, resume_or_start, state_path
from .errors import ApigenError, ConfigError
from .execution.executor import Executor
from .llm.chat import ChatService, ModelUsage, UsageByModel
from .llm.service import LLMClient, open_chat_service
from .ray_engine import RayOptions, StageSettings, import_ray, ray_rows
from .report import PipelineReport, ReportBuilder
from .resumable import starting_files_on_first_row
from .rows.jsonl import STDIO, OutputFile, read_rows
from .rows.lock import OutputLock
from .rows.records import Row
from .rows.replacement import check_writable, is_replaceable, replaced_together, write_whole
from .rows.routing import StageSummary, route_rows
from .rows.runner import Destinations
from .run_settings import RunSettings, chosen_seed, deciding_values, run_fingerprint, with_seed
from .schema.tools import tool_binding
from .stages.dedup import primed_dedup
from .stages.example_pool import grown, pool_for, verified
from .stages.exec_check import ExecPolicy, exec_check
from .stages.format_check import format_check
from .stages.generate import Generation, generate, prepare_generation
from .stages.prompts import PromptSet
from .stages.sampling import RequestPlan
from .stages.semantic_check import JudgeSettings, semantic_check
from .wording import counted

Stage = Callable[[Iterable[Row]], Iterator[Row]]
STAGE_NAMES = ("generate", "format-check", "exec-check", "semantic-check")


@dataclass
class PipelineParts:
    """Everything the stages need, opened by the caller (who also closes them)."""

    chat: ChatService
    prompts: PromptSet
    executor: Executor
    exec_policy: ExecPolicy = field(default_factory=ExecPolicy)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    with_schema: bool = False
    extra_stages: tuple[tuple[str, Stage], ...] = ()


def run_pipeline(
    plans: Iterable[RequestPlan], parts: PipelineParts, observe: Callable[[str, Iterator[Row]], Iterator[Row]] | None = None
) -> Iterator[Row]:
    """Rows out of all four checks, in plan order. ``observe`` may wrap each stage's output (progress)."""

    def watched(name: str, rows: Iterator[Row]) -> Iterator[Row]:
        return observe(name, rows) if observe is not None else rows

    rows: Iterator[Row] = watched("generate", generate(plans, parts.chat, parts.prompts, with_schema=parts.with_schema))
    rows = watched("format-check", format_check(rows))
    rows = watched("exec-check", exec_check(rows, parts.executor, parts.exec_policy))
    rows = watched("semantic-check", semantic_check(rows, parts.chat, parts.prompts, parts.judge))
    for name, stage in parts.extra_stages:
        rows = watched(name, stage(rows))
    return rows


@dataclass(frozen=True)
class RunTarget:
    """Where a run writes: the dataset, the rejects, and whether an earlier run there may be replaced."""

    output: str
    rejects: str | None = None
    overwrite: bool = False


@dataclass
class RunOutcome:
    """What a run did: its report (over the whole dataset, resumed parts included) and how it went."""

    report: PipelineReport
    seed: int
    requests_total: int
    requests_skipped: int = 0
    already_complete: bool = False
    rejects_dropped: int = 0  # rejected rows this session wrote nowhere (no --rejects)


# --- issue 12: one run per output, locked for the whole run ---
def run_job(
    generation: Generation,
    parts: PipelineParts,
    target: RunTarget,
    *,
    settings_digest: str,
    observe: Callable[[str, Iterator[Row]], Iterator[Row]] | None = None,
    dedup: dict[str, Any] | None = None,
    engine: Callable[[Iterator[RequestPlan]], Iterator[Row]] | None = None,
    settings_shown: Mapping[str, Any] | None = None,
    started: float | None = None,
    seed_given: bool = True,
) -> RunOutcome:
    """``_run_job`` under exclusive locks on the output and the rejects (``rows.lock``), held from before the run
    state is read to after it is last saved: another writer of either file is refused at once, and refuses this."""
    with ExitStack() as locks:
        if _is_resumable(target.output):
            locks.enter_context(OutputLock.acquire(target.output))
            if target.rejects not in (None, STDIO) and is_replaceable(target.rejects):
                locks.enter_context(OutputLock.acquire(target.rejects, "--rejects"))
        return _run_job(
            generation,
            parts,
            target,
            settings_digest=settings_digest,
            observe=observe,
            dedup=dedup,
            engine=engine,
            settings_shown=settings_shown,
            started=started,
            seed_given=seed_given,
        )


# --- end issue 12 ---


def _run_job(
    generation: Generation,
    parts: PipelineParts,
    target: RunTarget,
    *,
    settings_digest: str,
    observe: Callable[[str, Iterator[Row]], Iterator[Row]] | None = None,
    dedup: dict[str, Any] | None = None,
    engine: Callable[[Iterator[RequestPlan]], Iterator[Row]] | None = None,
    settings_shown: Mapping[str, Any] | None = None,
    started: float | None = None,
    seed_given: bool = True,
) -> RunOutcome:
    """Run the pipeline into the target files, resuming an earlier run of the same settings.

    ``settings_digest`` fingerprints everything that decides the rows (see
    ``checkpoint.fingerprint``); a rerun with the same digest carries on where
    the last one stopped. Writing to standard output cannot be resumed. ``started``
    (``time.monotonic()``) is when this session began, its setup included: the
    report's wall time runs from there. ``seed_given``: the generation's seed is the
    user's (`--seed`), not a fresh one, so a run of another seed in the files is refused
    rather than resumed under its own seed.
    """
    started = time.monotonic() if started is None else started
    total = len(generation.settings.planned)  # the shard's requests, with `--shard`
    resumable = _is_resumable(target.output)
    state = (
        resume_or_start(
            target.output,
            target.rejects,
            settings_digest,
            generation.settings.seed,
            total,
            overwrite=target.overwrite,
            shard=generation.settings.shard,
            settings=settings_shown,
            seed_given=seed_given,
            first_request=generation.settings.planned.start,
        )
        if resumable
        else RunState(settings_digest, generation.settings.seed, total)
    )
    generation = replace(generation, settings=replace(generation.settings, seed=state.seed))
    skipped = state.requests_done
    if skipped or state.complete:
        _check_sizes(target, state)
    if state.complete:
        return RunOutcome(_report(ReportBuilder.from_json(state.report), state), state.seed, total, total, already_complete=True)
    # A resumable run writes in place, as rows come. Opening cuts a resumed run's files to the last
    # checkpoint (only then are the rows in them the finished ones); a fresh run's earlier files are
    # emptied on its first row, so a run that fails before one (a wrong key) leaves them as they were.
    output = OutputFile(target.output, resume_at=state.output_bytes if skipped else None, in_place=resumable)
    rejects = (
        OutputFile(target.rejects, resume_at=state.rejects_bytes if skipped else None, in_place=resumable, flag="--rejects")
        if target.rejects
        else None
    )
    output_writer, rejects_writer = output.writer, (rejects.writer if rejects else None)
    extra = parts.extra_stages
    if dedup is not None:
        output_writer.flush()
        seen = read_rows(target.output) if skipped else iter(())
        extra = (*extra, ("dedup", primed_dedup(seen, **dedup)))
    builder = ReportBuilder.from_json(state.report)  # counts from before an interruption, if any
    summary = StageSummary("run")

    counted_usage = UsageByModel()  # what of the service's usage the state holds already

    earlier_downgrades = list(state.report.get("json_mode_downgrades", []))  # from sessions before a resume

    def downgrades() -> list[dict[str, str]]:
        """Each step down once, though a resumed session finds it again."""
        steps: dict[tuple[str, ...], dict[str, str]] = {}
        for step in earlier_downgrades + list(getattr(parts.chat, "json_mode_downgrades", [])):
            steps.setdefault(tuple(str(step.get(key)) for key in ("endpoint", "model", "from", "to")), step)
        return list(steps.values())

    def remember_counts(state: RunState) -> None:
        builder.fold()  # at a checkpoint every request seen so far is finished
        state.report = builder.to_json() | {"json_mode_downgrades": downgrades()}
        _add_usage(state, parts.chat.usage, counted_usage)  # the requests behind the rows now written

    try:
        with replaced_together(output, rejects):
            if engine is None:
                rows = _pipeline_rows(generation, skipped, replace(parts, extra_stages=extra), observe, target.output)
            else:  # another engine makes the four checks' rows (in plan order); the rest stays here
                rows = engine(generation.plans(skip=skipped))
                # the engine's rows pass each stage's `observe` as they come back (the progress bars)
                for name in STAGE_NAMES:
                    rows = observe(name, rows) if observe is not None else rows
                for name, stage in extra:
                    rows = observe(name, stage(rows)) if observe is not None else stage(rows)
            rows = starting_files_on_first_row(rows, output, rejects)
            if resumable:
                rows = checkpoint_at_request_boundaries(
                    rows, state, state_path(target.output), output_writer, rejects_writer, before_save=remember_counts
                )
            route_rows((builder.add(row) for row in rows), summary, output_writer, rejects_writer)
            state.complete = True
    finally:
        state.elapsed_seconds += time.monotonic() - started
        state.report = state.report | {"json_mode_downgrades": downgrades()}
        if resumable:
            state.save(state_path(target.output))  # usage past the last checkpoint is for rows a resume redoes
        else:
            _add_usage(state, parts.chat.usage, counted_usage)
    return RunOutcome(_report(builder, state), state.seed, total, skipped, rejects_dropped=summary.dropped)


# --- --grow-examples: verified rows join the example pool (stages/example_pool.py) ----------


def _pipeline_rows(
    generation: Generation,
    skip: int,
    parts: PipelineParts,
    observe: Callable[[str, Iterator[Row]], Iterator[Row]] | None,
    output: str,
) -> Iterator[Row]:
    """The run's rows from request ``skip`` on; with ``--grow-examples`` the pool is rebuilt from the rows kept so far."""
    if generation.grow is None:
        return run_pipeline(generation.plans(skip=skip), parts, observe)
    pool = pool_for(generation)
    if skip:
        pool.rebuild(read_rows(output))  # the output holds exactly the verified rows of the finished requests
    return grown(
        generation.plans(skip=skip, pool=pool),
        generation.grow.lag,
        lambda plans: run_pipeline(plans, parts, observe),
        verified,
        pool,
    )


# ---------------------------------------------------------------------------------------------


def _check_sizes(target: RunTarget, state: RunState) -> None:
    for path, size in ((target.output, state.output_bytes), (target.rejects, state.rejects_bytes)):
        if path is not None and path != STDIO and size and (not os.path.exists(path) or os.path.getsize(path) < size):
            raise ConfigError(
                f"`{path}` is missing or shorter than the run state beside it says, so the run cannot be resumed",
                hint="pass `--overwrite` to start the run afresh",
            )


def _add_usage(state: RunState, usage: UsageByModel, counted: UsageByModel) -> None:
    """Add to the state what ``usage`` gained since ``counted``, and bring ``counted`` up to date."""
    for model, counts in usage.models.items():
        before = counted.models.setdefault(model, ModelUsage())
        mine = state.usage.setdefault(model, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
        mine["requests"] += counts.requests - before.requests
        if counts.cached - before.cached:
            mine["cached"] = mine.get("cached", 0) + counts.cached - before.cached
        mine["prompt_tokens"] += counts.prompt_tokens - before.prompt_tokens
        mine["completion_tokens"] += counts.completion_tokens - before.completion_tokens
        counted.models[model] = replace(counts)


def _check_resumable_rejects(target: RunTarget) -> None:
    """A resumable run cuts its rejects back to the last checkpoint: they must be a regular file (a FIFO would hang)."""
    rejects = target.rejects
    if _is_resumable(target.output) and rejects not in (None, STDIO) and not is_replaceable(rejects):
        raise ConfigError(
            f"`--rejects` `{rejects}` is not a regular file, and a resumable run (`--output FILE`) "
            "cuts its rejects back to the last checkpoint",
            hint="name a regular file for `--rejects`, or leave `--rejects` out",
        )


def _is_resumable(output: str) -> bool:
    """Only a regular file (or one not made yet) can be truncated and appended to on resume."""
    return output != STDIO and (not os.path.exists(output) or os.path.isfile(output))


def _report(builder: ReportBuilder, state: RunState) -> PipelineReport:
    report = builder.build()
    report.tokens = {model: dict(counts) for model, counts in state.usage.items()}
    report.wall_seconds = state.elapsed_seconds
    report.json_mode_downgrades = list(state.report.get("json_mode_downgrades", []))
    return report


# --- a whole run, from typed settings ---------------------------------------------------

Observe = Callable[[str, Iterator[Row]], Iterator[Row]]


class RunSession:
    """An opened run: the executor started, the LLM client open, the report file writable.

    Made by ``open_run``; ``execute`` runs it once. Closing it (the ``with`` block)
    stops the workers and the client.
    """

    def __init__(
        self, settings: RunSettings, target: RunTarget, resources: ExitStack, report: ReportFile | None, started: float
    ) -> None:
        self.settings = settings
        self.started = started  # time.monotonic() when the session began: the wall time counts its setup
        self.target = target
        self._resources = resources
        self._report = report
        self.stage_names: list[str] = [*STAGE_NAMES, "dedup"] if settings.dedup else list(STAGE_NAMES)
        self.generation: Generation | None = None
        self.chat: LLMClient | None = None
        self._parts: PipelineParts | None = None
        self.ray: RayOptions | None = None  # `--engine ray`: the checks run on Ray (see ray_engine)

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._resources.close()

    def execute(self, observe: Observe | None = None) -> RunOutcome:
        """Run (or resume) into the target files; the report file, if any, is written at the end.

        Written whole (a temporary renamed over it), and also when the run is stopped
        (Ctrl-C, an endpoint that cannot serve): then it holds the counts of the
        requests finished so far, marked ``"complete": false``.
        """
        assert self.generation is not None and self._parts is not None
        try:
            outcome = run_job(
                self.generation,
                self._parts,
                self.target,
                settings_digest=run_fingerprint(self.settings),
                settings_shown=deciding_values(self.settings),
                observe=observe,
                dedup={"threshold": 0.8, "near": True} if self.settings.dedup else None,
                engine=self._ray_engine(),
                started=self.started,
                seed_given=self.settings.llm.seed is not None,
            )
        except BaseException:
            self._write_stopped_report()
            raise
        self._write_report(outcome.report, outcome.seed, complete=True)
        return outcome

    def _write_report(self, report: PipelineReport, seed: int, *, complete: bool) -> None:
        if self._report is None:
            return
        extra: dict[str, Any] = {"seed": seed, "complete": complete, "judge_models": list(self.settings.judge.judges)}
        if self.chat is not None and self.chat.batches is not None:  # `--batch`: which stages ran as batches
            from .llm.batch import summary

            extra["batches"] = summary(self.chat.batches.state.batches)
        self._report.write(report.as_dict() | extra)

    def _write_stopped_report(self) -> None:
        """The report of a stopped run, from its last checkpoint (nothing when it cannot resume)."""
        if self._report is None:
            return
        try:
            state = RunState.load(state_path(self.target.output)) if _is_resumable(self.target.output) else None
        except ApigenError:
            state = None
        if state is not None:
            self._write_report(_report(ReportBuilder.from_json(state.report), state), state.seed, complete=False)

    def _ray_engine(self) -> Callable[[Iterator[RequestPlan]], Iterator[Row]] | None:
        if self.ray is None:
            return None
        assert self._parts is not None and self.chat is not None
        settings, options, usage = self.settings, self.ray, self.chat.usage
        # Ray's workers do not run in this folder: the paths they open must be absolute.
        llm = replace(
            settings.llm,
            cache_dir=os.path.abspath(settings.llm.cache_dir) if settings.llm.cache_dir else None,
            log_path=os.path.abspath(settings.llm.log_path) if settings.llm.log_path else None,
        )
        functions = settings.execution.functions
        stages = StageSettings(
            llm=llm,
            judge=settings.judge,
            prompts=self._parts.prompts,
            with_schema=self._parts.with_schema,
            functions=os.path.abspath(functions) if functions and os.path.exists(functions) else functions,
            executor=settings.execution.options,
            http=settings.execution.http,
            policy=settings.execution.policy,
        )
        return lambda plans: ray_rows(plans, stages, options, usage)


def open_run(
    settings: RunSettings,
    target: RunTarget,
    *,
    report: str | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_function_output: Callable[[str], None] | None = None,
    chat_options: Mapping[str, Any] | None = None,
    ray: RayOptions | None = None,
    started: float | None = None,
) -> RunSession:
    """Check what can be checked and open what the run needs, before a single LLM request.

    Raises ``ConfigError``, ``InputError`` or ``FunctionsError`` (exit 2 on the CLI)
    for what cannot run. ``chat_options`` go to ``open_chat_service`` (tests pass a
    transport or a zero wait). ``started`` (``time.monotonic()``): when the run began,
    if before this call (the CLI's start, which lists MCP servers' tools first).
    """
    started = time.monotonic() if started is None else started
    settings = settings.checked()
    Destinations(settings.apis, target.output, target.rejects, input_flag="APIS").validate()
    _check_resumable_rejects(target)
    resources = ExitStack()
    try:
        report_file = ReportFile(report) if report is not None else None
        session = RunSession(settings, target, resources, report_file, started)
        if ray is not None:
            _check_ray_can_run(settings)
            import_ray()  # a missing extra is an error before any work
            session.ray = ray
        seeded = with_seed(settings, chosen_seed(settings.llm.seed))
        session.generation = replace(
            prepare_generation(seeded.apis, seeded.generation, examples_path=seeded.examples, prompts_dir=seeded.prompts),
            grow=settings.grow,
        )
        if session.generation.examples_left_out and on_warning is not None:
            left_out = counted(session.generation.examples_left_out, "row")
            on_warning(f"`--examples`: {left_out} left out, failing the format check")
        execution = settings.execution
        if ray is not None:  # the checks run on Ray; here one worker only proves the functions load, before any request
            execution = replace(execution, options=replace(execution.options, workers=1))
        executor = execution.executor(on_function_output)
        resources.callback(executor.close)
        executor.start()
        session.generation = _executable_only(session.generation, executor, settings, on_warning)
        models = tuple(dict.fromkeys(settings.llm.models + settings.judge.judges))
        chat = resources.enter_context(
            open_chat_service(replace(settings.llm, models=models), on_warning=on_warning, **dict(chat_options or {}))
        )
        session.chat = chat
        session._parts = PipelineParts(
            chat,
            session.generation.prompts,
            executor,
            execution.policy,
            settings.judge,
            with_schema=settings.llm.json_mode == "schema",
        )
    except BaseException:
        resources.close()
        raise
    return session


def _executable_only(
    generation: Generation, executor: Executor, settings: RunSettings, on_warning: Callable[[str], None] | None
) -> Generation:
    """The generation job, checked before any token is spent: every API it may sample can be executed.

    An API with no implementation (no function of that name in `--functions`, no `http`
    binding, an `mcp` binding to a server not given) would only give rows that
    exec-check rejects. None executable is an error; some is an error too, unless
    ``settings.only_executable`` says to sample only the ones that are.
    """
    missing: dict[str, str] = {}
    for api in generation.apis:
        _name, http = tool_binding(api.definition, "http")
        _name, mcp = tool_binding(api.definition, "mcp")
        why = executor.why_not_executable(api.name, http, mcp)
        if why is not None:
            missing[api.name] = why
    if not missing:
        return generation
    first, why = next(iter(missing.items()))
    if len(missing) == len(generation.apis):
        raise ConfigError(
            f"no API of `{settings.apis}` can be executed, so every row would fail exec-check: `{first}`: {why}",
            hint="pass `--functions PATH` (the Python functions of the tools), or give the tools `http` or `mcp` bindings",
        )
    named = ", ".join(f"`{name}`" for name in list(missing)[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    if not settings.only_executable:
        raise ConfigError(
            f"{len(missing)} of the {len(generation.apis)} APIs of `{settings.apis}` cannot be executed ({named}); "
            f"`{first}`: {why}",
            hint="give them an implementation (`--functions`), or pass `--only-executable` to sample only the others",
        )
    if on_warning is not None:
        on_warning(f"`--only-executable`: {counted(len(missing), 'API')} left out of sampling ({named})")
    return replace(generation, apis=[api for api in generation.apis if api.name not in missing])


def _check_ray_can_run(settings: RunSettings) -> None:
    """What the Ray engine does not carry is refused before any work."""
    if settings.grow is not None:
        raise ConfigError(
            "`--grow-examples` does not run on `--engine ray`: the pool follows the rows in plan order, in one process",
            hint="leave out `--engine ray`, or `--grow-examples`",
        )
    if settings.execution.mcp or settings.execution.mcp_url:
        raise ConfigError(
            "`--mcp` servers do not run on `--engine ray`: apigen starts them in this process",
            hint="leave out `--engine ray`, or `--mcp`",
        )


def run(settings: RunSettings, target: RunTarget, *, report: str | None = None, **options: Any) -> RunOutcome:
    """``apigen run`` from Python: open, execute and close a run (see ``open_run`` for ``options``)."""
    with open_run(settings, target, report=report, **options) as session:
        return session.execute()


class ReportFile:
    """`--report`: checked writable before the run, written whole (see ``rows.replacement``) at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        check_writable(path, "--report")

    def write(self, report: dict[str, Any]) -> None:
        write_whole(self.path, orjson.dumps(report, option=orjson.OPT_INDENT_2), "--report")
