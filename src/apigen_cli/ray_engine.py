"""``apigen run --engine ray``: the same stage functions, run on a Ray cluster through Ray Data.

The driver (the ``apigen run`` process) still plans the requests, checkpoints,
routes and reports, exactly as the local engine does: only the rows' making moves
to the cluster. Ray Data runs three operators, each fed by the one before through
Ray's streaming executor, which holds back the input when a later stage lags
(backpressure), so memory stays bounded however long the run:

- generation (``generate`` then ``format_check``): an actor pool, each actor
  holding one LLM client with its own ``--concurrency``;
- the execution check (``exec_check``): an actor pool, each actor holding one
  worker pool (``Executor``, ``--workers`` processes) for its whole life, as the
  local engine holds one for the run, and closing it when the actor ends;
- judging (``semantic_check``): an actor pool, each actor one LLM client.

All three pools are started together at the start, so their start-up overlaps;
a batch is one block of ``batch_requests`` requests and stays one through the
three operators, so rows come back to the driver (its progress bars, its
checkpoints) a batch at a time, in plan order.

Ray Data does not keep order by default; apigen asks it to
(``preserve_order``), since the rows must leave in plan order for the request
boundaries that resume relies on, and Ray's own reordering holds back no more
than a reorder buffer here would. Resume stays apigen's: Ray keeps nothing across
runs, so the driver sends only the requests the run state has not finished.

Rows travel as JSON bytes (tools' schemas differ from row to row, which an Arrow
table would not hold), with what each batch cost the LLM (its usage) beside them.
API keys are read from the environment of the Ray workers, never shipped by
apigen. The input files (library, functions, examples, prompts) must be readable
at the same paths on every node (a shared volume).
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from .config import LLMSettings
from .errors import ConfigError
from .execution.calls import ExecutorOptions, HttpOptions
from .execution.executor import Executor
from .llm.chat import ModelUsage, UsageByModel
from .llm.service import open_chat_service
from .rows.records import Row
from .stages.exec_check import ExecPolicy, exec_check
from .stages.format_check import format_check
from .stages.generate import generate
from .stages.prompts import PromptSet
from .stages.sampling import RequestPlan
from .stages.semantic_check import JudgeSettings, semantic_check

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: the cluster's address (None: start a local Ray), the actors per LLM stage."""

    address: str | None = None
    actors: int = 1
    batch_requests: int | None = None  # requests per batch (default: BATCH_ROUNDS x --concurrency)


# A batch of BATCH_ROUNDS x --concurrency requests keeps the client's slots full for
# that many rounds before the last requests drain (an actor takes one batch at a time);
# fewer rounds bring rows back to the driver sooner, more pay Ray's cost per batch less
# often. Measured in benchmarks/scale.py (docs/benchmarks.md).
BATCH_ROUNDS = 4
# The LLM actors wait on the network: an actor at full --concurrency used under a fifth
# of a core (benchmarks/scale.py, Ray's own stats), so each asks for a quarter, which
# leaves the cores to the execution check's worker processes.
LLM_ACTOR_CPUS = 0.25


@dataclass(frozen=True)
class StageSettings:
    """What the remote stages need, picklable: the run's settings without the driver's open resources."""

    llm: LLMSettings
    judge: JudgeSettings
    prompts: PromptSet
    with_schema: bool
    functions: str | None
    executor: ExecutorOptions
    http: HttpOptions
    policy: ExecPolicy


def import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(
            "`--engine ray` needs Ray, which is not installed", hint="install it with `pip install 'apigen-cli[ray]'`"
        ) from None
    return ray


def where_it_runs(options: RayOptions) -> str:
    """One line for people before a Ray run, which shows no row until Ray and its actors have started."""
    address = options.address or os.environ.get("RAY_ADDRESS")
    where = f"joining the Ray cluster at `{address}`" if address else "starting a local Ray (no `--ray-address`, no RAY_ADDRESS)"
    return f"ray: {where}; the actors take seconds to start, then rows come back a batch at a time"


