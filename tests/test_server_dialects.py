"""The real CLI against servers that behave as vLLM, Ollama, llama-server, llama-cpp-python and OpenAI do.

Every test goes through real sockets and the real HTTP client, and checks the
exit code, the `error:`/`hint:` text and that stdout holds JSON lines only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity
from typer.testing import CliRunner

from apigen_cli.config import LLMSettings
from apigen_cli.errors import EndpointError
from apigen_cli.llm.chat import ChatRequest
from apigen_cli.llm.service import open_chat_service

from . import run_helpers
from .conftest import invoke, parse_stdout, read_jsonl
from .llm_server import LLMServer, Received, Reply
from .run_helpers import APIS, FUNCTIONS, saved_state
from .scripted_model import is_judge, judge_reply, pipeline_handler
from .server_dialects import CHECKS_MODEL_NAMES, DIALECTS, template_copier


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as running:
        yield running


def response_format_types(server: LLMServer, model: str | None = None) -> list[str | None]:
    return [
        (received.json.get("response_format") or {}).get("type")
        for received in server.chat_requests()
        if model is None or received.model == model
    ]


def run_args(server: LLMServer, *extra: str) -> list[str]:
    """A small run that generates with one of the server's models and judges with the other."""
    return run_helpers.run_args(*extra, server=server, judge="other-model", count=12, seed=5, concurrency=2)


# --- each server as it really is -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_a_run_against_each_server_kind_verifies_rows(runner: CliRunner, server: LLMServer, tmp_path: Path, name: str) -> None:
    server.handler = DIALECTS[name].handler(pipeline_handler)
    report = tmp_path / "report.json"
    result = invoke(runner, *run_args(server, "-o", "-", "--report", str(report)))
    assert result.exit_code == 0, result.stderr
    rows = parse_stdout(result.stdout)  # stdout: the dataset, nothing else
    assert rows and all(row["keep_row_after_semantic_check"] is True for row in rows)
    data = json.loads(report.read_text())
    bodies = [received.json for received in server.chat_requests()]
    assert all("n" not in body and body["seed"] == 5 for body in bodies)  # apigen never asks for several choices
    answered = [received for received in server.chat_requests() if received.model == "test-model"]
    if name == "llama-cpp-python":
        # json_schema answered 500 "…response_format…": each model steps down to json_object once, no retry of it
        steps = [(step["model"], step["from"], step["to"]) for step in data["json_mode_downgrades"]]
        assert sorted(steps) == [("other-model", "schema", "object"), ("test-model", "schema", "object")]
        for model in ("test-model", "other-model"):
            sent = response_format_types(server, model)
            assert sent.count("json_schema") <= 2 and sent[-1] == "json_object"  # at most the requests in flight
            assert result.stderr.count(f"refused `response_format` json_schema for model `{model}`") == 1
        assert "json mode, test-model: schema -> object" in result.stderr
        answered = [received for received in answered if received.json["response_format"]["type"] == "json_object"]
    else:
        assert data["json_mode_downgrades"] == [] and "refused" not in result.stderr
        assert set(response_format_types(server)) == {"json_schema"}
    tokens = data["tokens"]["test-model"]
    assert tokens["requests"] == len(answered) and tokens["prompt_tokens"] == 23 * len(answered)  # the usage each server sent


