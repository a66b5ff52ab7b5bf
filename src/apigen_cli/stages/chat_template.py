"""Render exported conversations with a model's chat template, as transformers does, and read the calls back.

Fine-tuning stacks (TRL, axolotl, unsloth) turn a row into text with the model's own chat
template: ``tokenizer.apply_chat_template(messages, tools=...)``. Whether a row trains the
model on the calls it holds depends on that template, not on the file format: Qwen2.5's and
Mistral's write ``arguments | tojson``, so arguments given as a JSON string come out quoted a
second time; DeepSeek's add ``arguments`` to a string, so arguments given as an object fail.
This module renders each exported record the way transformers does (a sandboxed Jinja
environment with ``trim_blocks`` and ``lstrip_blocks``, transformers' ``tojson``,
``raise_exception`` and ``strftime_now``, the ``generation`` tag, the special tokens of a
``tokenizer_config.json``), then reads the calls out of the rendered assistant turns and
compares them with the row's. It reads the call encodings of the common families:

- ``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` (Hermes, Qwen2.5, Qwen3);
- ``[TOOL_CALLS][{"name": ..., "arguments": ...}, ...]`` and ``[TOOL_CALLS]name[ARGS]{...}`` (Mistral);
- ``<｜tool▁call▁begin｜>name<｜tool▁sep｜>{...}<｜tool▁call▁end｜>`` (DeepSeek V3.1; also the
  fenced ``function<｜tool▁sep｜>name`` form of R1).

Only the text each assistant turn adds is searched, so neither the example call of a system
prompt (``{"name": <function-name>, ...}``) nor the text of a tool result is taken for a call.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.parser
import jinja2.sandbox

from ..errors import ApigenError, ConfigError, InputError

TOOL_USE = "tool_use"  # the name transformers gives a template meant for tools
# A bare template comes without its tokenizer's special tokens; transformers always passes them,
# and templates add them to strings (Mistral's ``"]" + eos_token``), so they are given as empty.
BARE_TOKENS = {"bos_token": "", "eos_token": ""}


class RenderCheckFailed(ApigenError):
    """Some exported rows do not render with the template, or their rendered calls are not the row's."""


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


# --- the environment transformers renders in ---------------------------------------------


def _tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False) -> str:
    """transformers' ``tojson``: ``json.dumps`` as it is, without Jinja's HTML escaping and key sorting."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}`` marks the assistant's tokens for transformers; here it renders its body."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Callable[[], str]) -> str:
        return caller()


def compile_template(source: str, *, now: Callable[[], datetime] = datetime.now) -> jinja2.Template:
    """The template compiled as transformers compiles it; ``now`` is the clock ``strftime_now`` reads."""
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = lambda format: now().strftime(format)
    return environment.from_string(source)


# --- the template file ----------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateSource:
    """A chat template and the special tokens it is rendered with."""

    name: str
    text: str
    special_tokens: dict[str, str]


def load_template(path: str) -> TemplateSource:
    """A ``.jinja`` file, or a ``tokenizer_config.json`` (its ``chat_template``; the ``tool_use`` one when it has several)."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        raise InputError(
            f"template file `{path}` does not exist", hint="pass `--render-check` a `.jinja` file or a `tokenizer_config.json`"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot read template file `{path}`: {error}", hint="pass `--render-check` a readable UTF-8 file"
        ) from None
    name = os.path.basename(path)
    if not path.endswith(".json"):
        return TemplateSource(name, text, dict(BARE_TOKENS))
    try:
        config = json.loads(text)
    except ValueError as error:
        raise InputError(
            f"`{path}` is not valid JSON ({error})", hint="pass a `tokenizer_config.json`, or the template as a `.jinja` file"
        ) from None
    return TemplateSource(name, _chat_template_of(config, path), {**BARE_TOKENS, **_special_tokens(config)})


def _chat_template_of(config: Any, path: str) -> str:
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):  # [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        named = {entry.get("name"): entry.get("template") for entry in template if isinstance(entry, dict)}
        template = named.get(TOOL_USE, named.get("default"))
    if not isinstance(template, str) or not template.strip():
        raise InputError(
            f"`{path}` has no `chat_template`",
            hint="pass the model's `tokenizer_config.json`, or its template as a `.jinja` file",
        )
    return template


def _special_tokens(config: dict[str, Any]) -> dict[str, str]:
    """``bos_token``, ``eos_token`` and the like, written as strings or as ``{"content": ...}``."""
    tokens = {}
    for key, value in config.items():
        if not key.endswith("_token"):
            continue
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            tokens[key] = value
    return tokens


