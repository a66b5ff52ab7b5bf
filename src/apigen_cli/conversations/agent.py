"""The agent of a simulated conversation: a model given the policy and the environment's tools.

The policy is its system message; the tools go in the chat API's ``tools`` parameter, and the
model answers with native ``tool_calls`` (``chat.tool_reply`` carries them as text). A server
that refuses ``tools`` (a 400 naming them) gets the same tools described in the system message
instead, and answers calls as JSON in its text, the step-down JSON mode has for ``generate``:
``ToolModes`` says so once on stderr and asks that model this way for the rest of the run. The
conversation is kept in OpenAI's format whatever the mode; only the request is rendered for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson

from ..llm.chat import OFFLINE_MODEL, TOOLS_REFUSED, ChatRequest, ChatResult, Tokens
from ..problems import TOO_DEEP, Problem, may_be_too_deep, too_deep
from ..rows.chat import ARGUMENTS_TOO_DEEP_TEXT, MAX_ARGUMENTS_DEPTH
from ..stages.extract import NOT_FOUND, find_json
from ..stages.prompts import Template, load_prompt_pair

PROMPT = "simulated_agent"  # prompts/simulated_agent/: the system message, and the tools block of the prompt mode
NO_POLICY = "(no policy was given: act as a careful support agent would)"


def load_agent_prompt(prompts_dir: str | None = None) -> Template:
    """``prompts/simulated_agent/`` (``--prompts DIR`` replaces it)."""
    return load_prompt_pair(PROMPT, prompts_dir)


class Asker(Protocol):
    """What the conversation needs of an LLM service: one request answered at a time, from any thread."""

    def ask(self, request: ChatRequest) -> ChatResult: ...


@dataclass(frozen=True)
class AgentTurn:
    """One assistant message: its text and its calls (OpenAI's ``tool_calls``), or why there is none."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    problem: Problem | None = None
    prompted: bool = False  # asked with the tools in the prompt (the server refused `tools`)
    tokens: Tokens = Tokens()  # what its requests cost (a refused request's too)

    def message(self) -> dict[str, Any]:
        """The assistant message as the conversation row holds it."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


class ToolModes:
    """Which models take ``tools`` natively; one whose server refused them is asked with the tools in its prompt."""

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self._prompted: set[str] = set()
        self._lock = threading.Lock()
        self._warn = warn

    def native(self, model: str) -> bool:
        return model not in self._prompted

    def step_down(self, model: str, reason: str) -> None:
        with self._lock:
            if model in self._prompted:
                return
            self._prompted.add(model)
        if self._warn is not None:
            self._warn(
                f"the LLM endpoint refused `tools` for model `{model}` ({reason}); describing the tools in the system "
                "message and reading calls from the reply's JSON instead, for this model for the rest of the run"
            )


def openai_tools(definitions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Library entries as the chat API's ``tools``: name, description and parameters only."""
    return [
        {
            "type": "function",
            "function": {
                "name": definition["name"],
                "description": str(definition.get("description") or ""),
                "parameters": definition.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        for definition in definitions
    ]


@dataclass(frozen=True)
class Agent:
    """The agent model with its policy and tools; ``reply`` asks it for its next message."""

    chat: Asker
    model: str
    tools: list[dict[str, Any]]
    modes: ToolModes
    prompt: Template
    policy: str | None = None
    max_tokens: int | None = None

    def system_message(self) -> dict[str, Any]:
        system, _tools = self._rendered()
        return {"role": "system", "content": system}

    def _rendered(self) -> tuple[str, str]:
        """The system message, and the tools block the prompt mode adds to it."""
        listed = "\n".join(orjson.dumps(tool["function"]).decode() for tool in self.tools)
        system, tools = self.prompt.render(policy=self.policy or NO_POLICY, tools=listed)
        return system["content"], tools["content"]

    def reply(self, key: str, messages: list[dict[str, Any]], offline_task: dict[str, Any], options: dict[str, Any]) -> AgentTurn:
        """The agent's next message after ``messages`` (the conversation, its system message first)."""
        native = self.model == OFFLINE_MODEL or self.modes.native(self.model)
        result = self.chat.ask(self._request(key, messages, native, offline_task, options))
        tokens = Tokens.of(result)
        if native and result.error is not None and result.error.code == TOOLS_REFUSED:
            self.modes.step_down(self.model, result.error.message)
            native = False
            result = self.chat.ask(self._request(key, messages, native, offline_task, options))
            tokens += Tokens.of(result)
        if not result.ok or result.text is None:
            problem = result.error or Problem("llm_error", "the agent's reply has no text")
            return AgentTurn(problem=Problem(problem.code, f"the agent's request failed: {problem.message}"), tokens=tokens)
        used = {call.get("id") for message in messages for call in message.get("tool_calls") or () if isinstance(call, dict)}
        turn = (
            replace(read_native(result.text, used), tokens=tokens)
            if native
            else replace(read_prompted(result.text, used), prompted=True, tokens=tokens)
        )
        deep = _too_deep_call(turn.tool_calls)
        return turn if deep is None else AgentTurn(problem=deep, prompted=turn.prompted, tokens=tokens)

    def _request(
        self, key: str, messages: list[dict[str, Any]], native: bool, offline_task: dict[str, Any], options: dict[str, Any]
    ) -> ChatRequest:
        if native:
            shown, tools = messages, self.tools
        else:
            shown, tools = prompted_messages(messages, self._rendered()[1]), None
        return ChatRequest(
            key,
            self.model,
            shown,
            offline_task=offline_task if self.model == OFFLINE_MODEL else None,
            options={**options, **({"max_tokens": self.max_tokens} if self.max_tokens else {})} or None,
            tools=tools,
        )


def read_native(text: str, used: set[Any]) -> AgentTurn:
    """A reply to a request with ``tools`` (``{"content", "tool_calls"}``), its calls made well-formed.

    ``used``: the call ids of the conversation so far. A call whose id is missing or taken gets
    one of its own: some servers number each reply's calls from ``call_0`` again, and a tool
    message must answer exactly one call.
    """
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return AgentTurn(text)  # a server that ignored `tools` and wrote text
    if not isinstance(message, dict):
        return AgentTurn(text)
    content = message.get("content")
    calls = []
    for number, call in enumerate(message.get("tool_calls") or (), start=1):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id or call_id in used:
            call_id = _fresh_id(used, len(used) + number)
        used = used | {call_id}
        calls.append(_call(call_id, function.get("name"), function.get("arguments")))
    return AgentTurn(content if isinstance(content, str) else "", calls)


def read_prompted(text: str, used: set[Any]) -> AgentTurn:
    """A reply in prompt mode: ``{"tool_calls": [...]}`` as JSON means calls, anything else is text to the user."""
    found = find_json(text)
    if found is NOT_FOUND or not isinstance(found, dict) or not isinstance(found.get("tool_calls"), list):
        return AgentTurn(text)
    calls = []
    for call in found["tool_calls"]:
        if isinstance(call, dict):
            call_id = _fresh_id(used, len(used) + 1)
            used = used | {call_id}
            calls.append(_call(call_id, call.get("name"), call.get("arguments")))
    return AgentTurn("", calls)


def _too_deep_call(calls: list[dict[str, Any]]) -> Problem | None:
    """A call whose arguments (a JSON string, read as the environment will read it) nest past what a row may hold.

    Such arguments could be neither replayed nor written back out (the encoder stops at 254
    levels): the conversation ends with ``too_deep`` rather than the run.
    """
    for call in calls:
        arguments = call["function"]["arguments"]
        if not may_be_too_deep(arguments, MAX_ARGUMENTS_DEPTH):
            continue
        try:
            where = too_deep(orjson.loads(arguments), MAX_ARGUMENTS_DEPTH)
        except orjson.JSONDecodeError:
            continue  # not JSON: the call is answered with an error, not made
        if where is not None:
            name = call["function"]["name"]
            return Problem(TOO_DEEP, f"the agent's call `{name[:80]}` has arguments {ARGUMENTS_TOO_DEEP_TEXT} (at `{where}`)")
    return None


def _fresh_id(used: set[Any], number: int) -> str:
    while f"call_{number}" in used:
        number += 1
    return f"call_{number}"


def _call(call_id: str, name: Any, arguments: Any) -> dict[str, Any]:
    """One call in OpenAI's form; arguments as the model gave them (a string stays a string, to be read by the check).

    A name that is no string is no name (``""``): its text (``{'x': 1}``, ``5``) was never what the
    model called, and the check refuses a call without one, so no verified row holds it.
    """
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name if isinstance(name, str) else "", "arguments": arguments},
    }


def prompted_messages(messages: list[dict[str, Any]], tools_block: str) -> list[dict[str, Any]]:
    """The conversation for a model without ``tools``: the tools in the system message, calls and results as text."""
    shown: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            shown.append({"role": "system", "content": str(message.get("content") or "") + "\n\n" + tools_block})
        elif role == "assistant" and message.get("tool_calls"):
            calls = [
                {"name": call["function"]["name"], "arguments": _arguments_shown(call["function"]["arguments"])}
                for call in message["tool_calls"]
            ]
            shown.append({"role": "assistant", "content": orjson.dumps({"tool_calls": calls}).decode()})
        elif role == "tool":
            shown.append({"role": "user", "content": f"[result of {message.get('tool_call_id')}] {message.get('content')}"})
        else:
            shown.append({"role": role, "content": message.get("content") or ""})
    return shown


def _arguments_shown(arguments: str) -> Any:
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
