"""A scripted 'model' for the test server: it answers apigen's own prompts sensibly.

Generation requests (they carry a reply schema naming the sampled tools) get
pairs written by apigen's offline generator for those tools, seeded by the
prompt, so the same request always gets the same answer. Judge requests get a
verdict. Runs against it go through real sockets and the real HTTP client.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson

from apigen_cli.conversations.user_simulator import load_user_prompt
from apigen_cli.llm.offline import generate as offline_generate
from apigen_cli.llm.offline_blueprint import blueprint as offline_blueprint

from .llm_server import Received, Reply

JUDGE_MARK = "quality of function-calling training data"
_PAIRS = re.compile(r"\b(\d+) (?:query/answer )?pairs\b")
_TOOLS_HEADER = re.compile(r"\(JSON\):\s*(?=\[)")  # each generator prompt puts the tools after "… (JSON):"


def is_judge(request: Received) -> bool:
    messages = request.json.get("messages", []) if isinstance(request.json, dict) else []
    return any(JUDGE_MARK in str(message.get("content", "")) for message in messages)


def _tools_from_schema(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    response_format = body.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return None
    schema = response_format["json_schema"]["schema"]
    calls = schema["properties"]["pairs"]["items"]["properties"]["answers"]["items"]
    options = calls.get("anyOf", [calls])
    return [
        {
            "name": option["properties"]["name"]["enum"][0],
            "description": "a tool",
            "parameters": option["properties"]["arguments"],
        }
        for option in options
    ]


def _tools_from_prompt(content: str) -> list[dict[str, Any]]:
    """The tools as the generator prompt lists them (when no JSON Schema came with the request)."""
    found = _TOOLS_HEADER.search(content)
    if found is None:
        raise ValueError("the generator prompt lists no tools")
    tools, _end = json.JSONDecoder().raw_decode(content, found.end())
    return [tool for tool in tools if isinstance(tool, dict)]


def generation_reply(request: Received, *, at_most: int | None = None) -> Reply:
    """Pairs for the tools the request offers: as many as it asks for, or ``at_most`` (a model that writes fewer)."""
    body = request.json
    tools = _tools_from_schema(body) or _tools_from_prompt(request.content)
    found = _PAIRS.search(request.content)
    seed = int.from_bytes(hashlib.blake2b(request.raw, digest_size=4).digest(), "big")
    style = "simple" if len(tools) == 1 else "multiple"
    pairs = offline_generate(
        {"task": "generate", "tools": tools, "style": style, "pairs": int(found.group(1)) if found else 3, "seed": seed},
        error_rate=0.0,
    )
    return Reply.chat(orjson.dumps({"pairs": orjson.loads(pairs)[:at_most]}).decode())


def judge_reply(request: Received, *, fail_when: str | None = None) -> Reply:
    content = request.content
    if fail_when is not None and fail_when in content:
        return Reply.chat('{"thought": "the calls do not fit the query", "pass": "no"}')
    return Reply.chat('{"thought": "", "pass": "yes"}')


_BLUEPRINT_FOCUS = re.compile(r"Write one task around the tool `([^`]+)`")


def is_simulated_user(request: Received) -> bool:
    """A request of `apigen simulate`'s user simulator: its system message is the user's rules."""
    messages = request.json.get("messages", []) if isinstance(request.json, dict) else []
    rules = load_user_prompt().system.split("\n", 1)[0]
    return bool(messages) and str(messages[0].get("content", "")).startswith(rules)


def is_blueprint(request: Received) -> bool:
    return _BLUEPRINT_FOCUS.search(request.content) is not None


def blueprint_reply(request: Received) -> Reply:
    """A blueprint by apigen's offline writer, for the tools and records the `apigen blueprint` prompt shows."""
    content = request.content
    decoder = json.JSONDecoder()
    tools, _end = decoder.raw_decode(content, content.index("Tools (JSON):\n") + len("Tools (JSON):\n"))
    records, _end = decoder.raw_decode(content, content.index("(JSON):\n", content.index("Records")) + len("(JSON):\n"))
    focus = _BLUEPRINT_FOCUS.search(content)
    assert focus is not None
    seed = int.from_bytes(hashlib.blake2b(request.raw, digest_size=4).digest(), "big")
    task = {"task": "blueprint", "tools": tools, "writes": [focus.group(1)], "records": records, "seed": seed}
    return Reply.chat(offline_blueprint(task, error_rate=0.0))


def pipeline_handler(request: Received) -> Reply:
    if is_judge(request):
        return judge_reply(request)
    if is_simulated_user(request):
        return Reply.chat("###STOP###")  # a user that has nothing to ask: `apigen simulate`'s example runs, unverified
    if request.json.get("tools"):  # the agent of `apigen simulate`
        return Reply.chat("How can I help you?")
    return blueprint_reply(request) if is_blueprint(request) else generation_reply(request)


def one_pair_handler(request: Received) -> Reply:
    """As ``pipeline_handler``, from a model that writes one pair whatever it is asked for (as small models do)."""
    return judge_reply(request) if is_judge(request) else generation_reply(request, at_most=1)


def answered_keys(log_lines: list[dict[str, Any]]) -> list[str]:
    return [entry["key"] for entry in log_lines]