# --- reading calls back ------------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_HERMES = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_MISTRAL = "[TOOL_CALLS]"
_DEEPSEEK_CALL = re.compile(r"<｜tool▁call▁begin｜>(.*?)<｜tool▁sep｜>(.*?)<｜tool▁call▁end｜>", re.DOTALL)
_FENCED = re.compile(r"\A(.*?)\n```(?:json)?\n(.*)\n```\s*\Z", re.DOTALL)


# What Python says when a template adds an object to a string: it wants the arguments as a JSON string.
_ADDS_A_MAPPING = re.compile(r'can only concatenate str \(not "dict"\) to str')


class _Unreadable(Exception):
    pass


def read_calls(text: str) -> list[tuple[str, Any]] | None:
    """The ``(name, arguments)`` calls written in ``text``, in order; ``None`` when it holds no call encoding known here."""
    if "<tool_call>" in text:
        return [_name_and_arguments(_json(body.strip(), "a <tool_call> block")) for body in _HERMES.findall(text)]
    if _MISTRAL in text:
        return list(_mistral_calls(text))
    if "<｜tool▁call▁begin｜>" in text:
        return [_deepseek_call(name, arguments) for name, arguments in _DEEPSEEK_CALL.findall(text)]
    return None


def _json(text: str, what: str) -> Any:
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError as error:
        raise _Unreadable(f"{what} is not JSON ({error}): {text[:120]!r}") from None
    if text[end:].strip():
        raise _Unreadable(f"{what} has text after its JSON: {text[end:][:80]!r}")
    return value


def _name_and_arguments(call: Any) -> tuple[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise _Unreadable(f"a rendered call is not an object with a `name`: {json.dumps(call)[:120]}")
    return call["name"], call.get("arguments", call.get("parameters"))


def _mistral_calls(text: str) -> Iterator[tuple[str, Any]]:
    for chunk in text.split(_MISTRAL)[1:]:
        chunk = chunk.lstrip()
        if chunk.startswith("["):  # [TOOL_CALLS][{...}, {...}]
            calls, _end = _raw(chunk, "the list after [TOOL_CALLS]")
            if not isinstance(calls, list):
                raise _Unreadable("[TOOL_CALLS] is not followed by a list of calls")
            yield from (_name_and_arguments(call) for call in calls)
        else:  # [TOOL_CALLS]name[ARGS]{...}
            name, separator, rest = chunk.partition("[ARGS]")
            if not separator:
                raise _Unreadable(f"[TOOL_CALLS] is followed neither by a list nor by `name[ARGS]`: {chunk[:80]!r}")
            arguments, _end = _raw(rest, f"the arguments of `{name}`")
            yield name.strip(), arguments


def _raw(text: str, what: str) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text)
    except ValueError as error:
        raise _Unreadable(f"{what} is not JSON ({error}): {text[:120]!r}") from None


def _deepseek_call(head: str, body: str) -> tuple[str, Any]:
    fenced = _FENCED.match(body)
    if fenced:  # function<｜tool▁sep｜>name\n```json\n{...}\n```
        return fenced.group(1).strip(), _json(fenced.group(2).strip(), "the fenced arguments")
    return head.strip(), _json(body.strip(), f"the arguments of `{head.strip()}`")


# --- the check ------------------------------------------------------------------------------------


def conversation_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's messages: ``messages``, or TRL's conversational ``prompt`` then ``completion`` (a per-turn sample)."""
    messages = record.get("messages")
    if isinstance(messages, list):
        return messages
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, list) and isinstance(completion, list):
        return [*prompt, *completion]
    return []


def expected_calls(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """The calls of a record's assistant turns, arguments decoded when the record holds them as JSON strings."""
    calls = []
    for message in conversation_of(record):
        for call in message.get("tool_calls") or []:
            function = call.get("function", call)
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                with contextlib.suppress(ValueError):  # a string that is not JSON is compared as it is
                    arguments = json.loads(arguments)
            calls.append((function.get("name"), arguments))
    return calls


