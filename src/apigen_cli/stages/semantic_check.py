"""Stage 4 of the pipeline, the semantic check: an LLM judge reads each row.

The judge sees every tool the row offered (full schemas, so it can tell a wrong
choice among several), the query, the calls and their execution results, and
answers ``{"thought": ..., "pass": "yes" | "no"}``. Replies are read tolerantly;
one that still cannot be read is asked again, up to a limit. The reply template in
the prompt carries no verdict (small models copy it whole), and a reply that repeats
the template's placeholder text is no verdict either. Several judges make a
committee that decides by majority (a tie fails), with every judge's thought kept.
Only ``thought`` and ``keep_row_after_semantic_check`` (and ``judges`` for a
committee) are written: keys of the judge's reply never reach the row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson

from ..llm.chat import ChatRequest, ChatResult, ChatService, cut_off_problem, map_optional
from ..problems import Problem
from ..rows.records import ANSWERS, IRRELEVANCE, KIND, QUERY, REJECTED_BY, TOOLS, Row, reject
from ..schema.tools import model_view
from .extract import NOT_FOUND, find_json
from .prompts import PromptSet

T = TypeVar("T")

STAGE = "semantic_check"
KEEP_FIELD = "keep_row_after_semantic_check"
THOUGHT = "thought"

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"thought": {"type": "string"}, "pass": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["thought", "pass"],
    "additionalProperties": False,
}
_YES = {"yes", "y", "true", "pass", "passed", "1"}
_NO = {"no", "n", "false", "fail", "failed", "0"}
_REASK = (
    "Your reply could not be read as a verdict. Answer again with only a JSON object and no other text: "
    'its key "thought" holds your own reasoning about this item, its key "pass" the word yes or the word no.'
)
# A reply template in a prompt: a JSON object with a "thought" key; its values are placeholders, not answers.
_TEMPLATE = re.compile(r'\{[^{}]*"thought"[^{}]*\}')
_ANGLE_PLACEHOLDER = re.compile(r"^\s*<[^<>]*>\s*$")


@dataclass(frozen=True)
class JudgeSettings:
    """How rows are judged: by which models, how much of each result they see, what is retried."""

    judges: tuple[str, ...] = ("offline",)
    include_failed: bool = False
    max_result_chars: int = 2000
    with_schema: bool = False
    max_reasks: int = 2
    max_tokens: int | None = 512  # per reply: a verdict is a short JSON object; None or 0 sends no limit


@dataclass(frozen=True)
class Verdict:
    """One judge's reading of one row: ``passed`` is None when no verdict could be had."""

    model: str
    passed: bool | None
    thought: str
    problem: Problem | None = None


def template_placeholders(*texts: str) -> frozenset[str]:
    """The placeholder texts of the reply template(s) in a judge prompt's templates, lower-cased.

    ``{"thought": "<your reasoning>", "pass": "<yes or no>"}`` gives ``<your reasoning>``
    and ``<yes or no>``. Read from the templates, not the rendered prompt, so a row's own
    data never counts; works for custom prompts (``--prompts``) too.
    """
    found: set[str] = set()
    for text in texts:
        for match in _TEMPLATE.finditer(text):
            parsed = find_json(match.group(0))
            if isinstance(parsed, dict):
                found.update(value.strip().lower() for value in parsed.values() if isinstance(value, str) and value.strip())
    return frozenset(found)


def read_verdict(text: str, placeholders: frozenset[str] = frozenset()) -> tuple[bool, str] | None:
    """``(passed, thought)`` from a judge's reply, or ``None`` when it holds no verdict.

    Accepts ``pass`` or ``passes`` in any case, "yes"/"no" in any case, booleans,
    a fence or prose around the JSON. A reply whose ``thought`` is a placeholder
    (one of ``placeholders``, or any ``<...>``) copied the template: no verdict.
    """
    parsed = find_json(text)
    if parsed is NOT_FOUND or not isinstance(parsed, dict):
        return None
    fields = {str(key).strip().lower(): value for key, value in parsed.items()}
    copied = fields.get("thought")
    if isinstance(copied, str) and (copied.strip().lower() in placeholders or _ANGLE_PLACEHOLDER.match(copied)):
        return None
    verdict = next((fields[key] for key in ("pass", "passes", "passed", "verdict", "decision") if key in fields), None)
    if isinstance(verdict, bool):
        passed = verdict
    elif isinstance(verdict, str) and verdict.strip().lower().strip(".!") in _YES | _NO:
        passed = verdict.strip().lower().strip(".!") in _YES
    else:
        return None
    thought = fields.get("thought", "")
    return passed, thought if isinstance(thought, str) else orjson.dumps(thought).decode()


