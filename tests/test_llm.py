"""open_chat_service: routing by model, input order, lazy input, usage and progress."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from apigen_cli.config import LLMSettings
from apigen_cli.errors import ConfigError, InputError
from apigen_cli.llm.chat import OFFLINE_MODEL, ChatRequest, ModelUsage, UsageByModel
from apigen_cli.llm.service import open_chat_service, usage_lines

from .llm_server import LLMServer, Reply

TOOL = {
    "name": "get_weather",
    "description": "Get the weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as running:
        yield running


def chat_request(index: int, model: str) -> ChatRequest:
    task = {"task": "generate", "tools": [TOOL], "style": "simple", "pairs": 1}
    return ChatRequest(f"row-{index}", model, [{"role": "user", "content": f"row {index}"}], offline_task=task)


def test_no_model_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError) as raised:
        open_chat_service(LLMSettings())
    assert raised.value.message == "no model is configured"
    assert raised.value.hint is not None and "--model offline" in raised.value.hint and "--base-url" in raised.value.hint


def test_a_real_model_without_an_endpoint_is_a_config_error_not_a_silent_fallback() -> None:
    with pytest.raises(ConfigError) as raised:
        open_chat_service(LLMSettings(models=(OFFLINE_MODEL, "gpt-4o-mini")))
    assert raised.value.message == "model `gpt-4o-mini` needs an LLM endpoint, but no base URL is configured"


def test_mixed_models_are_routed_and_kept_in_input_order(server: LLMServer) -> None:
    server.latency = 0.01
    settings = LLMSettings(base_url=server.url, models=("test-model", OFFLINE_MODEL), json_mode="off", concurrency=4)
    models = ["test-model" if index % 3 else OFFLINE_MODEL for index in range(30)]
    with open_chat_service(settings) as chat:
        results = list(chat.map((index, chat_request(index, model)) for index, model in enumerate(models)))
    assert [index for index, _result in results] == list(range(30))
    for index, result in results:
        assert result.ok
        if models[index] == OFFLINE_MODEL:
            assert json.loads(result.text or "")[0]["answers"][0]["name"] == "get_weather"
        else:
            assert result.text == f"row {index}"
    assert server.count == 20  # offline requests never reached the server
    assert chat.usage.models["test-model"].requests == 20 and chat.usage.models[OFFLINE_MODEL].requests == 10
    assert chat.usage.models["test-model"].prompt_tokens == 20 * 11
    assert chat.progress.rows_done == 30 and chat.progress.requests == 20 and chat.progress.in_flight == 0


def test_input_is_read_lazily_and_results_stream_while_later_requests_run(server: LLMServer) -> None:
    server.latency = 0.01
    pulled = 0

    def items() -> Iterator[tuple[int, ChatRequest]]:
        nonlocal pulled
        for index in range(10_000):
            pulled += 1
            yield index, chat_request(index, "test-model")

    settings = LLMSettings(base_url=server.url, models=("test-model",), json_mode="off", concurrency=4, reorder_window=12)
    with open_chat_service(settings) as chat:
        answers = chat.map(items())
        assert isinstance(answers, Generator)  # so that closing it stops the requests
        first = next(answers)
        assert first[0] == 0
        assert pulled <= 12  # never more than the window ahead of what was given back
        for _ in range(20):
            next(answers)
        assert pulled <= 21 + 12
        answers.close()
    assert server.count <= 21 + 12


def test_an_error_in_the_input_comes_after_the_rows_read_before_it(server: LLMServer) -> None:
    def items() -> Iterator[tuple[int, ChatRequest]]:
        yield 0, chat_request(0, "test-model")
        yield 1, chat_request(1, OFFLINE_MODEL)
        raise InputError("line 3 of `rows.jsonl` is not valid JSON")

    settings = LLMSettings(base_url=server.url, models=("test-model",), json_mode="off")
    seen = []
    with open_chat_service(settings) as chat, pytest.raises(InputError, match="line 3"):
        for index, result in chat.map(items()):
            seen.append((index, result.ok))
    assert seen == [(0, True), (1, True)]


def test_the_router_sends_offline_requests_to_the_offline_backend_without_a_client() -> None:
    settings = LLMSettings(models=(OFFLINE_MODEL,), seed=1, options={"offline_error_rate": 0})
    with open_chat_service(settings) as chat:
        task = {"task": "generate", "tools": [TOOL], "style": "simple", "pairs": 3}
        results = list(chat.map((index, ChatRequest(str(index), OFFLINE_MODEL, [], offline_task=task)) for index in range(10)))
        assert chat._http is None  # no client, no thread, no socket
    assert [index for index, _result in results] == list(range(10))
    assert all(result.ok for _index, result in results)
    assert chat.usage.models[OFFLINE_MODEL].requests == 10 and chat.progress.rows_done == 10


def test_offline_error_rate_is_checked_when_the_service_opens() -> None:
    with pytest.raises(ConfigError, match="offline_error_rate"):
        open_chat_service(LLMSettings(models=(OFFLINE_MODEL,), options={"offline_error_rate": 2}))


def test_a_request_for_a_model_not_in_the_settings_still_finds_its_backend(server: LLMServer) -> None:
    with open_chat_service(LLMSettings(base_url=server.url, models=(OFFLINE_MODEL,), json_mode="off")) as chat:
        [(_index, result)] = list(chat.map([(0, chat_request(0, "other-model"))]))
    assert result.text == "row 0"


def test_warnings_reach_the_callback_in_the_callers_thread(server: LLMServer) -> None:
    import threading

    server.handler = lambda received: (
        Reply.error(400, "response_format is not supported") if "response_format" in received.json else None
    )
    heard: list[tuple[str, str]] = []
    settings = LLMSettings(base_url=server.url, models=("test-model",), json_mode="object", concurrency=1)
    with open_chat_service(settings, on_warning=lambda text: heard.append((threading.current_thread().name, text))) as chat:
        list(chat.map((index, chat_request(index, "test-model")) for index in range(3)))
    assert [thread for thread, _text in heard] == [threading.current_thread().name]


def test_exchange_log_records_offline_exchanges_too(tmp_path: Path) -> None:
    log = tmp_path / "llm.jsonl"
    with open_chat_service(LLMSettings(models=(OFFLINE_MODEL,), log_path=str(log), seed=3)) as chat:
        results = list(chat.map((index, chat_request(index, OFFLINE_MODEL)) for index in range(2)))
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [entry["key"] for entry in entries] == ["row-0", "row-1"]
    assert entries[0]["response"] == results[0][1].text and entries[0]["endpoint"] is None
    assert entries[0]["offline_task"]["task"] == "generate"


def test_an_unwritable_log_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write the exchange log"):
        open_chat_service(LLMSettings(models=(OFFLINE_MODEL,), log_path=str(blocker / "llm.jsonl")))


def test_close_may_be_called_twice_and_a_closed_service_refuses_work(server: LLMServer) -> None:
    chat = open_chat_service(LLMSettings(base_url=server.url, models=("test-model",), json_mode="off"))
    list(chat.map([(0, chat_request(0, "test-model"))]))
    chat.close()
    chat.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(chat.map([(1, chat_request(1, "test-model"))]))


def test_usage_lines_for_the_stage_summary() -> None:
    usage = UsageByModel(
        {
            "gpt-4o-mini": ModelUsage(
                requests=120, failures=1, retries=3, cached=10, prompt_tokens=35_000, completion_tokens=12_500
            ),
            OFFLINE_MODEL: ModelUsage(requests=4),
        }
    )
    assert usage_lines(usage) == [
        "gpt-4o-mini: 120 requests, 3 retries, 10 from cache, 1 failed; 35,000 prompt + 12,500 completion tokens",
        "offline: 4 requests; 0 prompt + 0 completion tokens",
    ]


def test_settings_never_show_a_key() -> None:
    shown: Any = repr(LLMSettings(base_url="http://x/v1", models=("m",), api_key_env="MY_KEY"))
    assert "MY_KEY" in shown and "sk-" not in shown
