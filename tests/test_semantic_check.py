"""The semantic judge: reply shapes, re-asking, committees, which rows are judged (canned replies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apigen_cli.llm.chat import map_optional
from apigen_cli.problems import Problem
from apigen_cli.stages.prompts import load_prompts
from apigen_cli.stages.semantic_check import JudgeSettings, read_verdict, semantic_check

from .conftest import PROJECT
from .fakes import CannedChat

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather now.",
        "category": "weather",
        "http": {"method": "GET", "url": "https://example.invalid/w"},
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "name": "get_time",
        "description": "Local time.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
]


def row(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"r{n}",
        "query": f"Weather in city {n}?",
        "tools": TOOLS,
        "answers": [{"name": "get_weather", "arguments": {"city": f"city {n}"}}],
        "execution_result": [{"name": "get_weather", "ok": True, "result": {"temp": 20 + n}}],
        "keep_row_after_execution_check": True,
        **extra,
    }


def judge(rows: list[dict[str, Any]], replies: list[str | Problem], **settings: Any) -> tuple[list[dict[str, Any]], CannedChat]:
    chat = CannedChat(replies)
    out = list(semantic_check(rows, chat, load_prompts(), JudgeSettings(**{"judges": ("j1",), **settings})))
    return out, chat


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"thought": "", "pass": "yes"}', (True, "")),
        ('{"thought": "wrong city", "pass": "no"}', (False, "wrong city")),
        ('{"thought": "ok", "passes": "YES"}', (True, "ok")),
        ('{"Thought": "ok", "Pass": true}', (True, "ok")),
        ('{"thought": "bad", "pass": false}', (False, "bad")),
        ('Here is my verdict:\n```json\n{"thought": "fine", "pass": "Yes"}\n```\nThanks.', (True, "fine")),
        ('I think {"thought": "nope", "pass": "No."} is right', (False, "nope")),
        ("It passes, I believe.", None),
        ('{"thought": "hmm", "pass": "maybe"}', None),
        ('["yes"]', None),
    ],
)
def test_reply_shapes(reply: str, expected: tuple[bool, str] | None) -> None:
    assert read_verdict(reply) == expected


def test_prompt_shows_full_schemas_query_calls_and_results_but_not_bindings() -> None:
    _, chat = judge([row(1)], ['{"thought": "", "pass": "yes"}'])
    [request] = chat.requests
    text = "\n".join(message["content"] for message in request.messages)
    assert '"get_time"' in text and '"required"' in text  # every offered tool, whole schema
    assert "Weather in city 1?" in text and '"city 1"' in text and "21" in text
    assert "example.invalid" not in text and '"category"' not in text
    assert "Fail the item if any of these holds" in request.messages[0]["content"]


def test_verdicts_become_fields_and_rejections() -> None:
    out, _ = judge(
        [row(1), row(2)], ['{"thought": "", "pass": "yes"}', '{"thought": "asks for time, calls weather", "pass": "no"}']
    )
    assert out[0]["keep_row_after_semantic_check"] is True and "rejected_by" not in out[0]
    assert out[1]["keep_row_after_semantic_check"] is False
    assert (out[1]["rejected_by"], out[1]["reason"], out[1]["thought"]) == (
        "semantic_check",
        "semantic_mismatch",
        "asks for time, calls weather",
    )


def test_reply_keys_never_overwrite_row_fields() -> None:
    reply = json.dumps({"thought": "ok", "pass": "yes", "query": "HIJACKED", "id": "x", "answers": []})
    [out], _ = judge([row(1)], [reply])
    assert out["query"] == "Weather in city 1?" and out["id"] == "r1" and out["answers"][0]["name"] == "get_weather"


def test_unreadable_reply_is_asked_again_then_rejected() -> None:
    [good], chat = judge([row(1)], ["I'd say yes", '{"thought": "", "pass": "yes"}'])
    assert good["keep_row_after_semantic_check"] is True
    assert len(chat.requests) == 2 and chat.requests[1].messages[-2] == {"role": "assistant", "content": "I'd say yes"}
    [bad], chat = judge([row(1)], ["yes", "yes!", "YES"], max_reasks=2)
    assert bad["reason"] == "judge_unparseable" and len(chat.requests) == 3


def test_failed_request_rejects_with_llm_error() -> None:
    [out], _ = judge([row(1)], [Problem("llm_error", "500: boom")])
    assert (out["rejected_by"], out["reason"]) == ("semantic_check", "llm_error")


def test_rows_failing_execution_are_not_judged_unless_asked() -> None:
    failed = row(2, rejected_by="exec_check", reason="exception", keep_row_after_execution_check=False)
    earlier = row(3, rejected_by="format_check", reason="wrong_type")
    out, chat = judge([row(1), dict(failed), dict(earlier), row(4)], ['{"thought": "", "pass": "yes"}'] * 2)
    assert [r["id"] for r in out] == ["r1", "r2", "r3", "r4"]  # order kept
    assert [r.key for r in chat.requests] == ["r1", "r4"]
    assert "keep_row_after_semantic_check" not in out[1]
    out, chat = judge([dict(failed), dict(earlier)], ['{"thought": "errors", "pass": "no"}'], include_failed=True)
    assert [r.key for r in chat.requests] == ["r2"]
    assert out[0]["keep_row_after_semantic_check"] is False and out[0]["rejected_by"] == "exec_check"  # still rejected by exec


def test_committee_majority_and_every_thought_kept() -> None:
    replies: list[str | Problem] = [
        '{"thought": "", "pass": "yes"}',
        '{"thought": "off", "pass": "no"}',
        '{"thought": "fine", "pass": "yes"}',
        '{"thought": "a", "pass": "no"}',
        '{"thought": "b", "pass": "no"}',
        '{"thought": "", "pass": "yes"}',
    ]
    out, chat = judge([row(1), row(2)], replies, judges=("j1", "j2", "j3"))
    assert [r.model for r in chat.requests] == ["j1", "j2", "j3"] * 2
    assert out[0]["keep_row_after_semantic_check"] is True
    assert [j["thought"] for j in out[0]["judges"]] == ["", "off", "fine"]
    assert out[1]["keep_row_after_semantic_check"] is False and out[1]["reason_detail"].startswith("2 of 3 judges said no")


def test_committee_tie_fails() -> None:
    out, _ = judge([row(1)], ['{"thought": "", "pass": "yes"}', '{"thought": "no", "pass": "no"}'], judges=("a", "b"))
    assert out[0]["keep_row_after_semantic_check"] is False


def test_map_optional_keeps_order_around_skipped_items() -> None:
    from apigen_cli.llm.chat import ChatRequest

    chat = CannedChat(default="ok")
    items = [(n, None if n % 3 else ChatRequest(str(n), "m", [])) for n in range(10)]
    out = [(item, result is not None) for (item, _), result in map_optional(chat, items)]
    assert out == [(n, n % 3 == 0) for n in range(10)]


def test_a_judge_copying_the_old_template_with_its_verdict_is_no_verdict(tmp_path: Path) -> None:
    # What a small real model wrote for 3 rows of 4, with a custom prompt that still has the old template.
    prompts = tmp_path / "prompts"
    (prompts / "judge").mkdir(parents=True)
    (prompts / "judge" / "system.txt").write_text((PROJECT / "prompts" / "judge" / "system.txt").read_text())
    user = (PROJECT / "prompts" / "judge" / "user.txt").read_text()
    old = user.replace('{"thought": "<your reasoning>", "pass": "<yes or no>"}', '{"thought": "your reasoning", "pass": "yes"}')
    assert old != user
    (prompts / "judge" / "user.txt").write_text(old)
    from apigen_cli.stages.semantic_check import template_placeholders

    judge = load_prompts(str(prompts)).judge
    placeholders = template_placeholders(judge.system, judge.user)
    assert read_verdict('{"thought": "your reasoning", "pass": "yes"}', placeholders) is None
    assert read_verdict('{"thought": "calls fit the query", "pass": "yes"}', placeholders) == (True, "calls fit the query")


def test_a_reply_repeating_the_template_is_asked_again_then_rejected() -> None:
    copied = '{"thought": "<your reasoning>", "pass": "<yes or no>"}'
    [good], chat = judge([row(1)], [copied, '{"thought": "fits", "pass": "yes"}'])
    assert good["keep_row_after_semantic_check"] is True and len(chat.requests) == 2
    reask = chat.requests[1].messages[-1]["content"]
    assert '"pass": "yes"' not in reask and '"pass": "no"' not in reask  # the re-ask shows no verdict to copy either
    [bad], chat = judge([row(1)], ['{"thought": "<your reasoning>", "pass": "yes"}'] * 3, max_reasks=2)
    assert bad["reason"] == "judge_unparseable" and len(chat.requests) == 3
