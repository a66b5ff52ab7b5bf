"""The verdict on a conversation, outcome first: the state it leaves, what it told the user, what its tools said.

Graded as tau-bench and BFCL grade, and failing closed where they fail open:

1. the gold actions, replayed on fresh instances, must all succeed (a ground truth that
   errors is no ground truth: ``gold_action_error``), and the replay must run at all;
2. the conversation's calls, replayed on other fresh instances, must run at all (a crash,
   a timeout, a class that does not load reject the row with their own code);
3. the two final states must be equal (``state_mismatch``, the diff in the detail);
4. every expected output must be in an assistant message (``missing_output``);
5. where the row holds tool messages, each must say what the replayed call returned
   (``tool_result_mismatch``): a conversation whose tools said other things than the
   environment does was not made against this environment.

Where the state cannot be read (an MCP server with no state tool), step 3 is replaced by the
gold's outputs: each gold action must be among the conversation's calls, in order, with the
same arguments (``gold_call_missing``), and return there what it returned on the gold's
replay (``gold_output_mismatch``): a server left in another state answers otherwise. Every
verdict says which checks ran and how each went (``checks``: ``passed``, ``failed``,
``not_readable`` for the state, ``not_needed`` for the gold's outputs when the state was read).

A call that errors is not by itself a failure (agents recover). A kept row gets per-call
labels backed by state: ok or not, whether the call changed the state, and whether its
change survives to the final state (no later call changed the same place).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..environments.state import StateError, canonical, canonical_json
from ..problems import Problem, show_value
from .transcript import Transcript, missing_outputs

DIFF_LINES = 20  # state differences named in a `state_mismatch`'s detail


@dataclass(frozen=True)
class ReplayedCall:
    """One call as the environment answered it on replay."""

    name: str
    ok: bool
    result: Any = None  # what it returned, when ``ok``
    error: str = ""  # what it raised, when not
    truncated: bool = False  # the result was shortened: it cannot be compared whole
    changed: bool = False  # the state differed after it
    changed_paths: tuple[str, ...] = ()  # where (``Store.orders["o-2"].status``), as far as recorded
    arguments: Any = None  # what it was called with (matched against the gold's where the state cannot be read)

    def shown(self) -> str:
        """What the call gave, for a message: ``returns <value>`` or ``raises <error>``."""
        return f"returns {show_value(self.result, 120)}" if self.ok else f"raises {show_value(self.error, 120)}"


@dataclass(frozen=True)
class Replay:
    """A sequence of calls replayed on fresh instances: how each went and the state left, or why it could not run."""

    problem: Problem | None
    calls: list[ReplayedCall] = field(default_factory=list)
    final_state: Any = None
    final_digest: str = ""
    state_readable: bool = True  # False: the environment offers no way to read its state (an MCP server without a state tool)


PASSED, FAILED, NOT_READABLE, NOT_NEEDED = "passed", "failed", "not_readable", "not_needed"


@dataclass(frozen=True)
class Verdict:
    problem: Problem | None
    labels: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)  # each check that ran, in order, and how it went


def judge(transcript: Transcript, gold: Replay, played: Replay, diff_lines: Sequence[str] = ()) -> Verdict:
    """The verdict on ``transcript``, given its gold actions' replay and its own calls' replay.

    ``diff_lines``: how ``played``'s final state differs from ``gold``'s, for the detail of a mismatch.
    """
    if gold.problem is not None:
        return Verdict(Problem("gold_replay_error", f"the gold actions could not be replayed: {gold.problem.message}"))
    for position, call in enumerate(gold.calls, start=1):
        if not call.ok:
            return Verdict(Problem("gold_action_error", f"gold action {position} `{call.name}` failed: {call.error}"))
    if played.problem is not None:
        return Verdict(played.problem)
    checks: dict[str, str] = {}

    def failed(check: str, problem: Problem) -> Verdict:
        return Verdict(problem, checks=checks | {check: FAILED})

    if gold.state_readable and played.state_readable:
        checks["state"] = PASSED
        checks["gold_outputs"] = NOT_NEEDED
        if played.final_digest != gold.final_digest:
            return failed("state", _state_mismatch(diff_lines))
    else:
        checks["state"] = NOT_READABLE
        problem = gold_outputs_problem(gold, played)
        if problem is not None:
            return failed("gold_outputs", problem)
        checks["gold_outputs"] = PASSED
    missing = missing_outputs(transcript)
    if missing:
        told = ", ".join(f"`{output}`" for output in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return failed("told", Problem("missing_output", f"no assistant message tells the user {told}"))
    checks["told"] = PASSED
    mismatch = _tool_message_mismatch(transcript, played)
    if mismatch is not None:
        return failed("tool_messages", mismatch)
    checks["tool_messages"] = PASSED
    return Verdict(None, call_labels(played), checks)


def _state_mismatch(diff_lines: Sequence[str]) -> Problem:
    shown = list(diff_lines[:DIFF_LINES]) + ([f"+{len(diff_lines) - DIFF_LINES} more"] if len(diff_lines) > DIFF_LINES else [])
    where = "; ".join(shown) if shown else "the final states differ"
    return Problem("state_mismatch", f"the conversation's final state is not the gold actions' (gold -> conversation): {where}")


def gold_outputs_problem(gold: Replay, played: Replay) -> Problem | None:
    """Where the state cannot be read: each gold action made by the conversation, in order, with the same arguments,
    returning what it returned on the gold's replay; or why not. Calls between them are free (agents look things up)."""
    start = 0
    for number, wanted in enumerate(gold.calls, start=1):
        found = next(
            (
                index
                for index in range(start, len(played.calls))
                if played.calls[index].name == wanted.name and _same_value(played.calls[index].arguments, wanted.arguments)
            ),
            None,
        )
        if found is None:
            return Problem(
                "gold_call_missing",
                f"gold action {number} `{wanted.name}` {show_value(wanted.arguments, 120)} is not among the conversation's "
                "calls after the gold actions before it (the state cannot be read, so each gold action must be made, in order)",
            )
        call, start = played.calls[found], found + 1
        if call.ok != wanted.ok or (call.ok and not _same_result(call, wanted)):
            return Problem(
                "gold_output_mismatch",
                f"gold action {number} `{wanted.name}` {wanted.shown()} on the gold's replay, but {call.shown()} "
                f"as call {found + 1} of the conversation's: the server was left in another state",
            )
    return None


