"""The checks a blueprint must pass before it is used, each rejecting with its own stage and reason code.

1. **format** (``blueprint_format``): every action names a tool of the environment's library,
   with arguments valid for its schema (the schema checks of format-check, their codes:
   ``unknown_tool``, ``missing_required_argument``, ``invalid_type``...).
2. **execution** (``blueprint_execution``): the actions replayed in order, in one session on
   fresh instances of the initial state: every action succeeds (``action_error``) and no
   result is error-shaped (``error_result``, exec-check's rule and settings); a session that cannot
   run keeps its own code (``timeout``, ``crashed``, ``environment_load_error``).
3. **necessity** (``blueprint_necessity``): every write changes the state
   (``write_without_change``), and dropping any one action that changed the state changes the
   final state (``unnecessary_write``): one replay per such action, all run in parallel. A
   blueprint negative on purpose (``blueprint_kind``: a refusal, a missing detail) must instead
   change nothing (``negative_changes_state``).
4. **policy** (``blueprint_policy``, with ``--policy-checks``): the user's check functions, given
   the initial state, the actions, their results and the final state, find no violation
   (``policy_violation``) and run without error (``policy_check_error``); see ``policy_checks``.
5. **review** (``blueprint_review``, with ``-J``): a committee of LLM judges, shown the
   instruction, the actions with their results and the diff, votes; the majority decides
   (``review_rejected``); see ``blueprint_review``.

A blueprint that passes gets ``keep_row_after_blueprint_check: true``; every blueprint that
reached a check gets ``blueprint_check``, what the checks found so far: per action its result
or error and whether it changed the state, the final digest, the diff from the initial state,
the necessity replays. The environment is never touched to make a task fit: a blueprint that
fails is rejected, not repaired.

Blueprints stream, as ``trajectory_check``'s conversations do: up to ``IN_FLIGHT`` are held, each
moves on to its next check as soon as the sessions or calls of the last one end, and the oldest
is written as soon as it is done, so the workers never idle at the tail of a batch and a killed
run redoes only the blueprints held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..environments.state import diff
from ..execution.calls import Pending
from ..execution.sessions import SessionOutcome, SessionPending, SessionRequest
from ..problems import Problem, RowProblem
from ..rows.records import REJECTED_BY, Row, reject
from ..stages.exec_check import ExecPolicy
from .blueprint_generation import KIND_FIELD, NEGATIVE_KINDS
from .blueprint_review import REVIEW, Review, review_rows
from .environment_tools import WRITE, EnvironmentTools
from .policy_checks import PolicyChecks, policy_problem
from .trajectory_check import SessionPool
from .transcript import read_actions, read_environment

FORMAT = "blueprint_format"
EXECUTION = "blueprint_execution"
NECESSITY = "blueprint_necessity"
POLICY = "blueprint_policy"
CHECKS = (FORMAT, EXECUTION, NECESSITY)  # always run; POLICY with `--policy-checks`, REVIEW with `-J`
KEEP_FIELD = "keep_row_after_blueprint_check"
RESULT_FIELD = "blueprint_check"
IN_FLIGHT = 64  # blueprints held at once: enough to keep the workers busy, few enough to stay small
DIFF_LINES = 50  # changes recorded in a row's diff
MAX_ACTIONS = 64  # a blueprint with more is refused: each action that changes the state costs a replay of them all


@dataclass
class _Pending:
    """One blueprint on its way through the checks: the sessions and calls it waits on, and what they found."""

    row: Row
    actions: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    replaying: SessionPending | None = None  # the replay of its actions, until it ends
    replay: SessionOutcome | None = None
    dropped: list[tuple[int, SessionPending]] | None = None  # necessity: the replays without one action each
    policy_calls: list[Pending] | None = None
    live: bool = True

    @property
    def busy(self) -> bool:
        """Whether a session or a call of its checks before review has not ended yet (``_advance`` moves it on)."""
        return self.replaying is not None or self.dropped is not None or self.policy_calls is not None


@dataclass(frozen=True)
class _Checks:
    environment: EnvironmentTools
    executor: SessionPool
    policy: ExecPolicy
    policy_checks: PolicyChecks | None


def check_blueprints(
    rows: Iterable[Row],
    environment: EnvironmentTools,
    executor: SessionPool,
    *,
    policy: ExecPolicy | None = None,
    policy_checks: PolicyChecks | None = None,
    review: Review | None = None,
    in_flight: int = IN_FLIGHT,
) -> Iterator[Row]:
    """Yield every row in input order, each blueprint kept or rejected by the first check it fails.

    ``policy``: what makes a result that came back a failure (error-shaped, or empty with
    ``--empty-result fail``), as in exec-check; ``policy_checks``: the user's checks (``--policy-checks``); ``review``: the committee (``-J``).

    A bounded stream, as ``trajectory_check`` is: at most ``in_flight`` blueprints are held
    (being replayed, or done and waiting for an older one); each moves to its next check as
    soon as its sessions end, and the oldest is written as soon as it is done, so the workers
    never idle at the tail of a batch and a run killed mid-way redoes only the blueprints held.
    The blueprints done together at the head are reviewed together.
    """
    checks = _Checks(environment, executor, policy or ExecPolicy(), policy_checks)
    flight: deque[_Pending] = deque()
    for row in rows:
        pending = _Pending(row)
        _start(pending, checks)
        flight.append(pending)
        _poll(checks)
        _advance_all(flight, checks)
        yield from _done_at_head(flight, checks, review)
        while len(flight) >= max(1, in_flight):
            _settle_head(flight, checks)
            yield from _done_at_head(flight, checks, review)
    while flight:
        _settle_head(flight, checks)
        yield from _done_at_head(flight, checks, review)


def _poll(checks: _Checks) -> None:
    checks.executor.poll()
    if checks.policy_checks is not None:
        checks.policy_checks.executor.poll()


def _advance_all(flight: deque[_Pending], checks: _Checks) -> None:
    """Every blueprint held moves on to its next check as soon as its sessions end, not when it is the oldest."""
    for pending in flight:
        _advance(pending, checks)


def _settle_head(flight: deque[_Pending], checks: _Checks) -> None:
    """Wait until the oldest blueprint's checks before review are done, the others moving on meanwhile."""
    head = flight[0]
    _advance(head, checks)
    while head.busy:
        if head.replaying is not None:
            checks.executor.wait([head.replaying])
        elif head.dropped is not None:
            checks.executor.wait([next(session for _position, session in head.dropped if session.outcome is None)])
        elif head.policy_calls is not None and checks.policy_checks is not None:
            checks.policy_checks.executor.wait([next(call for call in head.policy_calls if call.outcome is None)])
        _advance_all(flight, checks)


