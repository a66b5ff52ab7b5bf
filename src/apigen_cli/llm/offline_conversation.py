"""The offline backend's simulated conversations: a scripted user and a scripted agent.

``apigen simulate -m offline --user-model offline`` runs the whole multi-turn path without a
model, in the demo and in CI. Both answer the structured task their request carries:

- ``{"task": "simulated_user", "instruction", "conversation": [{"role": "user"|"agent", "text"}]}``:
  the user tells the instruction piece by piece, as tau-bench's rules ask: first the wish, then,
  each time the agent asks, who they are, then the details they know; "yes" to a request to
  confirm; "I do not know" when they have nothing left to tell; and the stop marker
  (``###STOP###``) once the agent reports or asks whether there is anything else.
- ``{"task": "simulated_agent", "actions", "writes", "outputs", "messages"}``: the agent follows
  the blueprint's gold ``actions``: it asks who the user is and what they want, makes the reads,
  asks to confirm before the first write (the policy's rule), makes the writes and reports,
  telling the ``outputs``. It answers with native ``tool_calls`` (``chat.tool_reply``).

A seeded share of conversations (``offline_error_rate``, 0.1 unless set; half that for the
user) carries a typical slip, so that every check downstream has something to catch. The agent's: a wrong argument in a
write, a write skipped, a write done twice, an output never told (each where the blueprint has
one to spoil). The user's: a detail made up (an order number the instruction never gave), or a
stop before the task is done. Which slip, and whether there is one, depends only on the seed and
the request's ``key`` (the conversation and its attempt), never on the turn: one conversation
keeps one script.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from .chat import tool_reply
from .offline import DEFAULT_ERROR_RATE, _rng, _TaskError
from .offline_blueprint import _texts, _vote

STOP = "###STOP###"
AGENT_SLIPS = ("wrong_argument", "skipped_write", "double_write", "untold_output")
USER_SLIPS = ("invented_detail", "stopped_early")
INVENTED = "By the way, my order number is ORD-999999."  # a detail no instruction gives

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_FIRST_PERSON = (
    (re.compile(r"\bAsked who you are, you give\b"), "To identify myself:"),
    (re.compile(r"\bWhat you know:"), "The details:"),
    (re.compile(r"\b[Yy]ou are\b"), "I am"),
    (re.compile(r"\b[Yy]ou do not\b"), "I do not"),
    (re.compile(r"\b[Yy]ou don't\b"), "I don't"),
    (re.compile(r"\b[Yy]ou want\b"), "I want"),
    (re.compile(r"\b[Yy]ou have\b"), "I have"),
    (re.compile(r"\b[Yy]our\b"), "my"),
    (re.compile(r"\b[Yy]ou\b"), "I"),
)


# --- the user ---------------------------------------------------------------------------


def user(task: Mapping[str, Any], *, key: str = "", seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE) -> str:
    """The user's next message for ``task``: one piece of the instruction at a time, ``###STOP###`` when done."""
    instruction = task.get("instruction")
    conversation = task.get("conversation")
    if not isinstance(instruction, str) or not isinstance(conversation, list):
        raise _TaskError("the simulated user's task needs an `instruction` and a `conversation` list")
    pieces = instruction_pieces(instruction)
    said = [turn.get("text", "") for turn in conversation if isinstance(turn, dict) and turn.get("role") == "user"]
    heard = [turn.get("text", "") for turn in conversation if isinstance(turn, dict) and turn.get("role") == "agent"]
    slip = _slip(_rng(seed or 0, key, "user"), error_rate / 2, USER_SLIPS)  # a user slips half as often as the agent
    if not said:
        return "Hi. " + pieces[0]
    last = str(heard[-1]) if heard else ""
    lowered = last.lower()
    if slip == "stopped_early" and len(said) == 1:
        return f"Actually, never mind. Thank you. {STOP}"
    if "anything else" in lowered or not lowered.rstrip().endswith("?"):
        return f"No, that is all. Thank you! {STOP}"
    if any(word in lowered for word in ("confirm", "go ahead", "proceed")):
        return "Yes, please go ahead."
    told = sum(1 for text in said if not str(text).startswith(("Yes, please", "I do not know")))
    if told < len(pieces):
        piece = pieces[told]
        return f"{piece} {INVENTED}" if slip == "invented_detail" and told == 1 else piece
    return "I do not know that, sorry."