def _truncate(value: Any, limit: int) -> Any:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[:limit] + f"… (truncated, {len(text)} characters in all)"


def _shown_results(row: Row, limit: int) -> Any:
    results = row.get("execution_result")
    if not isinstance(results, list):
        return "(the calls were not executed)"
    shown = []
    for entry in results:
        if isinstance(entry, dict):
            entry = {key: (_truncate(value, limit) if key in ("result", "error") else value) for key, value in entry.items()}
        shown.append(entry)
    return shown


def judge_request(row: Row, model: str, prompts: PromptSet, settings: JudgeSettings) -> ChatRequest:
    """The judge's chat request for one row."""
    tools = [model_view(tool) for tool in (row.get(TOOLS) or [])]
    results = _shown_results(row, settings.max_result_chars)

    def dumps(value: Any) -> str:
        return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()

    messages = prompts.judge.render(
        tools=dumps(tools), query=str(row.get(QUERY, "")), answers=dumps(row.get(ANSWERS)), execution_result=dumps(results)
    )
    return ChatRequest(
        key=str(row.get("id", "")),
        model=model,
        messages=messages,
        response_schema=JUDGE_SCHEMA if settings.with_schema else None,
        offline_task={
            "task": "judge",
            "tools": tools,
            "query": row.get(QUERY),
            "answers": row.get(ANSWERS),
            "execution_result": row.get("execution_result"),
        },
        options={"max_tokens": settings.max_tokens} if settings.max_tokens else None,
    )


NOT_EXECUTED = Problem(
    "not_exec_checked", "the row has no `execution_result`, which the judge reads: run `apigen exec-check` first"
)


def _executed(row: Row) -> bool:
    """Has the row been through the execution check (or does it need none, as an irrelevance row)?"""
    return isinstance(row.get("execution_result"), list) or row.get(KIND) == IRRELEVANCE


def _wants_judging(row: Row, settings: JudgeSettings) -> bool:
    if REJECTED_BY not in row:
        return True
    return settings.include_failed and row[REJECTED_BY] == "exec_check"


def _reask_request(request: ChatRequest, result: ChatResult, placeholders: frozenset[str]) -> ChatRequest | None:
    """The request asking again after a reply with text but no verdict (the unreadable reply shown), or None."""
    if not result.ok or result.cut_off or read_verdict(result.text or "", placeholders) is not None:
        return None  # (a reply cut by the token budget would be cut again: no re-ask)
    messages = [*request.messages, {"role": "assistant", "content": result.text or ""}, {"role": "user", "content": _REASK}]
    return replace(request, messages=messages)


def judge_verdict(
    chat: ChatService, request: ChatRequest, result: ChatResult, settings: JudgeSettings, placeholders: frozenset[str]
) -> Verdict:
    """Read a judge's answer, asking again (with the unreadable reply shown) up to the limit."""
    attempts = 0
    while True:
        if not result.ok:
            problem = result.error or Problem("llm_error", "the judge returned no text")
            return Verdict(request.model, None, "", problem)
        read = read_verdict(result.text or "", placeholders)
        if read is not None:
            return Verdict(request.model, read[0], read[1])
        if result.cut_off:
            return Verdict(request.model, None, "", cut_off_problem(result, "--judge-max-tokens", settings.max_tokens))
        if attempts >= settings.max_reasks:
            snippet = (result.text or "").strip().replace("\n", " ")[:120]
            return Verdict(
                request.model,
                None,
                "",
                Problem("judge_unparseable", f"judge `{request.model}` gave no readable verdict: {snippet!r}"),
            )
        attempts += 1
        retry = _reask_request(request, result, placeholders)
        assert retry is not None  # the reply was text without a verdict
        [(_, result)] = list(chat.map([(None, retry)]))


