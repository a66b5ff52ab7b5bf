"""The user of a simulated conversation: a model acting out the blueprint's instruction, and its own errors.

It is given the instruction and the persona, never the gold actions, and tau-bench's rules: one
message at a time, never everything at once, never an id or a detail the instruction does not
give (it says it does not know), and a stop marker (``###STOP###``) when the task is done or
cannot be. It sees the conversation from its side: the agent's messages as the other party's,
its own as its own, no tool calls or results.

A simulated user makes mistakes of its own (up to 30% of tau-bench's failed runs were the
simulator's fault): ``user_errors`` flags the two that can be seen from the conversation, so
that their rate is reported rather than assumed away.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..llm.chat import OFFLINE_MODEL, ChatRequest, Tokens
from ..problems import Problem
from ..stages.prompts import Template, load_prompt_pair
from .agent import Asker

STOP_MARKERS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
PROMPT = "simulated_user"  # prompts/simulated_user/: the rules and the instruction, then the agent's greeting


def load_user_prompt(prompts_dir: str | None = None) -> Template:
    """``prompts/simulated_user/`` (``--prompts DIR`` replaces it)."""
    return load_prompt_pair(PROMPT, prompts_dir)


#: Details a user can give: emails, and ids or numbers (a token holding a digit, three characters or more).
# A detail is an email, or a word of 3 or more characters that holds a digit (an id, a number).
# Both are found in one pass over the text: a pattern that could start at every letter of a long
# word and run to its end (an unbounded local part, a lookahead over the rest of the word) took
# time in the square of the word's length, an hour for a message of 800,000 letters.
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+")  # a local part has at most 64 characters
_WORD = re.compile(r"[\w-]+")

INVENTED = "user_invented_detail"
STOPPED_EARLY = "user_stopped_early"


@dataclass(frozen=True)
class UserTurn:
    """The user's message (without its stop marker), whether it ends the conversation, or why there is none."""

    text: str = ""
    stop: bool = False
    problem: Problem | None = None
    tokens: Tokens = Tokens()  # what its request cost


@dataclass(frozen=True)
class UserSimulator:
    """The user model with its prompt; ``reply`` asks it for the user's next message."""

    chat: Asker
    model: str
    prompt: Template
    max_tokens: int | None = None

    def reply(
        self, key: str, instruction: str, persona: str | None, messages: list[dict[str, Any]], options: dict[str, Any]
    ) -> UserTurn:
        """The user's next message, given the conversation so far (OpenAI's format, as the row holds it)."""
        heard = [
            (message["role"], message.get("content") or "") for message in messages if message["role"] in ("user", "assistant")
        ]
        heard = [(role, text) for role, text in heard if text]
        shown: list[dict[str, Any]] = list(
            self.prompt.render(instruction=instruction, persona=f"Persona: {persona}" if persona else "")
        )  # the rules and the instruction, then the agent's greeting, which the user answers first
        shown += [{"role": "assistant" if role == "user" else "user", "content": text} for role, text in heard]
        task = {
            "task": "simulated_user",
            "instruction": instruction,
            "conversation": [{"role": "user" if role == "user" else "agent", "text": text} for role, text in heard],
        }
        request = ChatRequest(
            key,
            self.model,
            shown,
            offline_task=task if self.model == OFFLINE_MODEL else None,
            options={**options, **({"max_tokens": self.max_tokens} if self.max_tokens else {})} or None,
        )
        result = self.chat.ask(request)
        tokens = Tokens.of(result)
        if not result.ok or result.text is None:
            problem = result.error or Problem("llm_error", "the user simulator's reply has no text")
            return UserTurn(
                problem=Problem(problem.code, f"the user simulator's request failed: {problem.message}"), tokens=tokens
            )
        text = result.text
        stop = any(marker in text for marker in STOP_MARKERS)
        for marker in STOP_MARKERS:
            text = text.replace(marker, "")
        return UserTurn(text.strip(), stop, tokens=tokens)


def _details(text: str) -> list[str]:
    """The emails, then the words (hyphens at their ends aside) of 3 characters or more that hold a digit."""
    emails = _EMAIL.findall(text)
    words = (word.strip("-") for word in _WORD.findall(_EMAIL.sub(" ", text)))
    return emails + [word for word in words if len(word) >= 3 and any(character.isdecimal() for character in word)]


def user_errors(instruction: str, messages: Sequence[dict[str, Any]], *, stopped: bool, gold_writes: Sequence[str]) -> list[str]:
    """The user simulator's errors seen in a conversation.

    - ``user_invented_detail``: a user message gives a detail (an email, an id, a number) that
      neither the instruction nor anything the agent or a tool said before holds;
    - ``user_stopped_early``: the user ended the conversation while the agent waited for the answer
      to a question (its last message asks one, and not whether there is anything else) and a
      write of the gold actions had not been called at all: the task was left undone by the user,
      not by an agent that skipped the write and said it was done.
    """
    errors = []
    known = instruction.lower()
    for message in messages:
        content = str(message.get("content") or "")
        if message.get("role") == "user" and any(detail.lower() not in known for detail in _details(content)):
            errors.append(INVENTED)
            break
        known += "\n" + content.lower()
    called = {
        call.get("function", {}).get("name")
        for message in messages
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    }
    said = [str(message.get("content") or "") for message in messages if message.get("role") == "assistant"]
    last = next((text.strip() for text in reversed(said) if text.strip()), "")
    asking = last.endswith("?") and "anything else" not in last.lower()
    if stopped and asking and any(name not in called for name in gold_writes):
        errors.append(STOPPED_EARLY)
    return errors