def test_an_unknown_judge_model_is_named_with_the_flag_that_names_judges(runner: CliRunner, server: LLMServer) -> None:
    server.handler = DIALECTS["vllm"].handler(pipeline_handler)
    args = run_helpers.run_args(server=server, judge="no-such-judge", count=6, seed=1)
    result = invoke(runner, *args)
    assert result.exit_code == 2
    assert f"error: the LLM endpoint `{server.url}` does not serve model `no-such-judge`" in result.stderr
    assert "hint: the endpoint serves: test-model, other-model; pass one of them with `--judge-model`" in result.stderr


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_an_unknown_model_stops_where_the_server_checks_names(
    runner: CliRunner, server: LLMServer, tmp_path: Path, name: str
) -> None:
    server.handler = DIALECTS[name].handler(pipeline_handler)
    result = invoke(runner, "generate", APIS, "--base-url", server.url, "-m", "no-such-model", "-n", "6", "--seed", "1")
    if name in CHECKS_MODEL_NAMES:
        assert result.exit_code == 2 and result.stdout == ""
        assert f"error: the LLM endpoint `{server.url}` does not serve model `no-such-model`: 404: " in result.stderr
        assert "hint: the endpoint serves: test-model, other-model; pass one of them with `--model`" in result.stderr
    else:  # llama-server and llama-cpp-python serve the model they loaded, whatever it is called
        assert result.exit_code == 0, result.stderr
        assert parse_stdout(result.stdout)


def test_n_is_never_sent_and_cannot_be_asked_for(runner: CliRunner, server: LLMServer) -> None:
    server.handler = DIALECTS["llama-server"].handler(pipeline_handler)  # would answer n=2 with a 400
    result = invoke(runner, "generate", APIS, "--base-url", server.url, "-m", "test-model", "-n", "3", "-O", "n=2")
    assert result.exit_code == 2 and result.stdout == "" and "error: `-O`: apigen sets `n` itself" in result.stderr
    assert server.count == 0


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_what_each_server_does_with_n(server: LLMServer, name: str) -> None:
    # apigen never sends `n`; were a request to carry it, the client still reads the first choice, and a
    # server that refuses it (llama-server) fails only that request, with its own words.
    server.handler = DIALECTS[name].handler()
    settings = LLMSettings(base_url=server.url, models=("test-model",), json_mode="off", concurrency=1)
    plain = ChatRequest("a", "test-model", [{"role": "user", "content": "a"}])
    several = ChatRequest("b", "test-model", [{"role": "user", "content": "b"}], options={"n": 3})
    with open_chat_service(settings, wait=tenacity.wait_none()) as chat:
        [(_a, first), (_b, second)] = list(chat.map([(1, plain), (2, several)]))
    assert first.ok and first.text == "a" and first.prompt_tokens == 23
    if name == "llama-server":
        assert second.error is not None and second.error.message == "400: Only one completion choice is allowed"
        assert second.attempts == 1
    else:
        assert second.ok and second.text == "b"


def test_a_step_down_is_per_model(server: LLMServer) -> None:
    # One endpoint, two models: only the one behind a llama-cpp-python-like route refuses json_schema.
    def route(received: Received) -> Reply:
        dialect = DIALECTS["llama-cpp-python" if received.model == "other-model" else "vllm"]
        return dialect.respond(received, lambda request: None)

    server.handler = route
    settings = LLMSettings(base_url=server.url, models=("test-model", "other-model"), concurrency=1)
    schema = {"title": "answer", "type": "object"}
    requests = [
        (index, ChatRequest(str(index), model, [{"role": "user", "content": f"json {index}"}], response_schema=schema))
        for index, model in enumerate(["test-model", "other-model"] * 3)
    ]
    warnings: list[str] = []
    with open_chat_service(settings, wait=tenacity.wait_none(), on_warning=warnings.append) as chat:
        results = [result for _index, result in chat.map(requests)]
        downgrades = chat.json_mode_downgrades
    assert all(result.ok and result.attempts in (1, 2) for result in results)
    assert [(step["model"], step["from"], step["to"]) for step in downgrades] == [("other-model", "schema", "object")]
    assert downgrades[0]["reason"].startswith("500: 1 validation error for CreateChatCompletionRequest response_format.type")
    assert len(warnings) == 1
    assert response_format_types(server, "test-model") == ["json_schema"] * 3
    assert response_format_types(server, "other-model") == ["json_schema", "json_object", "json_object", "json_object"]


