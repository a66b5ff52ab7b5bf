"""`apigen simulate` against scripted OpenAI-compatible servers on 127.0.0.1: native `tool_calls`, a server that
refuses `tools`, a user served by another endpoint, the cache.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from apigen_cli.conversations.simulation import simulation_tools

from .conftest import PROJECT, invoke, read_jsonl
from .llm_server import LLMServer, Received, Reply
from .scripted_conversation import conversation_handler, refusing_tools
from .test_simulate import POLICY, STORE, blueprints  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def positives(blueprints: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The blueprints whose gold changes the state (a refusal would be verified by an agent that does nothing)."""
    rows = [row for row in read_jsonl(blueprints) if row["blueprint_kind"] == "positive"][:3]
    path = tmp_path_factory.mktemp("positives") / "positives.jsonl"
    path.write_text("".join(orjson.dumps(row).decode() + "\n" for row in rows))
    return path


def writes() -> list[str]:
    return sorted(simulation_tools(None, str(STORE))[1])


def run(server_url: str, source: Path, tmp_path: Path, *flags: str) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    output, rejects = tmp_path / "conversations.jsonl", tmp_path / "failed.jsonl"
    result = invoke(
        CliRunner(),
        "simulate", str(source), "--functions", str(STORE), "--policy", str(POLICY), "--base-url", server_url,
        "-m", "agent-model", "--user-model", "user-model", "-o", str(output), "--rejects", str(rejects), "--seed", "1",
        *flags,
    )  # fmt: skip
    return result, read_jsonl(output) if output.exists() else [], read_jsonl(rejects) if rejects.exists() else []


def test_the_agent_answers_with_native_tool_calls_and_the_conversations_are_verified(positives: Path, tmp_path: Path) -> None:
    rows = read_jsonl(positives)
    rows[0]["blueprint_source"]["persona"] = "A retired teacher who types slowly."
    source = tmp_path / "with_persona.jsonl"
    source.write_text("".join(orjson.dumps(row).decode() + "\n" for row in rows))
    with LLMServer(handler=conversation_handler(rows, writes())) as server:
        result, kept, failed = run(server.url, source, tmp_path)
        requests = [request.json for request in server.chat_requests()]
    assert result.exit_code == 0, result.stderr
    assert failed == [] and len(kept) == len(rows)
    agent = [body for body in requests if body["model"] == "agent-model"]
    user = [body for body in requests if body["model"] == "user-model"]
    assert all(body["tools"] and body["tools"][0]["type"] == "function" for body in agent)
    assert all(body["messages"][0]["role"] == "system" and "# Policy" in body["messages"][0]["content"] for body in agent)
    assert "Confirm before every change" in agent[0]["messages"][0]["content"]  # the store's policy
    assert any(message["role"] == "tool" for body in agent for message in body["messages"])  # results go back as tool messages
    for body in user:  # the blueprint's persona goes with its instruction, and only with it
        system = body["messages"][0]["content"]
        assert ("Persona: A retired teacher who types slowly." in system) == (rows[0]["instruction"] in system)
    for body in user:  # the user is told the instruction, never the gold actions or the tools
        shown = orjson.dumps(body["messages"]).decode()
        assert "tools" not in body and "tool_calls" not in shown
        assert all(orjson.dumps(action["arguments"]).decode() not in shown for row in rows for action in row["actions"])
    for row in kept:
        assert row["models"] == {"agent": "agent-model", "user": "user-model"}
        assert row["simulation"]["tool_mode"] == "native"
        assert any(message.get("tool_calls") for message in row["messages"])
    assert "refused `tools`" not in result.stderr


def test_a_server_that_refuses_tools_gets_them_in_the_prompt_said_once(positives: Path, tmp_path: Path) -> None:
    rows = read_jsonl(positives)
    with LLMServer(handler=refusing_tools(conversation_handler(rows, writes()))) as server:
        result, kept, failed = run(server.url, positives, tmp_path, "--concurrency", "2")
        requests = [request.json for request in server.chat_requests()]
    assert result.exit_code == 0, result.stderr
    assert failed == [] and len(kept) == len(rows)
    assert result.stderr.count("refused `tools` for model `agent-model`") == 1
    prompted = [body for body in requests if body["model"] == "agent-model" and "tools" not in body]
    assert prompted and all('{"tool_calls": [' in body["messages"][0]["content"] for body in prompted)
    assert all(row["simulation"]["tool_mode"] == "prompt" for row in kept)
    # the rows hold native tool calls whatever the mode: trajectory-check reads them as they are
    assert all(any(message.get("tool_calls") for message in row["messages"]) for row in kept)


