"""Judges of conversations: after the replay kept a conversation, LLM judges (``-J``) read it and vote.

The replay proves what it can: the state (or, where the state cannot be read, the gold's
outputs), what was told, what the tools said. A judge reads what it cannot: whether the agent
served the user as asked, used no value it guessed, and told the user what the tools returned.
Each judge is shown the row's instruction (a blueprint's, when there is one), the conversation
and the gold actions and outputs, and answers ``{"thought", "pass"}``, read by the semantic
judge's rules; the committee decides as the blueprint review's does (``committee_vote``). Only
kept rows are judged, in windows, and rows come out in input order. A judged row records
every vote under ``trajectory_check.judge`` and ``checks.judge``; one the committee turns down
is rejected by the trajectory check with the committee's reason (``review_rejected``, or
``judge_unparseable`` / ``llm_error`` when no judge gave a verdict).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..llm.chat import ChatRequest, ChatService
from ..rows.records import Row, reject
from ..stages.prompts import Template, load_prompt_pair
from ..stages.semantic_check import JUDGE_SCHEMA, JudgeSettings, Verdict, judge_verdict, template_placeholders
from .blueprint_review import committee_vote
from .trajectory_check import KEEP_FIELD, RESULT_FIELD, STAGE
from .verdict import FAILED, PASSED

TEMPLATE = "conversation_review"
CHECK = "judge"
WINDOW = 16  # kept conversations judged together: enough to keep the endpoint busy, few enough to stream


@dataclass(frozen=True)
class ConversationReview:
    """A committee: the judges and how they are asked, and the service that asks them."""

    chat: ChatService
    settings: JudgeSettings
    template: Template

    @classmethod
    def of(cls, chat: ChatService, settings: JudgeSettings, prompts_dir: str | None = None) -> ConversationReview:
        return cls(chat, settings, load_prompt_pair(TEMPLATE, prompts_dir))


def judged(rows: Iterable[Row], review: ConversationReview, window: int = WINDOW) -> Iterator[Row]:
    """Every row, in input order; the ones the replay kept judged by the committee, ``window`` at a time."""
    held: list[Row] = []
    for row in rows:
        held.append(row)
        if sum(1 for each in held if each.get(KEEP_FIELD) is True) >= window:
            yield from _judge_all(held, review)
            held = []
    yield from _judge_all(held, review)


def judge_one(row: Row, review: ConversationReview) -> Row:
    """One row judged, when the replay kept it (``simulate``, which checks its conversations one by one)."""
    return _judge_all([row], review)[0]


def _judge_all(rows: list[Row], review: ConversationReview) -> list[Row]:
    kept = [row for row in rows if row.get(KEEP_FIELD) is True]
    if not kept:
        return rows
    placeholders = template_placeholders(review.template.system, review.template.user)
    asks = [
        ((index, model), review_request(row, model, review)) for index, row in enumerate(kept) for model in review.settings.judges
    ]
    requests = dict(asks)
    votes: dict[int, list[Verdict]] = {index: [] for index in range(len(kept))}
    for (index, model), result in review.chat.map(asks):
        votes[index].append(judge_verdict(review.chat, requests[(index, model)], result, review.settings, placeholders))
    for index, row in enumerate(kept):
        record, problem = committee_vote(votes[index])
        verdict = row[RESULT_FIELD]
        verdict[CHECK] = record
        verdict["checks"][CHECK] = PASSED if problem is None else FAILED
        if problem is not None:
            del row[KEEP_FIELD]
            reject(row, STAGE, problem)
            row[RESULT_FIELD] = {"checks": verdict["checks"], CHECK: record}
    return rows


def review_request(row: Row, model: str, review: ConversationReview) -> ChatRequest:
    """One judge's request for one kept conversation."""
    limit = review.settings.max_result_chars
    conversation = [_shown(message, limit) for message in row.get("messages") or [] if message.get("role") != "system"]
    messages = review.template.render(
        instruction=str(row.get("instruction") or ""),
        conversation=orjson.dumps(conversation, option=orjson.OPT_INDENT_2).decode(),
        actions=orjson.dumps(row.get("actions") or []).decode(),
        outputs=orjson.dumps(row.get("outputs") or []).decode(),
    )
    return ChatRequest(
        key=f"{row.get('id', '')}-judge",
        model=model,
        messages=messages,
        response_schema=JUDGE_SCHEMA if review.settings.with_schema else None,
        offline_task={"task": TEMPLATE, "messages": row.get("messages") or []},
        options={"max_tokens": review.settings.max_tokens} if review.settings.max_tokens else None,
    )


def _shown(message: Any, limit: int) -> Any:
    """A message as the judge reads it, a long content cut."""
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if isinstance(content, str) and len(content) > limit:
        return message | {"content": content[:limit] + f"… (cut, {len(content)} characters in all)"}
    return message