class ChatTemplate:
    """One chat template, rendering records as ``apply_chat_template(messages, tools=tools)`` would."""

    def __init__(self, source: TemplateSource, *, now: Callable[[], datetime] = datetime.now) -> None:
        self.name = source.name
        self.special_tokens = source.special_tokens
        try:
            self.template = compile_template(source.text, now=now)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(
                f"the chat template `{source.name}` does not compile: {error.message} (line {error.lineno})",
                hint="pass `--render-check` the model's own template",
            ) from None

    @classmethod
    def from_file(cls, path: str, *, now: Callable[[], datetime] = datetime.now) -> ChatTemplate:
        return cls(load_template(path), now=now)

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        context = {
            **self.special_tokens,
            "messages": messages,
            "tools": tools or None,
            "documents": None,
            "add_generation_prompt": False,
        }
        return self.template.render(**context)

    def check(self, record: dict[str, Any]) -> Failure | None:
        """``None`` when the record renders and its rendered calls are its calls; else what went wrong."""
        messages = conversation_of(record)
        if not messages:
            return Failure("not_a_conversation", "the record has no `messages` (nor `prompt` and `completion`)")
        tools = record.get("tools")
        try:
            self.render(messages, tools)  # the text a trainer tokenizes: all of it must render
        except Exception as error:  # a template may fail in any way: that is the finding
            code = "wants_string_arguments" if _ADDS_A_MAPPING.search(str(error)) else "render_error"
            return Failure(code, f"the template fails: {type(error).__name__}: {error}")
        expected = expected_calls(record)
        try:
            found = [call for turn in self._assistant_turns(messages, tools) for call in read_calls(turn) or []]
        except _Unreadable as error:
            return Failure("unreadable_call", str(error))
        if expected and not found:
            return Failure(
                "no_calls_found",
                "the rendered replies hold no call apigen can read "
                "(it reads <tool_call> JSON, Mistral's [TOOL_CALLS] and DeepSeek's tool-call tokens)",
            )
        return _compare(expected, found)

    def _assistant_turns(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Iterator[str]:
        """The text each assistant turn adds: the conversation up to it, less the conversation before it.

        Reading only these keeps the example call of a system prompt and the text of tool
        results (which may hold anything) from being taken for calls. A template that does
        not render a conversation cut short, or renders its start differently, is read from
        the first reply to the end instead.
        """
        turns = [position for position, message in enumerate(messages) if message.get("role") == "assistant"]
        try:
            texts = [
                (self.render(messages[:position], tools), self.render(messages[: position + 1], tools)) for position in turns
            ]
        except Exception:
            texts = []
        if texts and all(after.startswith(before) for before, after in texts):
            yield from (after[len(before) :] for before, after in texts)
            return
        whole = self.render(messages, tools)
        try:
            opening = self.render(messages[: turns[0]], tools) if turns else whole
        except Exception:
            opening = ""
        yield whole[len(opening) :] if whole.startswith(opening) else whole


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def _compare(expected: list[tuple[str, Any]], found: list[tuple[str, Any]]) -> Failure | None:
    if len(found) != len(expected):
        return Failure("calls_differ", f"the rendered text holds {len(found)} calls, the row {len(expected)}")
    for number, ((name, arguments), (found_name, found_arguments)) in enumerate(zip(expected, found, strict=True), start=1):
        if isinstance(found_arguments, str) and not isinstance(arguments, str):
            return Failure(
                "arguments_as_string",
                f"call {number} (`{name}`): the template wrote `arguments` as a JSON string, {_short(found_arguments)}, "
                "not as an object: it applies `tojson` to arguments given as a string",
            )
        if found_name != name or found_arguments != arguments:
            return Failure(
                "calls_differ",
                f"call {number}: rendered `{found_name}` with {_short(found_arguments)}, the row has `{name}` with {_short(arguments)}",
            )
    return None


# --- over an export ------------------------------------------------------------------------------

_HINTS = {
    "arguments_as_string": "export with `--format messages`, which writes `arguments` as objects",
    "wants_string_arguments": "the template adds `arguments` to a string (DeepSeek's do): "
    "export with `--format messages --string-arguments`",
    "render_error": "the error says what the template wants of a conversation; "
    "`--format messages` writes what most templates read",
}


class RenderCheck:
    """Checks every exported record against one template; ``finish`` raises when any failed, naming the first."""

    def __init__(self, template: ChatTemplate) -> None:
        self.template = template
        self.checked = 0
        self.failures: Counter[str] = Counter()
        self.first: tuple[int, Failure] | None = None

    def __call__(self, record: dict[str, Any], number: int) -> None:
        self.checked += 1
        failure = self.template.check(record)
        if failure is None:
            return
        self.failures[failure.code] += 1
        if self.first is None:
            self.first = (number, failure)

    def line(self) -> str:
        return f"render check: {self.checked} rows render with `{self.template.name}` and their calls read back"

    def finish(self) -> None:
        if self.first is None:
            return
        number, failure = self.first
        counts = ", ".join(f"{code} {count}" for code, count in self.failures.most_common())
        raise RenderCheckFailed(
            f"{sum(self.failures.values())} of {self.checked} exported rows fail the render check with "
            f"`{self.template.name}` ({counts}); the first, row {number}: {failure.message}",
            hint=_HINTS.get(failure.code, "compare the row with what the template expects, or leave out `--render-check`"),
        )