def test_the_user_may_be_served_by_another_endpoint_and_the_cache_answers_a_rerun(positives: Path, tmp_path: Path) -> None:
    rows = read_jsonl(positives)[:1]
    source = tmp_path / "one.jsonl"
    source.write_text(orjson.dumps(rows[0]).decode() + "\n")
    handler = conversation_handler(rows, writes())
    with LLMServer(handler=handler) as agent_server, LLMServer(handler=handler) as user_server:
        first, kept, _failed = run(
            agent_server.url, source, tmp_path, "--user-base-url", user_server.url, "--cache", str(tmp_path / "cache")
        )
        assert first.exit_code == 0, first.stderr
        assert {request.model for request in agent_server.chat_requests()} == {"agent-model"}
        assert {request.model for request in user_server.chat_requests()} == {"user-model"}
        asked = len(agent_server.chat_requests()) + len(user_server.chat_requests())
        again, kept_again, _failed = run(
            agent_server.url, source, tmp_path, "--user-base-url", user_server.url, "--cache", str(tmp_path / "cache")
        )
        assert again.exit_code == 0, again.stderr
        assert len(agent_server.chat_requests()) + len(user_server.chat_requests()) == asked  # nothing asked again
        (tmp_path / "fresh").mkdir()
        fresh, kept_fresh, _failed = run(
            agent_server.url, source, tmp_path / "fresh", "--user-base-url", user_server.url, "--cache", str(tmp_path / "cache")
        )
        assert fresh.exit_code == 0, fresh.stderr
        assert len(agent_server.chat_requests()) + len(user_server.chat_requests()) == asked  # every reply from the cache
    assert kept[0]["simulation"]["usage"]["prompt_tokens"] > 0
    assert kept_fresh[0]["simulation"]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}  # cached: none spent this run
    assert [row["messages"] for row in kept_again] == [row["messages"] for row in kept]


def test_the_user_and_agent_prompts_come_from_prompts_and_max_tokens_bounds_their_replies(
    positives: Path, tmp_path: Path
) -> None:
    rows = read_jsonl(positives)[:1]
    source = tmp_path / "one.jsonl"
    source.write_text(orjson.dumps(rows[0]).decode() + "\n")
    custom = tmp_path / "prompts" / "simulated_user"
    custom.mkdir(parents=True)
    built_in = PROJECT / "prompts" / "simulated_user"
    (custom / "system.txt").write_text((built_in / "system.txt").read_text() + "You speak like a pirate.\n")
    (custom / "user.txt").write_text((built_in / "user.txt").read_text())
    with LLMServer(handler=conversation_handler(rows, writes())) as server:
        result, kept, _failed = run(server.url, source, tmp_path, "--prompts", str(tmp_path / "prompts"), "--max-tokens", "300")
        requests = [request.json for request in server.chat_requests()]
    assert result.exit_code == 0, result.stderr
    assert len(kept) == 1
    user = [body for body in requests if body["model"] == "user-model"]
    agent = [body for body in requests if body["model"] == "agent-model"]
    assert all("You speak like a pirate." in body["messages"][0]["content"] for body in user), user[0]["messages"][0]["content"][
        -80:
    ]
    assert all("pirate" not in body["messages"][0]["content"] for body in agent)  # the agent's prompt stays the built-in one
    assert {body["max_tokens"] for body in requests} == {300}


def test_a_later_attempt_asks_with_another_seed_so_that_it_is_no_cached_copy(positives: Path, tmp_path: Path) -> None:
    rows = read_jsonl(positives)[:1]
    source = tmp_path / "one.jsonl"
    source.write_text(orjson.dumps(rows[0]).decode() + "\n")
    with LLMServer(handler=lambda request: Reply.chat("###STOP###")) as server:  # a user that gives up at once
        result, kept, failed = run(server.url, source, tmp_path, "--attempts", "2", "--cache", str(tmp_path / "cache"))
        seeds = [request.json.get("seed") for request in server.chat_requests()]
    assert result.exit_code == 0, result.stderr
    assert kept == [] and [(row["attempt"], row["reason"]) for row in failed] == [(1, "state_mismatch"), (2, "state_mismatch")]
    assert len(seeds) == 2 and seeds[0] == 1 and seeds[1] not in (None, 1)  # the run's --seed, then the attempt's own


def test_calls_whose_ids_the_server_repeats_get_ids_of_their_own(positives: Path, tmp_path: Path) -> None:
    rows = read_jsonl(positives)[:1]
    source = tmp_path / "one.jsonl"
    source.write_text(orjson.dumps(rows[0]).decode() + "\n")
    with LLMServer(handler=conversation_handler(rows, writes(), call_ids="call_0")) as server:
        result, kept, failed = run(server.url, source, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert failed == [] and len(kept) == 1  # each tool message answers one call: the check can read it
    ids = [call["id"] for message in kept[0]["messages"] for call in message.get("tool_calls") or ()]
    assert ids[0] == "call_0" and len(set(ids)) == len(ids) >= 4


def test_each_row_records_the_tokens_of_its_agent_and_user_requests(positives: Path, tmp_path: Path) -> None:
    """The server says each reply's usage (the agent's 11 + 7, the user's 5 + 3): the row holds their exact sums."""
    rows = read_jsonl(positives)[:1]
    source = tmp_path / "one.jsonl"
    source.write_text(orjson.dumps(rows[0]).decode() + "\n")
    handler = conversation_handler(rows, writes())

    def priced(request: Received) -> Reply:
        reply = handler(request)
        assert reply is not None
        return replace(reply, prompt_tokens=5, completion_tokens=3) if request.model == "user-model" else reply

    with LLMServer(handler=priced) as server:
        result, kept, failed = run(server.url, source, tmp_path, "--attempts", "1")
        asked = Counter(request.model for request in server.chat_requests())
    assert result.exit_code == 0, result.stderr
    assert failed == [] and len(kept) == 1 and asked["agent-model"] and asked["user-model"]
    assert kept[0]["simulation"]["usage"] == {
        "prompt_tokens": 11 * asked["agent-model"] + 5 * asked["user-model"],
        "completion_tokens": 7 * asked["agent-model"] + 3 * asked["user-model"],
    }