def decide(row: Row, verdicts: Sequence[Verdict]) -> Row:
    """Write the committee's decision onto the row: majority of readable verdicts, a tie fails."""
    readable = [verdict for verdict in verdicts if verdict.passed is not None]
    if len(verdicts) > 1:
        row["judges"] = [
            {"model": verdict.model, "pass": verdict.passed, "thought": verdict.thought}
            | ({"error": verdict.problem.code} if verdict.problem else {})
            for verdict in verdicts
        ]
    already_rejected = REJECTED_BY in row
    if not readable:
        problem = verdicts[0].problem or Problem("judge_unparseable", "no judge gave a verdict")
        row[THOUGHT] = ""
        if already_rejected:
            row[KEEP_FIELD] = False
            return row
        return reject(row, STAGE, problem)
    yes = sum(1 for verdict in readable if verdict.passed)
    passed = yes * 2 > len(readable)
    thoughts = [verdict.thought for verdict in readable if verdict.thought and verdict.passed == passed]
    row[THOUGHT] = " | ".join(thoughts)
    row[KEEP_FIELD] = passed
    if not passed and not already_rejected:
        detail = thoughts[0] if thoughts else "the judge found that the calls do not answer the query"
        if len(readable) > 1:
            detail = f"{len(readable) - yes} of {len(readable)} judges said no: {detail}"
        reject(row, STAGE, Problem("semantic_mismatch", detail))
    return row


def semantic_check(rows: Iterable[Row], chat: ChatService, prompts: PromptSet, settings: JudgeSettings) -> Iterator[Row]:
    """Judge each row (concurrently, in order) and yield it with the verdict."""

    def requests() -> Iterator[tuple[tuple[Row, int], ChatRequest | None]]:
        for row in rows:
            if not _wants_judging(row, settings):
                yield (row, -1), None  # passes through, in its place
                continue
            if not _executed(row):  # the judge reads the calls' results: no token is spent on a row without them
                yield (reject(row, STAGE, NOT_EXECUTED), -1), None
                continue
            for index, model in enumerate(settings.judges):
                yield (row, index), judge_request(row, model, prompts, settings)

    placeholders = template_placeholders(prompts.judge.system, prompts.judge.user)
    verdicts: list[Verdict] = []
    if getattr(chat, "collects_requests", False):
        answered = _verdicts_in_rounds(chat, map_optional(chat, requests()), settings, placeholders)
    else:
        answered = (
            (tag, None if request is None or result is None else judge_verdict(chat, request, result, settings, placeholders))
            for (tag, request), result in map_optional(chat, requests())
        )
    for (row, index), verdict in answered:
        if verdict is None:
            yield row
            continue
        verdicts.append(verdict)
        if index == len(settings.judges) - 1:
            yield decide(row, verdicts)
            verdicts = []


# --- batch (`--batch`): a service that reads all its input before answering asks again in rounds ---


def _verdicts_in_rounds(
    chat: ChatService,
    first: Iterable[tuple[tuple[T, ChatRequest | None], ChatResult | None]],
    settings: JudgeSettings,
    placeholders: frozenset[str],
) -> Iterator[tuple[T, Verdict | None]]:
    """The verdicts ``_verdict`` gives, with every row's n-th re-ask sent together (one batch per round)."""
    stream: Iterator[tuple[T, ChatRequest | None, ChatResult | None]] = (
        (tag, request, result) for (tag, request), result in first
    )
    for _round in range(settings.max_reasks):
        stream = _reask_round(chat, stream, placeholders)
    for tag, request, result in stream:
        if request is None or result is None:
            yield tag, None
        else:
            yield tag, judge_verdict(chat, request, result, replace(settings, max_reasks=0), placeholders)


def _reask_round(
    chat: ChatService, stream: Iterator[tuple[T, ChatRequest | None, ChatResult | None]], placeholders: frozenset[str]
) -> Iterator[tuple[T, ChatRequest | None, ChatResult | None]]:
    def asks() -> Iterator[tuple[tuple[T, ChatRequest | None, ChatResult | None], ChatRequest | None]]:
        for tag, request, result in stream:
            again = _reask_request(request, result, placeholders) if request is not None and result is not None else None
            yield (tag, request, result), again

    for ((tag, request, result), again), answer in map_optional(chat, asks()):
        yield tag, request, (answer if again is not None else result)


# --- end batch ---
