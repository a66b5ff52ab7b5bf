"""The trajectory check: a conversation is kept only when replaying it on the real environment proves it right.

For each conversation row (see ``transcript``), two sessions run in the worker pool on fresh
instances of the row's environment: the gold ``actions``, and the calls the conversation made,
in order. ``verdict.judge`` then compares them, outcome first. A kept row gains
``keep_row_after_trajectory_check: true`` and ``trajectory_check``: the final state's digest
and per-call labels backed by state; a rejected one ``rejected_by: trajectory_check`` with its
reason. Rows come out in input order; a bounded window of them is replayed at a time, so
memory stays flat whatever the input's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from ..environments.state import diff
from ..execution.sessions import SessionOutcome, SessionRequest
from ..problems import RowProblem
from ..rows.records import REJECTED_BY, Row, ensure_id, reject
from .transcript import Transcript, read_transcript
from .verdict import Replay, ReplayedCall, judge

STAGE = "trajectory_check"
KEEP_FIELD = "keep_row_after_trajectory_check"
RESULT_FIELD = "trajectory_check"
WINDOW = 64  # rows replayed together: enough to keep every worker busy, few enough to stay small


class SessionRunner(Protocol):
    """What the check needs of the executor: sessions run in parallel, their outcomes in request order."""

    def run_sessions(self, requests: Iterable[SessionRequest]) -> Iterator[SessionOutcome]: ...


def trajectory_check(rows: Iterable[Row], executor: SessionRunner, *, window: int = WINDOW) -> Iterator[Row]:
    """Yield every row, each conversation kept or rejected by the replay of its calls against its gold actions."""
    batch: list[tuple[Row, Transcript | None]] = []
    for row in rows:
        batch.append((row, _readable(row)))
        if len(batch) >= window:
            yield from _checked(batch, executor)
            batch = []
    if batch:
        yield from _checked(batch, executor)


def _readable(row: Row) -> Transcript | None:
    """The row's transcript, or None after rejecting the row (or passing on one an earlier stage rejected)."""
    if REJECTED_BY in row:
        return None
    ensure_id(row)
    try:
        return read_transcript(row)
    except RowProblem as error:
        reject(row, STAGE, error.problem)
        return None


def _checked(batch: list[tuple[Row, Transcript | None]], executor: SessionRunner) -> Iterator[Row]:
    requests = []
    for index, (_row, transcript) in enumerate(batch):
        if transcript is not None:
            requests.append(SessionRequest((index, "gold"), transcript.environment, transcript.actions))
            requests.append(
                SessionRequest((index, "played"), transcript.environment, [call.action() for call in transcript.calls])
            )
    outcomes = {outcome.key: outcome for outcome in executor.run_sessions(requests)}
    for index, (row, transcript) in enumerate(batch):
        if transcript is not None:
            _settle(row, transcript, outcomes[(index, "gold")], outcomes[(index, "played")])
        yield row


def _settle(row: Row, transcript: Transcript, gold: SessionOutcome, played: SessionOutcome) -> None:
    lines: list[str] = []
    if gold.ok and played.ok and gold.final_digest != played.final_digest:
        lines = diff(gold.final_state, played.final_state).lines()
    verdict = judge(transcript, replay_of(gold), replay_of(played), lines)
    if verdict.problem is not None:
        reject(row, STAGE, verdict.problem)
        return
    row[KEEP_FIELD] = True
    row[RESULT_FIELD] = {"final_digest": played.final_digest, "calls": verdict.labels}


def replay_of(outcome: SessionOutcome) -> Replay:
    """A session's outcome as the verdict reads it."""
    calls = [
        ReplayedCall(
            call.name,
            call.ok,
            call.outcome.result,
            "" if call.ok else (call.outcome.message or call.outcome.error_type),
            call.outcome.truncated,
            bool(call.changed),
            tuple(change.path for change in call.changes),
        )
        for call in outcome.calls
    ]
    return Replay(outcome.problem, calls, outcome.final_state, outcome.final_digest or "")
