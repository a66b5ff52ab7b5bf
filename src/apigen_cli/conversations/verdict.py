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


@dataclass(frozen=True)
class Replay:
    """A sequence of calls replayed on fresh instances: how each went and the state left, or why it could not run."""

    problem: Problem | None
    calls: list[ReplayedCall] = field(default_factory=list)
    final_state: Any = None
    final_digest: str = ""


@dataclass(frozen=True)
class Verdict:
    problem: Problem | None
    labels: list[dict[str, Any]] = field(default_factory=list)


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
    if played.final_digest != gold.final_digest:
        shown = list(diff_lines[:DIFF_LINES]) + (
            [f"+{len(diff_lines) - DIFF_LINES} more"] if len(diff_lines) > DIFF_LINES else []
        )
        where = "; ".join(shown) if shown else "the final states differ"
        return Verdict(
            Problem("state_mismatch", f"the conversation's final state is not the gold actions' (gold -> conversation): {where}")
        )
    missing = missing_outputs(transcript)
    if missing:
        told = ", ".join(f"`{output}`" for output in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return Verdict(Problem("missing_output", f"no assistant message tells the user {told}"))
    mismatch = _tool_message_mismatch(transcript, played)
    if mismatch is not None:
        return Verdict(mismatch)
    return Verdict(None, call_labels(played))


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
            now = replayed.result if replayed.ok else replayed.error
            return Problem(
                "tool_result_mismatch",
                f"call {position} `{call.name}`: its tool message says {show_value(said, 120)}, "
                f"but replayed it {'returns' if replayed.ok else 'raises'} {show_value(now, 120)}",
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