def _done_at_head(flight: deque[_Pending], checks: _Checks, review: Review | None) -> Iterator[Row]:
    """The oldest blueprints whose checks are done, reviewed together, in input order."""
    done: list[_Pending] = []
    while flight:
        _advance(flight[0], checks)
        if flight[0].busy:
            break
        done.append(flight.popleft())
    if review is not None:
        reviewed = [pending for pending in done if pending.live]
        if reviewed:
            for pending, problem in zip(reviewed, review_rows([pending.row for pending in reviewed], review), strict=True):
                if problem is not None:
                    _reject(pending, REVIEW, problem)
    for pending in done:
        if pending.live:
            pending.row[KEEP_FIELD] = True
        yield pending.row


def _start(pending: _Pending, checks: _Checks) -> None:
    _format(pending, checks.environment)
    if pending.live:
        pending.replaying = checks.executor.submit_session(SessionRequest("replay", pending.environment, pending.actions))


def _advance(pending: _Pending, checks: _Checks) -> None:
    """Move the blueprint on through the checks whose sessions or calls have ended."""
    if pending.replaying is not None:
        if pending.replaying.outcome is None:
            return
        pending.replay, pending.replaying = pending.replaying.outcome, None
        _execution(pending, checks.policy)
        if pending.live:
            _start_necessity(pending, checks)
    if pending.dropped is not None:
        if any(session.outcome is None for _position, session in pending.dropped):
            return
        replays = [(position, session.outcome) for position, session in pending.dropped if session.outcome is not None]
        pending.dropped = None
        if pending.live and "necessity" not in pending.row[RESULT_FIELD]:  # a negative blueprint's is settled
            _settle_necessity(pending, replays)
        if pending.live and checks.policy_checks is not None:
            _start_policy(pending, checks.policy_checks)
    if pending.policy_calls is not None:
        if any(call.outcome is None for call in pending.policy_calls):
            return
        assert checks.policy_checks is not None
        _settle_policy(pending, checks.policy_checks)
        pending.policy_calls = None