def instruction_pieces(instruction: str) -> list[str]:
    """The instruction in the first person, in the order a user tells it: the wish, who they are, the details."""
    wish: list[str] = []
    identity: list[str] = []
    details: list[str] = []
    for sentence in _SENTENCE_END.split(instruction.strip()):
        if sentence.startswith(("You are", "Asked who you are", "Your name", "Your email")):
            identity.append(sentence)
        elif sentence.startswith(("What you know", "You know", "You do not", "You don't", "If ")):
            details.append(sentence)
        else:
            wish.append(sentence)
    pieces = [" ".join(group) for group in (wish, identity, details) if group]
    return [_first_person(piece) for piece in pieces] or ["I need some help."]


def _first_person(text: str) -> str:
    for pattern, replacement in _FIRST_PERSON:
        text = pattern.sub(replacement, text)
    return text


# --- the agent --------------------------------------------------------------------------

ASK_IDENTITY = "I can help with that. First, could you tell me who you are (your email, or your name and zip code)?"
ASK_DETAILS = "Thank you. What are the details of your request?"
CONFIRM = "I have what I need: I will now make the change ({calls}). Do you confirm that I should go ahead?"
ANYTHING_ELSE = "Is there anything else I can help you with?"


def agent(task: Mapping[str, Any], *, key: str = "", seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE) -> str:
    """The agent's next assistant message for ``task``, as ``{"content", "tool_calls"}`` JSON."""
    actions = task.get("actions")
    messages = task.get("messages")
    if not isinstance(actions, list) or not isinstance(messages, list):
        raise _TaskError("the simulated agent's task needs `actions` and `messages` lists")
    writes = {name for name in task.get("writes") or () if isinstance(name, str)}
    outputs = [output for output in task.get("outputs") or () if isinstance(output, str)]
    rng = _rng(seed or 0, key, "agent")
    plan = _plan(actions, writes, outputs, _agent_slip(rng, error_rate, actions, writes, outputs))
    spoken = sum(1 for message in messages if isinstance(message, dict) and message.get("role") == "assistant")
    made = sum(
        len(message.get("tool_calls") or ())
        for message in messages
        if isinstance(message, dict) and message.get("role") == "assistant"
    )
    step = plan[spoken] if spoken < len(plan) else ("say", ANYTHING_ELSE)
    kind, what = step
    if kind == "call":
        calls = [
            {
                "id": f"call_{made + number}",
                "type": "function",
                "function": {"name": action["name"], "arguments": orjson.dumps(action.get("arguments", {})).decode()},
            }
            for number, action in enumerate(what, start=1)
        ]
        return tool_reply(None, calls)
    return tool_reply(str(what), [])


def _plan(actions: list[Any], writes: set[str], outputs: list[str], slip: str | None) -> list[tuple[str, Any]]:
    """The agent's script: one step per assistant message it will write."""
    calls = [action for action in actions if isinstance(action, dict) and isinstance(action.get("name"), str)]
    first_write = next((index for index, action in enumerate(calls) if action["name"] in writes), len(calls))
    reads, rest = calls[:first_write], calls[first_write:]
    if slip in ("wrong_argument", "skipped_write", "double_write"):
        rest = _slipped(rest, writes, slip)
    plan: list[tuple[str, Any]] = [("say", ASK_IDENTITY), ("say", ASK_DETAILS)]
    plan.extend(("call", [action]) for action in reads)
    if first_write < len(calls):
        names = ", ".join(f"`{action['name']}`" for action in calls[first_write:] if action["name"] in writes)
        plan.append(("say", CONFIRM.format(calls=names)))
    plan.extend(("call", [action]) for action in rest)
    told = [] if slip == "untold_output" else outputs
    if first_write < len(calls):
        report = "It is done."
    else:
        report = "I looked into it, and I cannot make that change: our policy does not allow it."
    if told:
        report += " " + " ".join(f"{output}." for output in told)
    plan.append(("say", f"{report} {ANYTHING_ELSE}"))
    return plan


