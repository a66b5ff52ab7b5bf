"""A scripted user and agent behind the test LLM server, for `apigen simulate` over real HTTP.

They are the offline backend's scripts (``llm/offline_conversation.py``), fed from what the
requests really say, as a model would read them:

- a user request (its system message is the user's rules) gets the scripted user's next message,
  read from the instruction in the system message and the conversation as the user sees it;
- an agent request gets the scripted agent's next message: with ``tools`` in the body, as native
  ``tool_calls`` in the completion; without (a server that refused them, the prompt mode), as
  the ``{"tool_calls": [...]}`` JSON the prompt asks for. The agent follows the gold actions of
  the blueprint whose instruction the user's messages tell (the server is given the blueprints).

``refusing_tools`` wraps a handler so that any request with ``tools`` gets the 400 a server
without function calling sends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from apigen_cli.conversations.user_simulator import load_user_prompt
from apigen_cli.llm import offline_conversation

from .llm_server import Received, Reply, completion

Handler = Callable[[Received], Reply | None]
_USER_PROMPT = load_user_prompt()
_USER_RULES = _USER_PROMPT.system.split("\n", 1)[0]  # how a request of the user simulator is told apart
_RESULT = "[result of "


def conversation_handler(
    blueprints: Sequence[dict[str, Any]], writes: Sequence[str], *, error_rate: float = 0.0, call_ids: str | None = None
) -> Handler:
    """Answers `apigen simulate`'s user and agent requests for these blueprints.

    ``call_ids``: the id every native call gets (a server that numbers each reply's calls afresh).
    """

    def handle(request: Received) -> Reply:
        body = request.json
        messages = body["messages"]
        if str(messages[0].get("content", "")).startswith(_USER_RULES):
            return Reply.chat(_user_reply(messages, error_rate))
        return _agent_reply(body, messages, blueprints, writes, error_rate, call_ids)

    return handle


def refusing_tools(handler: Handler) -> Handler:
    """A server without function calling: a request with ``tools`` is refused with a 400 that names them."""

    def handle(request: Received) -> Reply | None:
        if request.json.get("tools"):
            return Reply.error(400, "tools is not supported by this server")
        return handler(request)

    return handle


def _user_reply(messages: list[dict[str, Any]], error_rate: float) -> str:
    instruction = str(messages[0]["content"]).split("Instruction: ", 1)[1].split("\n", 1)[0]
    assert messages[1] == _USER_PROMPT.render(instruction="", persona="")[1]  # the agent's greeting, answered first
    heard = [
        {"role": "user" if message["role"] == "assistant" else "agent", "text": message["content"]} for message in messages[2:]
    ]
    task = {"instruction": instruction, "conversation": heard}
    return offline_conversation.user(task, key=instruction, error_rate=error_rate)


def _agent_reply(
    body: dict[str, Any],
    messages: list[dict[str, Any]],
    blueprints: Sequence[dict[str, Any]],
    writes: Sequence[str],
    error_rate: float,
    call_ids: str | None,
) -> Reply:
    said = [
        str(message["content"])
        for message in messages
        if message["role"] == "user" and not str(message.get("content", "")).startswith(_RESULT)
    ]
    blueprint = _told(said, blueprints)
    task = {
        "actions": blueprint["actions"] if blueprint else [],
        "writes": list(writes),
        "outputs": blueprint.get("outputs", []) if blueprint else [],
        "messages": messages[1:],
    }
    reply = orjson.loads(offline_conversation.agent(task, key=str(len(said)), error_rate=error_rate))
    model = str(body.get("model"))
    if body.get("tools"):
        answer = completion(reply["content"] or "", model, 11, 7)
        message = answer["choices"][0]["message"]
        message["content"] = reply["content"]
        if reply["tool_calls"]:
            message["tool_calls"] = [dict(call, id=call_ids or call["id"]) for call in reply["tool_calls"]]
            answer["choices"][0]["finish_reason"] = "tool_calls"
        return Reply(body=answer)
    if reply["tool_calls"]:
        calls = [
            {"name": call["function"]["name"], "arguments": orjson.loads(call["function"]["arguments"])}
            for call in reply["tool_calls"]
        ]
        return Reply.chat(orjson.dumps({"tool_calls": calls}).decode())
    return Reply.chat(reply["content"])


def _told(said: list[str], blueprints: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The blueprint whose instruction's pieces the user has told, once they have told all of them."""
    told = [text.removeprefix("Hi. ") for text in said]
    for blueprint in blueprints:
        pieces = offline_conversation.instruction_pieces(blueprint["instruction"])
        if all(piece in told for piece in pieces):
            return blueprint
    return None
