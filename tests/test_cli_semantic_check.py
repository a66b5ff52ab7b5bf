"""`apigen semantic-check` through the real CLI, against the scripted server and the offline judge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from .conftest import invoke, parse_stdout, read_jsonl, write_jsonl
from .llm_server import LLMServer, Received, Reply

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather now in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def row(n: int, city: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"r{n}",
        "query": f"What's the weather in {city}?",
        "tools": TOOLS,
        "answers": [{"name": "get_weather", "arguments": {"city": city}}],
        "execution_result": [{"name": "get_weather", "ok": True, "result": {"city": city, "temp_c": 18}}],
        "keep_row_after_execution_check": True,
        **extra,
    }


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as running:
        yield running


def test_verdicts_from_an_endpoint(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    def judge(request: Received) -> Reply:
        if "Atlantis" in request.content:
            return Reply.chat('Verdict:\n```json\n{"thought": "Atlantis is not a city", "passes": "NO"}\n```')
        return Reply.chat('{"thought": "", "pass": "yes"}')

    server.handler = judge
    source = write_jsonl(tmp_path / "rows.jsonl", [row(1, "Oslo"), row(2, "Atlantis"), row(3, "Lima")])
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(
        runner, "semantic-check", str(source), "--base-url", server.url, "-J", "test-model", "--rejects", str(rejects)
    )
    assert result.exit_code == 0, result.stderr
    kept = parse_stdout(result.stdout)
    assert [(r["id"], r["keep_row_after_semantic_check"], r["thought"]) for r in kept] == [("r1", True, ""), ("r3", True, "")]
    [bad] = read_jsonl(rejects)
    assert (bad["id"], bad["reason"], bad["thought"]) == ("r2", "semantic_mismatch", "Atlantis is not a city")
    request = server.chat_requests()[0]
    assert request.json["response_format"]["json_schema"]["schema"]["required"] == ["thought", "pass"]
    assert result.stderr.strip().splitlines()[-1] == "semantic-check: 2 passed, 1 rejected (semantic_mismatch 1)"


def test_a_committee_of_three_votes(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    server.handler = lambda request: Reply.chat(
        '{"thought": "hm", "pass": "no"}' if request.model == "harsh" else '{"thought": "", "pass": "yes"}'
    )
    source = write_jsonl(tmp_path / "rows.jsonl", [row(1, "Oslo")])
    result = invoke(
        runner, "semantic-check", str(source), "--base-url", server.url, "-J", "harsh", "-J", "kind", "-J", "test-model"
    )
    [kept] = parse_stdout(result.stdout)
    assert kept["keep_row_after_semantic_check"] is True
    assert [(judge["model"], judge["pass"]) for judge in kept["judges"]] == [
        ("harsh", False),
        ("kind", True),
        ("test-model", True),
    ]


def test_rows_that_failed_execution_are_passed_through_unjudged(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    server.handler = lambda request: Reply.chat('{"thought": "", "pass": "yes"}')
    failed = row(2, "Rome", rejected_by="exec_check", reason="exception", keep_row_after_execution_check=False)
    source = write_jsonl(tmp_path / "rows.jsonl", [row(1, "Oslo"), failed])
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(
        runner, "semantic-check", str(source), "--base-url", server.url, "-J", "test-model", "--rejects", str(rejects)
    )
    assert result.exit_code == 0
    assert len(server.chat_requests()) == 1
    assert read_jsonl(rejects) == [failed]


def test_the_offline_judge_fails_rows_whose_values_the_query_does_not_hold(runner: CliRunner, tmp_path: Path) -> None:
    wrong = row(2, "Oslo") | {"query": "What's the weather in Bergen?"}
    source = write_jsonl(tmp_path / "rows.jsonl", [row(1, "Oslo"), wrong])
    result = invoke(runner, "semantic-check", str(source), "-J", "offline", "--keep-rejected")
    rows = parse_stdout(result.stdout)
    assert [r["keep_row_after_semantic_check"] for r in rows] == [True, False]
    assert "Oslo" in rows[1]["thought"]


def test_no_judge_model_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [row(1, "Oslo")])
    result = invoke(runner, "semantic-check", str(source))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no judge model is given\n\nhint: pass `--judge-model NAME`")


def test_an_unusable_endpoint_stops_the_run_with_one_error(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    server.handler = lambda request: Reply.error(401, "invalid api key")
    source = write_jsonl(tmp_path / "rows.jsonl", [row(n, "Oslo") for n in range(20)])
    result = invoke(runner, "semantic-check", str(source), "--base-url", server.url, "-J", "test-model")
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and "401" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_row_without_execution_results_is_rejected_before_any_request(
    runner: CliRunner, server: LLMServer, tmp_path: Path
) -> None:
    unexecuted = {key: value for key, value in row(2, "Lima").items() if not key.endswith("execution_check")}
    del unexecuted["execution_result"]
    irrelevance = {"id": "r3", "kind": "irrelevance", "query": "Sing me a song", "tools": TOOLS, "answers": []}
    server.handler = lambda _request: Reply.chat('{"thought": "", "pass": "yes"}')
    source = write_jsonl(tmp_path / "rows.jsonl", [row(1, "Oslo"), unexecuted, irrelevance])
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(runner, "semantic-check", str(source), "--base-url", server.url, "-J", "m", "--rejects", str(rejects))
    assert result.exit_code == 0, result.stderr
    assert [r["id"] for r in parse_stdout(result.stdout)] == ["r1", "r3"]
    [bad] = read_jsonl(rejects)
    assert (bad["id"], bad["reason"]) == ("r2", "not_exec_checked") and "apigen exec-check" in bad["reason_detail"]
    assert len(server.chat_requests()) == 2  # none for the row without results


def test_input_that_skipped_exec_check_altogether_is_an_error(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    rows = [
        {key: value for key, value in row(n, city).items() if "execution" not in key} for n, city in enumerate(["Oslo", "Lima"])
    ]
    rejects = tmp_path / "rejects.jsonl"
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = invoke(runner, "semantic-check", str(source), "--base-url", server.url, "-J", "m", "--rejects", str(rejects))
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"error: none of the 2 rows of `{source}` has been through `exec-check`: every one was rejected as `not_exec_checked`"
        f"; what was written is kept in `{rejects}.partial` (2 rows); `{rejects}` is left as it was"
    )
    assert lines[-1] == "hint: run `apigen exec-check` on them first: `apigen exec-check FILE | apigen semantic-check ...`"
    assert not rejects.exists() and len(read_jsonl(f"{rejects}.partial")) == 2 and server.chat_requests() == []


def test_the_judge_is_sent_a_max_tokens_and_a_verdict_cut_off_by_it_is_named(
    runner: CliRunner, server: LLMServer, tmp_path: Path
) -> None:
    server.handler = lambda request: (
        Reply.chat(
            '{"thought": "Oslo is a city and the call asks for its weather, which', finish_reason="length", completion_tokens=64
        )
        if "Oslo" in request.content
        else Reply.chat('{"thought": "", "pass": "yes"}')
    )
    source = write_jsonl(tmp_path / "rows.jsonl", [row(1, "Oslo"), row(2, "Lima")])
    rejects = tmp_path / "rejects.jsonl"
    arguments = ["semantic-check", str(source), "--base-url", server.url, "-J", "test-model", "--rejects", str(rejects)]
    result = invoke(runner, *arguments)
    assert result.exit_code == 0, result.stderr
    assert [request.json["max_tokens"] for request in server.chat_requests()] == [512, 512]
    [cut] = read_jsonl(rejects)
    assert (cut["id"], cut["reason"]) == ("r1", "reply_cut_off")
    assert cut["reason_detail"] == (
        "the reply was cut off after 64 tokens by `--judge-max-tokens 512` before it was complete; raise `--judge-max-tokens`"
    )
    assert [kept["id"] for kept in parse_stdout(result.stdout)] == ["r2"]  # and no re-ask: it would be cut again

    server.requests.clear()
    result = invoke(runner, *arguments, "--judge-max-tokens", "64")
    assert [request.json["max_tokens"] for request in server.chat_requests()] == [64, 64]
