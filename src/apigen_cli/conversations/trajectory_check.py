"""The trajectory check: a conversation is kept only when replaying it on the real environment proves it right.

For each conversation row (see ``transcript``), two sessions run in the worker pool on fresh
instances of the row's environment: the gold ``actions``, and the calls the conversation made,
in order. ``verdict.judge`` then compares them, outcome first. A kept row gains
``keep_row_after_trajectory_check: true`` and ``trajectory_check``: the final state's digest
and per-call labels backed by state; a rejected one ``rejected_by: trajectory_check`` with its
reason. Rows come out in input order as a bounded stream: up to ``IN_FLIGHT`` conversations
are being replayed at once, and the next starts as soon as the oldest is done and written, so
the workers never idle at the tail of a batch and memory stays flat whatever the input's size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import NamedTuple, Protocol

from ..environments.state import diff
from ..execution.sessions import SessionOutcome, SessionPending, SessionRequest
from ..problems import RowProblem
from ..rows.records import REJECTED_BY, Row, ensure_id, reject
from .transcript import Transcript, read_transcript
from .verdict import Replay, ReplayedCall, judge

STAGE = "trajectory_check"
KEEP_FIELD = "keep_row_after_trajectory_check"
RESULT_FIELD = "trajectory_check"
IN_FLIGHT = 64  # conversations replayed at once: enough to keep every worker busy, few enough to stay small


class SessionRunner(Protocol):
    """What the check needs of the executor: sessions run in parallel, their outcomes in request order."""

    def run_sessions(self, requests: Iterable[SessionRequest]) -> Iterator[SessionOutcome]: ...


class SessionPool(SessionRunner, Protocol):
    """Sessions started one by one and waited for: what a stream keeping a number in flight needs."""

    def submit_session(self, request: SessionRequest) -> SessionPending: ...

    def poll(self) -> None: ...

    def wait(self, pendings: Iterable[SessionPending]) -> None: ...


class _Flight(NamedTuple):
    row: Row
    transcript: Transcript | None  # None: the row was rejected on reading (or before), and passes on as it is
    gold: SessionPending | None
    played: SessionPending | None

    @property
    def done(self) -> bool:
        return all(session is None or session.outcome is not None for session in (self.gold, self.played))


def trajectory_check(
    rows: Iterable[Row], executor: SessionPool, *, in_flight: int = IN_FLIGHT, environment_required: bool = True
) -> Iterator[Row]:
    """Yield every row, in input order, each conversation kept or rejected by the replay of its calls against its gold actions.

    At most ``in_flight`` rows are held at once (being replayed, or done and waiting for an
    older one); each time the oldest is written, the next row is read and its sessions start.
    ``environment_required=False``: the executor is the environment (an MCP server), rows need not name one.
    """
    flight: deque[_Flight] = deque()
    for row in rows:
        flight.append(_started(row, executor, environment_required))
        executor.poll()
        while flight and flight[0].done:
            yield _finished(flight.popleft())
        while len(flight) >= max(1, in_flight):
            executor.wait(session for session in (flight[0].gold, flight[0].played) if session is not None)
            yield _finished(flight.popleft())
    while flight:
        executor.wait(session for session in (flight[0].gold, flight[0].played) if session is not None)
        yield _finished(flight.popleft())


def check_conversation(row: Row, runner: SessionRunner, *, environment_required: bool = True) -> Row:
    """One row checked on its own, its two sessions run together (``simulate``, which keeps its own
    conversations in flight and may already know a replay's outcome)."""
    transcript = _readable(row, environment_required)
    if transcript is None:
        return row
    gold, played = runner.run_sessions(_requests(transcript))
    _settle(row, transcript, gold, played)
    return row


def _requests(transcript: Transcript) -> tuple[SessionRequest, SessionRequest]:
    """The gold's session and the conversation's, on fresh instances of one environment."""
    return (
        SessionRequest("gold", transcript.environment, transcript.actions),
        SessionRequest("played", transcript.environment, [call.action() for call in transcript.calls]),
    )


def _started(row: Row, executor: SessionPool, environment_required: bool) -> _Flight:
    transcript = _readable(row, environment_required)
    if transcript is None:
        return _Flight(row, None, None, None)
    gold, played = (executor.submit_session(request) for request in _requests(transcript))
    return _Flight(row, transcript, gold, played)


def _finished(flight: _Flight) -> Row:
    if flight.transcript is not None:
        assert flight.gold is not None and flight.played is not None
        assert flight.gold.outcome is not None and flight.played.outcome is not None
        _settle(flight.row, flight.transcript, flight.gold.outcome, flight.played.outcome)
    return flight.row


def _readable(row: Row, environment_required: bool = True) -> Transcript | None:
    """The row's transcript, or None after rejecting the row (or passing on one an earlier stage rejected)."""
    if REJECTED_BY in row:
        return None
    ensure_id(row)
    try:
        return read_transcript(row, environment_required=environment_required)
    except RowProblem as error:
        reject(row, STAGE, error.problem)
        return None


def _settle(row: Row, transcript: Transcript, gold: SessionOutcome, played: SessionOutcome) -> None:
    lines: list[str] = []
    if gold.ok and played.ok and gold.final_digest != played.final_digest:
        lines = diff(gold.final_state, played.final_state).lines()
    verdict = judge(transcript, replay_of(gold), replay_of(played), lines)
    if verdict.problem is not None:
        reject(row, STAGE, verdict.problem)
        if verdict.checks:
            row[RESULT_FIELD] = {"checks": verdict.checks}
        return
    row[KEEP_FIELD] = True
    row[RESULT_FIELD] = {"final_digest": played.final_digest, "calls": verdict.labels, "checks": verdict.checks}


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
            call.arguments,
        )
        for call in outcome.calls
    ]
    readable = outcome.problem is not None or outcome.final_digest is not None
    return Replay(outcome.problem, calls, outcome.final_state, outcome.final_digest or "", readable)
