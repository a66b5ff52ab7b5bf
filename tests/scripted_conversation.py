"""A scripted user and agent behind the test LLM server, for `apigen simulate` over real HTTP.

They are the offline backend's scripts (``llm/offline_conversation.py``), fed from what the
requests really say, as a model would read them:

- a user request (its system message is the user's rules) gets the scripted user's next message,
  read from the instruction in the system message and the conversation as the user sees it;
- an agent request gets the scripted agent's next message: with ``tools`` in the body, as native
  ``tool_calls`` in the completion; without (a server that refused them, the prompt mode), as
  the ``{"tool_calls": [...]}`` JSON the prompt asks for. The agent follows the gold actions of
  the blueprint whose instruction the user's messages tell (the server is given the blueprints).

Each conversation keeps one script, as the offline backend's does: the user's and the agent's slips
(``error_rate``) are drawn from what the request carries for the whole conversation, the instruction
and the ``seed`` a later attempt asks with, never from the turn. So a conversation that slips fails
for the slip's reason, and a later attempt, asked with another seed, may go otherwise.

``refusing_tools`` wraps a handler so that any request with ``tools`` gets the 400 a server
without function calling sends. ``multi_turn_handler`` serves a whole ``run --multi-turn``: it
writes the blueprints, then plays the user and the agent of each blueprint the run has written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import orjson

from apigen_cli.conversations.user_simulator import load_user_prompt
from apigen_cli.llm import offline_conversation

from .llm_server import Received, Reply, completion
from .scripted_model import blueprint_reply, is_blueprint

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
            return Reply.chat(_user_reply(messages, error_rate, _attempt(body)))
        return _agent_reply(body, messages, blueprints, writes, error_rate, call_ids)

    return handle


class BlueprintsWritten(Sequence[dict[str, Any]]):
    """The blueprints the run under test has written so far: the scripted agent follows the one the user tells."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | Sequence[dict[str, Any]]:
        return self._rows()[index]

    def __len__(self) -> int:
        return len(self._rows())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows())


def multi_turn_handler(folder: Path, writes: Sequence[str], *, error_rate: float = 0.3) -> Handler:
    """Writes blueprints, then plays the user and the agent of each blueprint the run in ``folder`` has written.

    With ``error_rate``, a seeded few of the conversations slip (a wrong write, a made-up detail, ...) and are
    rejected for it; the rest are verified, so both of a run's files have rows.
    """
    answer = conversation_handler(BlueprintsWritten(folder / "conversations.blueprints.jsonl"), writes, error_rate=error_rate)

    def handle(request: Received) -> Reply | None:
        return blueprint_reply(request) if is_blueprint(request) else answer(request)

    return handle


#: why a scripted conversation that slipped is rejected: the agent's wrong, skipped or doubled write or the user's
#: made-up detail leave another state than the gold actions'; an early stop, the write never made
SLIPPED = {"state_mismatch"}


def conversations_asked(requests: list[Received], blueprints: list[dict[str, Any]]) -> list[str]:
    """Whose each chat request the server saw was: ``blueprint`` for a blueprint's, else the id of the blueprint
    whose conversation asked it. One request at a time, and the user speaks first: an agent's request is of the
    conversation whose user last asked."""
    by_instruction = {row["instruction"]: row["id"] for row in blueprints}
    assert len(by_instruction) == len(blueprints)  # each conversation told apart by its instruction
    whose, current = [], ""
    for request in requests:
        if is_blueprint(request):
            whose.append("blueprint")
            continue
        instruction = told_instruction(request)
        if instruction is not None:
            current = by_instruction[instruction]
        whose.append(current)
    return whose


def refusing_tools(handler: Handler) -> Handler:
    """A server without function calling: a request with ``tools`` is refused with a 400 that names them."""

    def handle(request: Received) -> Reply | None:
        if request.json.get("tools"):
            return Reply.error(400, "tools is not supported by this server")
        return handler(request)

    return handle


def _attempt(body: dict[str, Any]) -> str:
    """What tells one attempt from another in a request: the seed a later attempt asks with (none for the first)."""
    return str(body.get("seed", ""))


def told_instruction(request: Received) -> str | None:
    """The instruction a user simulator's request acts out; None for an agent's request."""
    messages = request.json["messages"]
    return _instruction(messages) if str(messages[0].get("content", "")).startswith(_USER_RULES) else None


def _instruction(messages: list[dict[str, Any]]) -> str:
    return str(messages[0]["content"]).split("Instruction: ", 1)[1].split("\n", 1)[0]


def _user_reply(messages: list[dict[str, Any]], error_rate: float, attempt: str) -> str:
    instruction = _instruction(messages)
    assert messages[1] == _USER_PROMPT.render(instruction="", persona="")[1]  # the agent's greeting, answered first
    heard = [
        {"role": "user" if message["role"] == "assistant" else "agent", "text": message["content"]} for message in messages[2:]
    ]
    task = {"instruction": instruction, "conversation": heard}
    return offline_conversation.user(task, key=f"{instruction}:{attempt}", error_rate=error_rate)


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
    # the script is the told blueprint's and the attempt's: one for the whole conversation (before the blueprint is
    # told, the agent only asks, the same in every script)
    key = f"{blueprint['instruction'] if blueprint else ''}:{_attempt(body)}"
    reply = orjson.loads(offline_conversation.agent(task, key=key, error_rate=error_rate))
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
    told = set(text.removeprefix("Hi. ") for text in said)
    for blueprint in blueprints:
        if all(piece in told for piece in _pieces(blueprint["instruction"])):
            return blueprint
    return None


@functools.lru_cache(maxsize=4096)
def _pieces(instruction: str) -> tuple[str, ...]:
    """An instruction's pieces, split once: every agent request looks its blueprint up among all of them, and the
    benchmark's server (one event loop for every conversation) spent its 50 ms of latency splitting them again."""
    return tuple(offline_conversation.instruction_pieces(instruction))