def ray_rows(plans: Iterable[RequestPlan], stages: StageSettings, options: RayOptions, usage: UsageByModel) -> Iterator[Row]:
    """The rows of all four checks for ``plans``, made on Ray, in plan order; ``usage`` gains what they cost."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        _drop_the_token_note()
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        _quiet_ray_data(ray)
        items = [{"plan": pickle.dumps(plan)} for plan in plans]
        if not items:
            return
        batch = options.batch_requests or max(BATCH_ROUNDS * stages.llm.concurrency, 4)
        llm_actors = ray.data.ActorPoolStrategy(size=options.actors)
        # One block per batch, and each operator takes a whole block: a batch stays one from
        # generation to the driver (Ray Data would otherwise join small blocks into bigger batches).
        dataset = ray.data.from_items(items, override_num_blocks=-(-len(items) // batch))

        def llm_stage(dataset: Any, actor: type) -> Any:
            """Generation and judging alike: an actor pool of LLM clients, a whole block a batch."""
            return _map_batches(
                dataset,
                actor,
                fn_constructor_args=(stages,),
                compute=llm_actors,
                batch_size=None,
                batch_format="numpy",
                num_cpus=LLM_ACTOR_CPUS,
            )

        dataset = llm_stage(dataset, Generator)
        dataset = _map_batches(
            dataset,
            Executing,
            fn_constructor_args=(stages,),
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=options.actors),
            batch_size=None,
            batch_format="numpy",
            num_cpus=stages.executor.workers or 1,  # the worker processes the actor starts
        )
        dataset = llm_stage(dataset, Judge)
        for found in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for spent in found["usage"]:
                _add_usage(usage, bytes(spent))
            for raw in found["row"]:
                yield orjson.loads(bytes(raw))
    finally:
        if started_here:
            ray.shutdown()


def _map_batches(dataset: Any, fn: type, **arguments: Any) -> Any:
    """``dataset.map_batches``, its actors not restarted where this Ray lets us say so.

    Ray Data keeps an actor's constructor in the object store, and Ray logs an error-level
    line on every successful run whose actors may restart (ray-project/ray#57733; such a
    restart would fail anyway, ray#53727). With no restarts a crashed actor ends the run
    with its error, and `apigen run` resumes from its last checkpoint. Ray takes the
    setting only among its deprecated free-form remote arguments: where they are gone,
    the line is Ray's to fix.
    """
    import inspect

    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in inspect.signature(dataset.map_batches).parameters.values()):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            return dataset.map_batches(fn, max_restarts=0, **arguments)
    return dataset.map_batches(fn, **arguments)


class _TokenNote(logging.Filter):
    """Drops Ray's note that token authentication is on: apigen started that local Ray for itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Token authentication is enabled" not in record.getMessage()


def _drop_the_token_note() -> None:
    logger = logging.getLogger("ray")
    if not any(isinstance(kept, _TokenNote) for kept in logger.filters):
        logger.addFilter(_TokenNote())
    for handler in logger.handlers:
        if not any(isinstance(kept, _TokenNote) for kept in handler.filters):
            handler.addFilter(_TokenNote())


def _quiet_ray_data(ray: Any) -> None:
    """Ray Data as apigen drives it: rows in plan order, and no bars or notes of its own on the user's stderr."""
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows leave in plan order (see the module's docstring)
    context.enable_progress_bars = False  # apigen's own bars count the rows as they come back
    context.target_min_block_size = 1  # a batch's block is never joined to the next one
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    from ray.util.debug import log_once

    log_once("ray_data_progress_manager_disabled")  # Ray Data's one note that its bars are off: apigen turned them off


class Generator:
    """A generation actor: one LLM client, kept for the actor's life; a batch of plans in, checked rows out."""

    def __init__(self, stages: StageSettings) -> None:
        self.stages = stages
        self.chat = open_chat_service(stages.llm)
        self.counted = UsageByModel()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        plans = [pickle.loads(bytes(raw)) for raw in batch["plan"]]  # pickled by the driver, which made them
        rows = list(format_check(generate(plans, self.chat, self.stages.prompts, with_schema=self.stages.with_schema)))
        return _packed(rows, _usage_since(self.chat.usage, self.counted))


class Executing:
    """An execution actor: one worker pool for the actor's whole life, reused by every batch it checks.

    The pool is closed when the actor ends (Ray Data calls ``__del__`` on a graceful
    end); if the actor is killed instead, the workers die with it (they ask the
    kernel to, see execution/worker.py).
    """

    def __init__(self, stages: StageSettings) -> None:
        self.stages = stages
        self.executor = Executor(stages.functions, stages.executor, stages.http).start()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        rows = [orjson.loads(bytes(raw)) for raw in batch["row"]]
        checked = list(exec_check(rows, self.executor, self.stages.policy))
        _same_rows(rows, checked, "exec-check")
        return {"row": [orjson.dumps(row) for row in checked], "usage": [bytes(spent) for spent in batch["usage"]]}

    def __del__(self) -> None:
        executor = getattr(self, "executor", None)
        if executor is not None:
            executor.close()


class Judge:
    """A judging actor: one LLM client for the judges; rows in, judged rows out."""

    def __init__(self, stages: StageSettings) -> None:
        self.stages = stages
        self.chat = open_chat_service(replace(stages.llm, models=stages.judge.judges))
        self.counted = UsageByModel()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        rows = [orjson.loads(bytes(raw)) for raw in batch["row"]]
        judged = list(semantic_check(rows, self.chat, self.stages.prompts, self.stages.judge))
        _same_rows(rows, judged, "semantic-check")
        spent = _joined_usage(orjson.dumps(_usage_since(self.chat.usage, self.counted)), *map(bytes, batch["usage"]))
        return {"row": [orjson.dumps(row) for row in judged], "usage": [spent] + [b""] * (len(judged) - 1)}


def _packed(rows: list[Row], spent: dict[str, dict[str, int]]) -> dict[str, list[bytes]]:
    """Rows as JSON bytes; the batch's usage rides on its first row (a batch gives at least one)."""
    usage = [b""] * len(rows)
    if rows and spent:
        usage[0] = orjson.dumps(spent)
    return {"row": [orjson.dumps(row) for row in rows], "usage": usage}


def _same_rows(before: list[Row], after: list[Row], stage: str) -> None:
    if [row.get("id") for row in before] != [row.get("id") for row in after]:
        raise RuntimeError(f"{stage} changed the rows of a batch on Ray: it must give one row for each, in order")


def _usage_since(usage: UsageByModel, counted: UsageByModel) -> dict[str, dict[str, int]]:
    """What ``usage`` gained since ``counted`` (brought up to date), as plain counts per model."""
    spent: dict[str, dict[str, int]] = {}
    for model, counts in usage.models.items():
        before = asdict(counted.models.get(model, ModelUsage()))
        delta = {key: value - before[key] for key, value in asdict(counts).items()}
        if any(delta.values()):
            spent[model] = delta
        counted.models[model] = replace(counts)
    return spent


def _joined_usage(*parts: bytes) -> bytes:
    total: dict[str, dict[str, int]] = {}
    for part in parts:
        for model, counts in (orjson.loads(part) if part else {}).items():
            mine = total.setdefault(model, {})
            for key, value in counts.items():
                mine[key] = mine.get(key, 0) + value
    return orjson.dumps(total)


def _add_usage(usage: UsageByModel, spent: bytes) -> None:
    if not spent:
        return
    for model, counts in orjson.loads(spent).items():
        mine = usage.models.setdefault(model, ModelUsage())
        for key, value in counts.items():
            setattr(mine, key, getattr(mine, key) + value)