def _format(pending: _Pending, environment: EnvironmentTools) -> None:
    row = pending.row
    if REJECTED_BY in row:
        pending.live = False
        return
    try:
        pending.environment = read_environment(row)
        pending.actions = read_actions(row)
    except RowProblem as error:
        _reject(pending, FORMAT, error.problem)
        return
    problem = format_problem(pending.actions, environment, negative=row.get(KIND_FIELD) in NEGATIVE_KINDS)
    if problem is not None:
        _reject(pending, FORMAT, problem)
        return
    row[RESULT_FIELD] = {"format": {"ok": True}}


def format_problem(actions: list[dict[str, Any]], environment: EnvironmentTools, *, negative: bool = False) -> Problem | None:
    """The first action that names no tool of the environment or whose arguments do not fit its schema.

    A ``negative`` blueprint (a refusal) may have no action; any other has one at least.
    """
    if not actions and not negative:
        return Problem("no_actions", "the blueprint has no actions: it makes at least one call")
    if len(actions) > MAX_ACTIONS:
        return Problem("too_many_actions", f"the blueprint has {len(actions)} actions, more than the {MAX_ACTIONS} a task may")
    for position, action in enumerate(actions, start=1):
        tool = environment.tools.get(action["name"])
        if tool is None:
            known = ", ".join(f"`{name}`" for name in sorted(environment.tools)[:20])
            return Problem(
                "unknown_tool", f"action {position} names `{action['name']}`, no tool of the environment (its tools: {known})"
            )
        problem = tool.api.tool.parameters.check_members(action["arguments"], "")
        if problem is not None:
            return Problem(problem.code, f"action {position} `{tool.name}`: {problem.message}")
    return None


def _execution(pending: _Pending, policy: ExecPolicy) -> None:
    outcome = pending.replay
    assert outcome is not None
    verdict: dict[str, Any] = {"ok": False, "results": [_result(call) for call in outcome.calls]}
    pending.row[RESULT_FIELD]["execution"] = verdict
    problem = execution_problem(outcome, policy)
    if problem is not None:
        _reject(pending, EXECUTION, problem)
        return
    lines = diff(outcome.initial_state, outcome.final_state).lines() if outcome.initial_state is not None else []
    verdict.update(
        ok=True,
        final_digest=outcome.final_digest,
        diff=lines[:DIFF_LINES] + ([f"+{len(lines) - DIFF_LINES} more lines"] if len(lines) > DIFF_LINES else []),
    )


def execution_problem(outcome: SessionOutcome, policy: ExecPolicy) -> Problem | None:
    """Why the replay of a blueprint's actions fails it, or None; a session that could not run keeps its own code."""
    if outcome.problem is not None:
        return outcome.problem
    for position, call in enumerate(outcome.calls, start=1):
        if not call.ok:
            said = f"{call.outcome.error_type}: {call.outcome.message}" if call.outcome.error_type else call.outcome.message
            return Problem("action_error", f"action {position} `{call.name}` failed on replay: {said}")
        failed = policy.problem_with(call.outcome.result)
        if failed is not None:
            return Problem(failed.code, f"action {position} `{call.name}` {failed.message}")
    return None