def test_a_500_that_names_response_format_is_not_retried_but_other_500s_are(server: LLMServer) -> None:
    server.enqueue(
        Reply.error(500, "CUDA out of memory"),
        Reply.error(500, 'response_format type must be one of "text" or "json_object", but got: json_schema'),
    )
    settings = LLMSettings(base_url=server.url, models=("test-model",), concurrency=1, max_attempts=3)
    request = ChatRequest("k", "test-model", [{"role": "user", "content": "hi"}], response_schema={"type": "object"})
    with open_chat_service(settings, wait=tenacity.wait_none()) as chat:
        [(_item, result)] = list(chat.map([(1, request)]))
    assert result.ok and result.attempts == 3  # the 500 retried, the refusal answered by a step down
    assert response_format_types(server) == ["json_schema", "json_schema", "json_object"]


# --- stopping early when the endpoint cannot serve ------------------------------------


@pytest.mark.parametrize("url", ["localhost:8000/v1", "ftp://127.0.0.1:8000/v1", "http:/127.0.0.1:8000/v1"])
def test_a_base_url_without_an_http_scheme_stops_at_once(runner: CliRunner, url: str) -> None:
    result = invoke(runner, "generate", APIS, "--base-url", url, "-m", "test-model", "-n", "30")
    assert result.exit_code == 2 and result.stdout == ""
    assert f"error: the LLM endpoint `{url}` is not a usable http:// or https:// URL" in result.stderr
    assert "hint: write the URL with its scheme, e.g. `--base-url http://localhost:8000/v1`" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_stage_whose_every_request_failed_exits_2(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    server.handler = lambda received: Reply.error(500, "model crashed")
    result = invoke(runner, "generate", APIS, "--base-url", server.url, "-m", "test-model", "-n", "9", "--max-attempts", "1")
    assert result.exit_code == 2 and result.stdout == ""
    assert (
        f"error: every one of the 3 requests sent to the LLM endpoint `{server.url}` failed; the last: 500: model crashed"
        in result.stderr
    )
    assert "hint: check `--base-url`, `--model` and the server's log" in result.stderr
    assert server.count == 3


def test_a_stage_stopped_by_failures_in_a_row_keeps_its_rows_on_clean_stdout(runner: CliRunner, server: LLMServer) -> None:
    server.handler = lambda received: pipeline_handler(received) if server.count <= 2 else Reply.error(500, "overloaded")
    args = ["generate", APIS, "--base-url", server.url, "-m", "test-model", "-n", "30", "--seed", "4", "--concurrency", "1"]
    result = invoke(runner, *args, "--max-attempts", "1", "--stop-after-failures", "5")
    assert result.exit_code == 2
    rows = parse_stdout(result.stdout)  # JSON lines only, and the rows of the answered requests are there
    assert len({row["request_id"] for row in rows}) == 2 and all(row.get("rejected_by") != "generate" for row in rows)
    assert "error: 5 requests in a row to the LLM endpoint" in result.stderr and "the last: 500: overloaded" in result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr


def test_a_judge_stage_whose_every_request_failed_exits_2(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    rows = judged_rows(runner, tmp_path, 4)
    server.handler = lambda received: Reply.error(503, "loading model")
    result = invoke(runner, "semantic-check", str(rows), "--base-url", server.url, "-J", "test-model", "--max-attempts", "1")
    assert result.exit_code == 2 and result.stdout == ""
    assert "failed; the last: 503: loading model" in result.stderr and "error: every one of the" in result.stderr


def test_a_run_whose_every_judge_request_failed_exits_2_though_generation_worked(
    runner: CliRunner, server: LLMServer, tmp_path: Path
) -> None:
    server.handler = lambda received: Reply.error(500, "judge crashed") if is_judge(received) else pipeline_handler(received)
    args = ["run", APIS, "--functions", FUNCTIONS, "--base-url", server.url, "-m", "test-model", "-J", "test-model"]
    result = invoke(runner, *args, "-n", "6", "--seed", "3", "--max-attempts", "1", "-o", str(tmp_path / "d.jsonl"))
    assert result.exit_code == 2 and result.stdout == ""
    assert "sent to the LLM endpoint" in result.stderr and "failed; the last: 500: judge crashed" in result.stderr


def test_failures_in_a_row_stop_the_run_keeping_rows_and_a_rerun_resumes(
    runner: CliRunner, server: LLMServer, tmp_path: Path
) -> None:
    server.handler = pipeline_handler
    reference = invoke(
        runner, *run_args(server, "-o", str(tmp_path / "reference.jsonl"), "--rejects", str(tmp_path / "reference_rejects.jsonl"))
    )
    assert reference.exit_code == 0, reference.stderr
    served = server.count
    healthy = {"left": 9}

    def failing_later(received: Received) -> Reply:
        if healthy["left"] > 0:
            healthy["left"] -= 1
            return pipeline_handler(received)
        return Reply.error(500, "Internal Server Error: upstream connect error")

    server.handler = failing_later
    out, rejects = tmp_path / "data.jsonl", tmp_path / "rejects.jsonl"
    args = run_args(
        server,
        "-o",
        str(out),
        "--rejects",
        str(rejects),
        "--max-attempts",
        "1",
        "--stop-after-failures",
        "3",
        "--concurrency",
        "1",
    )
    stopped = invoke(runner, *args)
    assert stopped.exit_code == 2 and stopped.stdout == ""
    assert (
        f"error: 3 requests in a row to the LLM endpoint `{server.url}` failed, each after its retries; "
        "the last: 500: Internal Server Error: upstream connect error"
    ) in stopped.stderr
    assert (
        "hint: check the server at `--base-url`" in stopped.stderr and "`--stop-after-failures 0` never stops" in stopped.stderr
    )
    written = read_jsonl(out) + read_jsonl(rejects)
    reference_rows = read_jsonl(tmp_path / "reference.jsonl") + read_jsonl(tmp_path / "reference_rejects.jsonl")
    assert 0 < len(written) < len(reference_rows)  # rows written before the stop stay
    assert all(row.get("reason") != "llm_error" for row in written)  # the failures in a row were held back

    server.handler = pipeline_handler  # the server is back: the same command carries on
    before = server.count
    resumed = invoke(runner, *args)
    assert resumed.exit_code == 0, resumed.stderr
    assert "resumed:" in resumed.stderr
    assert read_jsonl(out) == read_jsonl(tmp_path / "reference.jsonl")
    assert read_jsonl(rejects) == read_jsonl(tmp_path / "reference_rejects.jsonl")
    assert server.count - before < served  # what was written was not asked for again


def test_a_resumed_run_reports_each_step_down_once(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    dialect = DIALECTS["llama-cpp-python"]
    healthy = {"left": 14}  # two refusals per model among them (two requests in flight)

    def failing_later(received: Received) -> Reply:
        if healthy["left"] > 0:
            healthy["left"] -= 1
            return dialect.respond(received, pipeline_handler)
        return Reply.error(503, "Service Unavailable")

    server.handler = failing_later
    report = tmp_path / "report.json"
    out, rejects = tmp_path / "data.jsonl", tmp_path / "rejects.jsonl"
    args = run_args(server, "-o", str(out), "--rejects", str(rejects), "--report", str(report), "--max-attempts", "1")
    stopped = invoke(runner, *args, "--stop-after-failures", "2")
    assert stopped.exit_code == 2 and "2 requests in a row" in stopped.stderr
    state = saved_state(tmp_path / "data.jsonl.apigen-run.json")
    steps = [(step["model"], step["from"], step["to"]) for step in state["report"]["json_mode_downgrades"]]
    assert sorted(steps) == [("other-model", "schema", "object"), ("test-model", "schema", "object")]  # kept in the state

    server.handler = dialect.handler(pipeline_handler)
    resumed = invoke(runner, *args, "--stop-after-failures", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resumed:" in resumed.stderr and "refused `response_format`" in resumed.stderr  # found again this session
    again = [(step["model"], step["from"], step["to"]) for step in json.loads(report.read_text())["json_mode_downgrades"]]
    assert sorted(again) == sorted(steps)  # each step once in the report of the whole run


def test_a_late_outage_stops_after_the_window_in_process(server: LLMServer) -> None:
    # Retries happen (wait injected), then the fourth failure in a row stops the map, holding the failures back.
    server.handler = lambda received: Reply.error(502, "bad gateway") if int(received.content) >= 3 else None
    settings = LLMSettings(base_url=server.url, models=("test-model",), concurrency=1, max_attempts=3, stop_after_failures=4)
    given: list[Any] = []
    with pytest.raises(EndpointError) as raised, open_chat_service(settings, wait=tenacity.wait_none()) as chat:
        for item, result in chat.map(
            (index, ChatRequest(str(index), "test-model", [{"role": "user", "content": str(index)}])) for index in range(50)
        ):
            given.append((item, result.ok))
    assert given == [(0, True), (1, True), (2, True)]  # the failing rows are not given out: a resume asks them again
    assert raised.value.message.endswith("the last: 502: bad gateway (after 3 attempts)")
    assert server.count >= 3 + 4 * 3  # each failing request was tried three times


# --- judges as small models write them --------------------------------------------------


def judged_rows(runner: CliRunner, tmp_path: Path, count: int = 3) -> Path:
    """Rows ready for the judge: generated offline, then through format-check and exec-check."""
    rows = tmp_path / "rows.jsonl"
    made = invoke(runner, "generate", APIS, "-m", "offline", "-n", str(count), "--seed", "2", "-O", "offline_error_rate=0")
    assert made.exit_code == 0, made.stderr
    checked = invoke(runner, "format-check", "-", input=made.stdout)
    executed = invoke(
        runner, "exec-check", "-", "--functions", FUNCTIONS, "--error-result", "pass", "-o", str(rows), input=checked.stdout
    )
    assert executed.exit_code == 0, executed.stderr
    return rows


def test_the_judge_template_carries_no_verdict(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    server.handler = judge_reply
    result = invoke(runner, "semantic-check", str(judged_rows(runner, tmp_path)), "--base-url", server.url, "-J", "test-model")
    assert result.exit_code == 0, result.stderr
    prompt = server.chat_requests()[0].content
    [template] = [json.loads(found) for found in __import__("re").findall(r'\{[^{}]*"thought"[^{}]*\}', prompt)]
    assert str(template["pass"]).lower() not in ("yes", "no", "true", "false")


def test_a_judge_copying_the_template_is_asked_again_then_rejected(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    rows = judged_rows(runner, tmp_path)
    copies = {"left": 1}

    def small_model(received: Received) -> Reply | None:
        if is_judge(received) and copies["left"] > 0:
            copies["left"] -= 1
            return template_copier(received)
        return judge_reply(received)

    server.handler = small_model  # copies the template once, then answers properly when asked again
    result = invoke(runner, "semantic-check", str(rows), "--base-url", server.url, "-J", "test-model", "--concurrency", "1")
    assert result.exit_code == 0, result.stderr
    assert [row["keep_row_after_semantic_check"] for row in parse_stdout(result.stdout)] == [True] * 3
    assert server.count == 4
    [reask] = [received for received in server.chat_requests() if len(received.json["messages"]) > 2]
    assert reask.json["messages"][-2] == {
        "role": "assistant",
        "content": '{"thought": "<your reasoning>", "pass": "<yes or no>"}',
    }

    server.handler = template_copier  # never writes its own verdict
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(
        runner,
        "semantic-check",
        str(rows),
        "--base-url",
        server.url,
        "-J",
        "test-model",
        "--max-reasks",
        "1",
        "--rejects",
        str(rejects),
    )
    assert result.exit_code == 0 and result.stdout == ""
    assert [row["reason"] for row in read_jsonl(rejects)] == ["judge_unparseable"] * 3
    assert "<your reasoning>" in read_jsonl(rejects)[0]["reason_detail"]
