"""The response cache: hits make no request, failures are not stored, writers may share it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity

from apigen_cli.config import LLMSettings
from apigen_cli.errors import ConfigError
from apigen_cli.llm.cache import ResponseCache
from apigen_cli.llm.chat import ChatRequest, ChatResult
from apigen_cli.llm.service import open_chat_service

from .llm_server import LLMServer, Reply


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as running:
        yield running


def run(server: LLMServer, cache: Path, contents: list[str], **fields: object) -> list[ChatResult]:
    values: dict[str, object] = {"json_mode": "off", "max_attempts": 2, **fields}
    settings = LLMSettings(base_url=server.url, models=("test-model",), cache_dir=str(cache), **values)  # type: ignore[arg-type]
    with open_chat_service(settings, wait=tenacity.wait_none()) as chat:
        requests = ((content, ChatRequest(content, "test-model", [{"role": "user", "content": content}])) for content in contents)
        return [result for _content, result in chat.map(requests)]


def test_a_rerun_sends_no_request_for_rows_already_answered(server: LLMServer, tmp_path: Path) -> None:
    contents = [f"row {index}" for index in range(20)]
    first = run(server, tmp_path / "cache", contents)
    assert server.count == 20 and not any(result.cached for result in first)
    second = run(server, tmp_path / "cache", contents + ["new row"])
    assert server.count == 21  # only the new row was asked
    assert [result.text for result in second] == contents + ["new row"]
    assert [result.cached for result in second] == [True] * 20 + [False]
    assert second[0].attempts == 0 and second[0].prompt_tokens == 0  # a hit costs nothing this run


def test_failures_are_not_cached(server: LLMServer, tmp_path: Path) -> None:
    server.handler = lambda received: Reply.error(400, "try later") if received.content == "a" and server.count == 2 else None
    first = run(server, tmp_path / "cache", ["b", "a"])  # one answered request: the stage may end normally
    assert first[0].ok and not first[1].ok
    second = run(server, tmp_path / "cache", ["a"])
    assert second[0].ok and not second[0].cached
    assert server.count == 3


def test_the_key_covers_endpoint_model_messages_and_options(server: LLMServer, tmp_path: Path) -> None:
    run(server, tmp_path / "cache", ["a"])
    run(server, tmp_path / "cache", ["a"], temperature=0.2)
    run(server, tmp_path / "cache", ["a"], options={"frequency_penalty": 1})
    run(server, tmp_path / "cache", ["a"], json_mode="object")
    assert server.count == 4
    run(server, tmp_path / "cache", ["a"], temperature=0.2)
    assert server.count == 4
    base = {"model": "m", "messages": [{"role": "user", "content": "a"}]}
    assert ResponseCache.key("http://a/v1", base) == ResponseCache.key("http://a/v1", dict(reversed(list(base.items()))))
    assert ResponseCache.key("http://a/v1", base) != ResponseCache.key("http://b/v1", base)
    assert ResponseCache.key("http://a/v1", base) != ResponseCache.key("http://a/v1", {**base, "model": "n"})


def test_the_cache_is_sqlite_in_wal_mode(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c")
    cache.put("k", "m", ChatResult("text", prompt_tokens=3, completion_tokens=4))
    cache.close()
    with sqlite3.connect(tmp_path / "c" / "responses.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT key, model, text, prompt_tokens, completion_tokens FROM responses").fetchall() == [
            ("k", "m", "text", 3, 4)
        ]
    db.close()


def test_concurrent_writers_share_one_cache(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        cache = ResponseCache(folder)  # a connection of its own, as another process would have
        try:
            for index in range(200):
                cache.put(f"{name}-{index}", "m", ChatResult(f"{name} {index}"))
                assert cache.get(f"{name}-{index}") is not None
        except BaseException as error:  # collected for the main thread
            errors.append(error)
        finally:
            cache.close()

    threads = [threading.Thread(target=writer, args=(f"w{number}",)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    cache = ResponseCache(folder)
    assert len(cache) == 800 and cache.write_failures == 0
    found = cache.get("w3-199")
    assert found is not None and found.text == "w3 199" and found.cached
    cache.close()


def test_an_unusable_cache_folder_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot be used"):
        ResponseCache(blocker)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "responses.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="cannot be used"):
        ResponseCache(damaged)