def _result(call: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": call.name, "ok": call.ok}
    if call.ok:
        entry["result"] = call.outcome.result
    else:
        entry["error"] = call.outcome.message or call.outcome.error_type
    entry["changed_state"] = bool(call.changed)
    return entry


def _start_necessity(pending: _Pending, checks: _Checks) -> None:
    """A write that changed nothing fails at once; else one replay without each action that changed the state starts."""
    replay = pending.replay
    assert replay is not None
    if pending.row.get(KIND_FIELD) in NEGATIVE_KINDS:
        _unchanged(pending, replay)
        pending.dropped = []  # no replay to wait for: the policy checks come next
        return
    for position, (action, call) in enumerate(zip(pending.actions, replay.calls, strict=True), start=1):
        tool = checks.environment.tools[action["name"]]
        if tool.effect == WRITE and not call.changed:
            _reject(
                pending,
                NECESSITY,
                Problem("write_without_change", f"action {position} `{action['name']}` is a write and changed nothing"),
            )
            return
    pending.dropped = [
        (
            position,
            checks.executor.submit_session(
                SessionRequest(position, pending.environment, pending.actions[:position] + pending.actions[position + 1 :])
            ),
        )
        for position, call in enumerate(replay.calls)
        if call.changed
    ]


def _settle_necessity(pending: _Pending, replays: list[tuple[int, SessionOutcome]]) -> None:
    """Dropping any one action that changed the state must change the final state."""
    replay = pending.replay
    assert replay is not None
    pending.row[RESULT_FIELD]["necessity"] = {"ok": False, "replays": len(replays)}
    for position, outcome in replays:
        if outcome.ok and outcome.final_digest == replay.final_digest:
            name = pending.actions[position]["name"]
            _reject(
                pending,
                NECESSITY,
                Problem(
                    "unnecessary_write",
                    f"action {position + 1} `{name}` changes the state, but without it the final state is the same: "
                    "the task does not need it",
                ),
            )
            return
    pending.row[RESULT_FIELD]["necessity"]["ok"] = True


def _unchanged(pending: _Pending, replay: SessionOutcome) -> None:
    """A negative blueprint's gold leaves the state as it was: the user's wish is not carried out."""
    changed = [position for position, call in enumerate(replay.calls, start=1) if call.changed]
    if changed:
        name = pending.actions[changed[0] - 1]["name"]
        kind = pending.row.get(KIND_FIELD)
        _reject(
            pending,
            NECESSITY,
            Problem(
                "negative_changes_state", f"the blueprint is a {kind}, and its action {changed[0]} `{name}` changes the state"
            ),
        )
        return
    pending.row[RESULT_FIELD]["necessity"] = {"ok": True, "replays": 0, "unchanged": True}


def _start_policy(pending: _Pending, policy_checks: PolicyChecks) -> None:
    """Every check of ``--policy-checks`` on the blueprint, started together."""
    replay = pending.replay
    assert replay is not None
    everything = {
        "initial_state": replay.initial_state,
        "actions": pending.actions,
        "results": pending.row[RESULT_FIELD]["execution"]["results"],
        "final_state": replay.final_state,
    }
    pending.policy_calls = [
        policy_checks.executor.submit(check.name, check.arguments(everything)) for check in policy_checks.checks
    ]


def _settle_policy(pending: _Pending, policy_checks: PolicyChecks) -> None:
    calls = pending.policy_calls or []
    problem = policy_problem(policy_checks.checks, [call.outcome for call in calls if call.outcome is not None])
    pending.row[RESULT_FIELD]["policy"] = {"ok": problem is None, "checks": [check.name for check in policy_checks.checks]}
    if problem is not None:
        _reject(pending, POLICY, problem)


def _reject(pending: _Pending, check: str, problem: Problem) -> None:
    pending.live = False
    reject(pending.row, check, problem)
    pending.row[KEEP_FIELD] = False