def _same_result(call: ReplayedCall, wanted: ReplayedCall) -> bool:
    if call.truncated or wanted.truncated:  # cut results compare as they were cut, both at the same length
        return call.truncated == wanted.truncated and call.result == wanted.result
    return _same_value(call.result, wanted.result)


def call_labels(played: Replay) -> list[dict[str, Any]]:
    """Per call: its name, ok, whether it changed the state, and whether that change survives to the end."""
    labels = []
    for index, call in enumerate(played.calls):
        later = [path for other in played.calls[index + 1 :] for path in other.changed_paths]
        kept = call.changed and not any(_overlaps(path, other) for path in call.changed_paths for other in later)
        labels.append({"name": call.name, "ok": call.ok, "changed_state": call.changed, "change_kept": kept})
    return labels


def _overlaps(path: str, other: str) -> bool:
    """Whether two changed places are one, or one holds the other (``a.b`` and ``a.b["c"]``)."""
    return path == other or other.startswith((path + ".", path + "[")) or path.startswith((other + ".", other + "["))


def _tool_message_mismatch(transcript: Transcript, played: Replay) -> Problem | None:
    for position, (call, replayed) in enumerate(zip(transcript.calls, played.calls, strict=False), start=1):
        if call.call_id is None or call.call_id not in transcript.tool_messages or replayed.truncated:
            continue
        said = transcript.tool_messages[call.call_id]
        if not said_the_same(said, replayed):
            return Problem(
                "tool_result_mismatch",
                f"call {position} `{call.name}`: its tool message says {show_value(said, 120)}, but replayed it {replayed.shown()}",
            )
    return None


def said_the_same(message: Any, replayed: ReplayedCall) -> bool:
    """Whether a tool message holds what the replayed call gave: the same value (a JSON text read as one), or its error."""
    if not replayed.ok:
        return isinstance(message, str) and bool(replayed.error) and _plain(replayed.error) in _plain(message)
    result = replayed.result
    if message == result:
        return True
    if isinstance(message, str):
        if isinstance(result, str):
            return message.strip() == result.strip()
        try:
            return _same_value(json.loads(message), result)
        except (ValueError, RecursionError):
            return False
    return _same_value(message, result)


def _same_value(first: Any, second: Any) -> bool:
    """Equal as data, compared as states are: in canonical form (``25`` is ``25.0``, ``True`` is not ``1``)."""
    try:
        return bool(canonical_json(canonical(first)) == canonical_json(canonical(second)))
    except StateError:  # past the state's bounds: not shown to be the same
        return False


def _plain(text: str) -> str:
    return " ".join(text.lower().split())
