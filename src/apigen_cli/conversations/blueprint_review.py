"""The review committee: LLM judges read a blueprint that passed every other check and vote on it.

Each judge (``-J``, repeatable) is shown the policy, the instruction, the actions with what
they returned on replay, the diff they made to the state and the outputs, and answers
``{"thought", "pass"}`` as the semantic judge does (read by the same rules, asked again when
its reply holds no verdict). The majority of readable verdicts decides and a tie fails; a
blueprint no judge gave a verdict on is rejected with the first judge's problem (the
committee fails closed). Every judge's vote and reason is kept in the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..llm.chat import ChatRequest, ChatService
from ..problems import Problem
from ..rows.records import Row
from ..stages.prompts import Template, load_prompt_pair
from ..stages.semantic_check import JUDGE_SCHEMA, JudgeSettings, Verdict, judge_verdict, template_placeholders
from .blueprint_generation import KIND_FIELD, KIND_INSTRUCTIONS, NO_POLICY, POSITIVE

TEMPLATE = "blueprint_review"
REVIEW = "blueprint_review"  # the check's name, as rejected_by


@dataclass(frozen=True)
class Review:
    """A committee: the judges and how they are asked, the service that asks them, the policy they read."""

    chat: ChatService
    settings: JudgeSettings
    template: Template
    policy: str | None = None

    @classmethod
    def of(cls, chat: ChatService, settings: JudgeSettings, policy: str | None, prompts_dir: str | None = None) -> Review:
        return cls(chat, settings, load_prompt_pair(TEMPLATE, prompts_dir), policy)


def review_request(row: Row, model: str, review: Review) -> ChatRequest:
    """One judge's request for one blueprint (which passed execution: its results and diff are in the row)."""
    execution = row["blueprint_check"]["execution"]
    limit = review.settings.max_result_chars
    shown = [
        {"name": action["name"], "arguments": action["arguments"], "returned": _shortened(result, limit)}
        for action, result in zip(row["actions"], execution["results"], strict=False)
    ]
    diff = execution.get("diff") or []
    kind = row.get(KIND_FIELD, POSITIVE)
    messages = review.template.render(
        policy=(review.policy or NO_POLICY).strip(),
        instruction=str(row.get("instruction", "")),
        actions=orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode(),
        diff="\n".join(diff) if diff else "(nothing changed)",
        outputs=orjson.dumps(row.get("outputs") or []).decode(),
        kind_instruction=KIND_INSTRUCTIONS.get(kind, KIND_INSTRUCTIONS[POSITIVE]),
    )
    return ChatRequest(
        key=f"{row.get('id', '')}-review",
        model=model,
        messages=messages,
        response_schema=JUDGE_SCHEMA if review.settings.with_schema else None,
        offline_task={
            "task": "blueprint_review",
            "instruction": row.get("instruction", ""),
            "actions": row["actions"],
            "results": execution["results"],
            "diff": diff,
            "kind": kind,
        },
        options={"max_tokens": review.settings.max_tokens} if review.settings.max_tokens else None,
    )


def _shortened(result: dict[str, Any], limit: int) -> Any:
    value = result.get("result") if result.get("ok") else {"error": result.get("error")}
    text = orjson.dumps(value, default=str).decode()
    return value if len(text) <= limit else text[:limit] + f"… (cut, {len(text)} characters in all)"


def review_rows(rows: Sequence[Row], review: Review) -> list[Problem | None]:
    """Each row's committee decision (None: passed), with every judge's vote written into the row."""
    placeholders = template_placeholders(review.template.system, review.template.user)
    asks = [
        ((index, model), review_request(row, model, review)) for index, row in enumerate(rows) for model in review.settings.judges
    ]
    votes: dict[int, list[Verdict]] = {index: [] for index in range(len(rows))}
    requests = dict(asks)
    for (index, model), result in review.chat.map(asks):
        votes[index].append(judge_verdict(review.chat, requests[(index, model)], result, review.settings, placeholders))
    return [decide(row, votes[index]) for index, row in enumerate(rows)]


def decide(row: Row, verdicts: Sequence[Verdict]) -> Problem | None:
    """The majority of readable verdicts (a tie fails), recorded under ``blueprint_check.review``."""
    row["blueprint_check"]["review"], problem = committee_vote(verdicts)
    return problem


def committee_vote(verdicts: Sequence[Verdict]) -> tuple[dict[str, Any], Problem | None]:
    """What a committee decided: the record of every vote, and the problem when it did not pass (None: passed).

    The majority of readable verdicts decides, a tie fails, and no readable verdict is the first judge's problem."""
    readable = [verdict for verdict in verdicts if verdict.passed is not None]
    yes = sum(1 for verdict in readable if verdict.passed)
    passed = bool(readable) and yes * 2 > len(readable)
    record = {
        "ok": passed,
        "judges": [
            {"model": verdict.model, "pass": verdict.passed, "thought": verdict.thought}
            | ({"error": verdict.problem.code} if verdict.problem else {})
            for verdict in verdicts
        ],
    }
    if not readable:
        problem = verdicts[0].problem if verdicts and verdicts[0].problem else None
        return record, problem or Problem("judge_unparseable", "no judge gave a verdict")
    if passed:
        return record, None
    reasons = [verdict.thought for verdict in readable if verdict.passed is False and verdict.thought]
    said = reasons[0] if reasons else "the committee found the task wrong"
    return record, Problem("review_rejected", f"{len(readable) - yes} of {len(readable)} judges said no: {said}")
