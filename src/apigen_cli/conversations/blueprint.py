"""``apigen blueprint``: task blueprints for a stateful environment, written by a model and verified on the real state.

The stage composes three parts: ``blueprint_sampling`` plans what each request shows,
``blueprint_generation`` asks the model and reads its reply into a row, ``blueprint_checks``
replays the row's actions and keeps it or rejects it. Before any request, the environment
is made once from the initial state (``check_environment_loads``): a library, a state or a
class that cannot work together stops the run before a token is spent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import InputError
from ..execution.sessions import SessionRequest
from ..llm.chat import ChatService
from ..rows.records import Row
from ..stages.exec_check import ExecPolicy
from .blueprint_checks import check_blueprints
from .blueprint_generation import BlueprintJob, BlueprintPlan, build_request, load_blueprint_template, row_from_result
from .blueprint_review import Review
from .blueprint_sampling import load_personas, read_initial_state, read_text_file
from .environment_tools import load_environment_tools
from .policy_checks import PolicyChecks
from .trajectory_check import SessionRunner


@dataclass(frozen=True)
class BlueprintRun:
    """A blueprint job with what runs it: the model service and the executor of the environment's classes."""

    job: BlueprintJob
    chat: ChatService
    executor: SessionRunner
    with_schema: bool = False
    policy: ExecPolicy | None = None
    policy_checks: PolicyChecks | None = None
    review: Review | None = None

    def rows(self, plans: Iterable[BlueprintPlan]) -> Iterator[Row]:
        """Each plan's blueprint, checked, in plan order: kept ones with their verdicts, the others rejected."""
        requests = ((plan, build_request(plan, self.job, with_schema=self.with_schema)) for plan in plans)
        generated = (row_from_result(plan, self.job, result) for plan, result in self.chat.map(requests))
        return check_blueprints(
            generated,
            self.job.environment,
            self.executor,
            policy=self.policy,
            policy_checks=self.policy_checks,
            review=self.review,
        )


def prepare_blueprints(
    library_path: str,
    initial_state_path: str,
    *,
    policy_path: str | None = None,
    personas_path: str | None = None,
    prompts_dir: str | None = None,
) -> BlueprintJob:
    """Read everything a blueprint run plans from; ``InputError``/``ConfigError`` before any request."""
    environment = load_environment_tools(library_path)
    initial_state = read_initial_state(initial_state_path, environment.classes)
    policy = read_text_file(policy_path, "--policy", "policy") if policy_path is not None else None
    personas = tuple(load_personas(personas_path)) if personas_path is not None else ()
    return BlueprintJob(environment, initial_state, load_blueprint_template(prompts_dir), policy, personas)


def check_environment_loads(job: BlueprintJob, executor: SessionRunner, state_file: str) -> None:
    """Make the environment once from the initial state, with no call; ``InputError`` naming the file when it cannot be."""
    [outcome] = list(executor.run_sessions([SessionRequest("initial-state", job.initial_state, [])]))
    if outcome.problem is not None:
        raise InputError(
            f"the environment cannot be made from `{state_file}`: {outcome.problem.message} ({outcome.problem.code})",
            hint="check `--initial-state` against the classes `--functions` names",
        )
