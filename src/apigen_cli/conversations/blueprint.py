"""``apigen blueprint``: task blueprints for a stateful environment, written by a model and verified on the real state.

The stage composes three parts: ``blueprint_sampling`` plans what each request shows,
``blueprint_generation`` asks the model and reads its reply into a row, ``blueprint_checks``
replays the row's actions and keeps it or rejects it. With ``--max-revisions N``, a blueprint a
check rejected goes back to the model with the check's critique, up to N times, as
APIGen-MT's feedback loop does; the final row records every earlier attempt and why it failed
(``blueprint_attempts``). Before any request, the environment
is made once from the initial state (``check_environment_loads``): a library, a state or a
class that cannot work together stops the run before a token is spent.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InputError
from ..execution.sessions import SessionRequest
from ..llm.chat import ChatRequest, ChatService
from ..rows.records import REASON, REASON_DETAIL, REJECTED_BY, Row
from ..stages.exec_check import ExecPolicy
from .blueprint_checks import EXECUTION, FORMAT, KEEP_FIELD, NECESSITY, POLICY, check_blueprints
from .blueprint_generation import (
    KIND_FIELD,
    NEGATIVE_KINDS,
    POSITIVE,
    BlueprintJob,
    BlueprintPlan,
    build_request,
    load_blueprint_template,
    revision_request,
    row_from_result,
)
from .blueprint_review import REVIEW, Review
from .blueprint_sampling import load_blueprint_examples, load_personas, read_initial_state, read_text_file
from .environment_tools import load_environment_tools
from .policy_checks import PolicyChecks
from .trajectory_check import SessionPool, SessionRunner


@dataclass(frozen=True)
class BlueprintRun:
    """A blueprint job with what runs it: the model service and the executor of the environment's classes."""

    job: BlueprintJob
    chat: ChatService
    executor: SessionPool
    with_schema: bool = False
    policy: ExecPolicy | None = None
    policy_checks: PolicyChecks | None = None
    review: Review | None = None

    max_revisions: int = 0
    tally: RevisionTally = field(default_factory=lambda: RevisionTally())

    def rows(self, plans: Iterable[BlueprintPlan]) -> Iterator[Row]:
        """Each plan's blueprint, checked, in plan order, counted in ``tally``."""
        return self.tally.counted(self.checked_rows(plans))

    def checked_rows(self, plans: Iterable[BlueprintPlan]) -> Iterator[Row]:
        """Each plan's blueprint, checked, in plan order: kept ones with their verdicts, the others rejected.

        With ``max_revisions``, a blueprint a check rejected goes back to the model with the
        critique and is checked again. Its revision joins the same stream as the plans'
        first requests (ahead of them), so a slow blueprint holds back only the rows after it
        in the output, never the requests and checks of the others: at most the reorder
        window's requests and ``check_blueprints``'s blueprints are in flight for each
        revision it waits on.
        """
        revising: deque[_Attempt] = deque()  # rejected blueprints to ask again, before any new plan
        finished: dict[int, Row] = {}  # final rows that wait for an earlier plan's
        next_out = 0
        attempts: Iterator[_Attempt] = (_Attempt(index, plan) for index, plan in enumerate(plans))
        while True:
            for attempt, row in self._answered_and_checked(_revisions_first(revising, attempts)):
                if row.get(REJECTED_BY) in REVISABLE and attempt.number < self.max_revisions:
                    revising.append(replace(attempt, number=attempt.number + 1, rejected=row))
                    continue
                finished[attempt.index] = row
                while next_out in finished:
                    yield finished.pop(next_out)
                    next_out += 1
            if not revising:  # the plans are all read, and no revision was asked while the last ones ran
                break
            attempts = iter(())
        assert not finished, "every plan's final row was written"

    def _answered_and_checked(self, attempts: Iterable[_Attempt]) -> Iterator[tuple[_Attempt, Row]]:
        """Each attempt's request answered and its blueprint checked, in the order of ``attempts``."""
        riding: deque[_Attempt] = deque()  # the attempt of each row on its way through the checks

        def answered() -> Iterator[Row]:
            asks = ((attempt, self._request(attempt)) for attempt in attempts)
            for attempt, result in self.chat.map(asks):
                row = row_from_result(attempt.plan, self.job, result)
                riding.append(attempt)
                yield row

        for checked in self._checked(answered()):
            attempt = riding.popleft()
            if attempt.rejected is not None:
                checked[ATTEMPTS] = [*attempt.rejected.get(ATTEMPTS, []), attempt_of(attempt.rejected)]
            yield attempt, checked

    def _request(self, attempt: _Attempt) -> ChatRequest:
        if attempt.rejected is None:
            return build_request(attempt.plan, self.job, with_schema=self.with_schema)
        return revision_request(attempt.plan, self.job, attempt.rejected, attempt.number, with_schema=self.with_schema)

    def _checked(self, rows: Iterable[Row]) -> Iterator[Row]:
        return check_blueprints(
            rows,
            self.job.environment,
            self.executor,
            policy=self.policy,
            policy_checks=self.policy_checks,
            review=self.review,
        )