def _agent_slip(rng: Any, error_rate: float, actions: list[Any], writes: set[str], outputs: list[str]) -> str | None:
    """The slip this conversation's agent makes, among those the blueprint leaves room for; ``None`` mostly."""
    if not error_rate or rng.random() >= error_rate:
        return None
    names = [action.get("name") for action in actions if isinstance(action, dict)]
    possible: list[str] = []
    if any(name in writes for name in names):
        possible.extend(("skipped_write", "double_write"))
        if any(_spoilable(action) for action in actions if isinstance(action, dict) and action.get("name") in writes):
            possible.append("wrong_argument")
    if outputs:
        possible.append("untold_output")
    return rng.choice(possible) if possible else None


def _slip(rng: Any, error_rate: float, slips: tuple[str, ...]) -> str | None:
    if not error_rate or rng.random() >= error_rate:
        return None
    return str(rng.choice(slips))


def _slipped(calls: list[dict[str, Any]], writes: set[str], slip: str) -> list[dict[str, Any]]:
    """The calls from the first write on, with the slip made on the first write."""
    index = next(index for index, action in enumerate(calls) if action["name"] in writes)
    action = calls[index]
    if slip == "skipped_write":
        return calls[:index] + calls[index + 1 :]
    if slip == "double_write":
        return calls[: index + 1] + [action] + calls[index + 1 :]
    arguments = dict(action.get("arguments") or {})
    for name in reversed(list(arguments)):
        if isinstance(arguments[name], str) and arguments[name]:
            arguments[name] = _spoiled(arguments[name])
            break
    return calls[:index] + [{"name": action["name"], "arguments": arguments}] + calls[index + 1 :]


def _spoilable(action: dict[str, Any]) -> bool:
    arguments = action.get("arguments")
    return isinstance(arguments, dict) and any(isinstance(value, str) and value for value in arguments.values())


def _spoiled(value: str) -> str:
    """A near miss of ``value``: its last digit moved on by one (``ORD-330709`` -> ``ORD-330700``), else one letter dropped."""
    for position in range(len(value) - 1, -1, -1):
        if value[position].isdigit():
            return value[:position] + str((int(value[position]) + 1) % 10) + value[position + 1 :]
    return value[:-1] if len(value) > 1 else value + "x"


def review(task: Mapping[str, Any], *, key: str = "", seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE) -> str:
    """A judge's ``{"thought", "pass"}`` on a conversation: is every value its calls use one it heard?

    Heard: said by the user, or returned by an earlier call (a tool message), case aside. An id the
    agent guessed passes a replay that happens to find it; this rule catches it."""
    messages = task.get("messages")
    if not isinstance(messages, list):
        raise _TaskError("the conversation review task needs `messages`")
    heard: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") in ("user", "tool"):
            content = message.get("content")
            heard.append((content if isinstance(content, str) else orjson.dumps(content).decode()).lower())
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    arguments = orjson.loads(arguments)
                except orjson.JSONDecodeError:
                    return _vote(f"the call `{function.get('name')}` has arguments that are not JSON", passed=False)
            for name, value in (arguments or {}).items() if isinstance(arguments, dict) else ():
                for text in _texts(value):
                    if not any(text.lower() in earlier for earlier in heard):
                        return _vote(
                            f"the call `{function.get('name')}` uses {name} {text!r}, which the user never gave "
                            "and no earlier call returned",
                            passed=False,
                        )
    return _vote("every value the calls use was given by the user or returned by an earlier call", passed=True)