@dataclass(frozen=True)
class _Attempt:
    """One request for a plan's blueprint: the first (``number`` 0), or a revision of the ``rejected`` row."""

    index: int  # the plan's place in the run, where its final row is written
    plan: BlueprintPlan
    number: int = 0
    rejected: Row | None = None


def _revisions_first(revising: deque[_Attempt], attempts: Iterator[_Attempt]) -> Iterator[_Attempt]:
    """The revisions asked for so far, then the next plan's first attempt; ends when both have run out.

    A revision the checks ask for after the end is left in ``revising`` for the next pass: a
    stream cannot wait for an item that may never come.
    """
    while True:
        if revising:
            yield revising.popleft()
            continue
        attempt = next(attempts, None)
        if attempt is None:
            return
        yield attempt


#: the checks whose critique can make a better blueprint (a failed request has no blueprint to criticise)
REVISABLE = (FORMAT, EXECUTION, NECESSITY, POLICY, REVIEW)
ATTEMPTS = "blueprint_attempts"


def attempt_of(row: Row) -> dict[str, Any]:
    """What an earlier attempt was and why it was rejected, as the final row records it."""
    return {key: row.get(key) for key in ("instruction", "actions", "outputs", REJECTED_BY, REASON, REASON_DETAIL)}


@dataclass
class RevisionTally:
    """How many blueprints passed at their first attempt and after revisions: the loop's worth (APIGen-MT: 28% -> 70%);
    and how the negative ones, counted apart, fared."""

    total: int = 0
    first_attempt: int = 0
    after_revisions: int = 0
    revisions: int = 0  # blueprints sent back to the model with their critique, kept or not
    negatives: Counter[str] = field(default_factory=Counter)  # asked for, by kind
    negatives_kept: Counter[str] = field(default_factory=Counter)

    def counted(self, rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            self.total += 1
            self.revisions += len(row.get(ATTEMPTS) or ())
            kind = row.get(KIND_FIELD, POSITIVE)
            if kind != POSITIVE:
                self.negatives[kind] += 1
            if row.get(KEEP_FIELD) is True:
                self.after_revisions += 1
                self.first_attempt += 0 if row.get(ATTEMPTS) else 1
                if kind != POSITIVE:
                    self.negatives_kept[kind] += 1
            yield row

    def to_counts(self) -> dict[str, int]:
        """The tally as flat counts, for a run's checkpoints (``resumable``)."""
        counts = {
            "total": self.total,
            "first_attempt": self.first_attempt,
            "after_revisions": self.after_revisions,
            "revisions": self.revisions,
        }
        counts.update({f"negatives\t{kind}": count for kind, count in self.negatives.items()})
        counts.update({f"negatives_kept\t{kind}": count for kind, count in self.negatives_kept.items()})
        return counts

    def restore(self, counts: dict[str, int]) -> None:
        """Carry on from an earlier session's tally (``to_counts``)."""
        self.total = counts.get("total", 0)
        self.first_attempt = counts.get("first_attempt", 0)
        self.after_revisions = counts.get("after_revisions", 0)
        self.revisions = counts.get("revisions", 0)
        for key, count in counts.items():
            name, _tab, kind = key.partition("\t")
            if name == "negatives":
                self.negatives[kind] = count
            elif name == "negatives_kept":
                self.negatives_kept[kind] = count

    def negatives_line(self) -> str:
        kinds = ", ".join(f"{kind} {self.negatives_kept[kind]} of {self.negatives[kind]}" for kind in NEGATIVE_KINDS)
        return f"negative on purpose: {sum(self.negatives_kept.values())} kept of {sum(self.negatives.values())} ({kinds})"

    def line(self) -> str:
        def share(count: int) -> str:
            return f"{count} of {self.total} ({100 * count / self.total:.0f}%)" if self.total else "0"

        return f"passed at the first attempt: {share(self.first_attempt)}; after revisions: {share(self.after_revisions)}"


def prepare_blueprints(
    library_path: str,
    initial_state_path: str | None,
    *,
    executor: SessionRunner | None = None,
    policy_path: str | None = None,
    personas_path: str | None = None,
    prompts_dir: str | None = None,
    examples_path: str | None = None,
) -> BlueprintJob:
    """Read everything a blueprint run plans from; ``InputError``/``ConfigError`` before any request.

    Without ``initial_state_path`` the state is the classes' own default (``default_initial_state``, on ``executor``).
    """
    environment = load_environment_tools(library_path)
    if initial_state_path is not None:
        initial_state = read_initial_state(initial_state_path, environment.classes)
    else:
        assert executor is not None
        initial_state = default_initial_state(environment.classes, executor)
    policy = read_text_file(policy_path, "--policy", "policy") if policy_path is not None else None
    personas = tuple(load_personas(personas_path)) if personas_path is not None else ()
    writes = {tool.name for tool in environment.writes}
    examples = tuple(load_blueprint_examples(examples_path, writes)) if examples_path is not None else ()
    return BlueprintJob(environment, initial_state, load_blueprint_template(prompts_dir), policy, personas, examples)


def check_environment_loads(job: BlueprintJob, executor: SessionRunner, state_file: str) -> None:
    """Make the environment once from the initial state, with no call; ``InputError`` naming the file when it cannot be."""
    [outcome] = list(executor.run_sessions([SessionRequest("initial-state", job.initial_state, [])]))
    if outcome.problem is not None:
        raise InputError(
            f"the environment cannot be made from `{state_file}`: {outcome.problem.message} ({outcome.problem.code})",
            hint="check `--initial-state` against the classes `--functions` names",
        )


def default_initial_state(classes: list[str], executor: SessionRunner) -> dict[str, dict[str, Any]]:
    """Each class's own default state: an instance made with no arguments, its state read (``state()`` or its public
    attributes). It becomes the rows' ``environment``, so it must load back into the same state: ``InputError`` if not."""
    [made] = list(executor.run_sessions([SessionRequest("default-state", {name: {} for name in classes}, [], defaults=True)]))
    hint = "pass `--initial-state FILE`, a JSON object of class names to their state"
    if made.problem is not None or made.final_state is None:
        problem = f"{made.problem.message} ({made.problem.code})" if made.problem is not None else "no state"
        raise InputError(f"the environment's classes cannot be made with no arguments: {problem}", hint=hint)
    state = made.final_state
    not_objects = [name for name, value in state.items() if not isinstance(value, dict)]
    if not_objects:
        raise InputError(f"the default state of `{not_objects[0]}` is not an object of its fields", hint=hint)
    [loaded] = list(executor.run_sessions([SessionRequest("default-state-loaded", state, [])]))
    if loaded.problem is not None:
        raise InputError(
            f"the classes' default state does not load back into them: {loaded.problem.message} ({loaded.problem.code})",
            hint=hint,
        )
    if loaded.final_digest != made.final_digest:
        differs = sorted(name for name in state if (loaded.final_state or {}).get(name) != state[name])
        raise InputError(
            f"the default state of {', '.join(f'`{name}`' for name in differs)} loads back into another state "
            "(its loader does not take what its state gives)",
            hint=hint,
        )
    return state
