"""Scripted personalities of real OpenAI-compatible servers, for the test server.

Each dialect answers ``POST /v1/chat/completions`` the way that server documents
(or its issue tracker reports) it handles what apigen sends or might send:
``response_format``, ``n``, ``seed``, ``usage``, unknown models and errors. A
dialect wraps an ``answer`` (what the "model" writes: the scripted model, an
echo …) and is installed as the test server's handler::

    with LLMServer(handler=DIALECTS["llama-cpp-python"].handler(pipeline_handler)) as server:

What each server does, and where that is written down:

- **OpenAI** (platform docs, Chat Completions): ``json_schema`` and ``json_object``
  honoured; ``json_object`` needs the word "json" in the messages, else 400;
  ``n`` gives n choices; ``seed`` accepted (best effort, ``system_fingerprint``);
  ``usage`` always; unknown model 404 with code ``model_not_found``; errors as
  ``{"error": {"message", "type", "param", "code"}}``.
- **vLLM** (OpenAI-compatible server docs; structured outputs / guided decoding):
  ``json_schema`` and ``json_object`` honoured; ``n``, ``seed`` and ``usage`` as
  OpenAI; errors as a flat ``{"object": "error", "message", "type", "param",
  "code"}``; unknown model 404 "The model `x` does not exist.".
- **Ollama** (docs/api/openai-compatibility): ``response_format`` (``json_object``,
  and ``json_schema`` since 0.5) honoured; ``n`` is not among the supported
  request fields, so it is ignored: one choice; ``seed`` supported; ``usage``
  given; unknown model 404 ``model "x" not found, try pulling it first``.
- **llama.cpp ``llama-server``** (tools/server/README.md): ``json_object`` and
  ``json_schema`` turned into a grammar; ``n`` other than 1 is refused with 400
  "Only one completion choice is allowed"; ``seed`` accepted; ``usage`` given;
  the model name is not checked (it serves the model it loaded).
- **llama-cpp-python** (``python -m llama_cpp.server``; its request model allows
  ``response_format.type`` only ``text`` and ``json_object``): ``json_schema`` is
  answered with **HTTP 500** and the validation message, which names
  ``response_format`` (reported as ggml-org/llama.cpp#23463); ``json_object``
  honoured; ``n`` accepted but one choice returned; the model name is not
  checked with a single model loaded; errors as ``{"error": {"message", "type":
  "internal_server_error", "param", "code"}}``.

The dialects do not generate: ``answer`` decides the text, the dialect decides
the envelope, the status and which fields are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .llm_server import Received, Reply

Answer = Callable[[Received], Reply | None]
Handler = Callable[[Received], Reply]
MODELS = ("test-model", "other-model")  # what the servers that check the name serve (LLMServer's default list)


def echo(request: Received) -> Reply:
    return Reply.chat(request.content)


def _text(reply: Reply, request: Received) -> str:
    return reply.text if reply.text is not None else request.content


def _choices(text: str, count: int) -> list[dict[str, Any]]:
    return [
        {"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} for index in range(count)
    ]


def _completion(request: Received, text: str, *, choices: int = 1, **extra: Any) -> Reply:
    model = request.model or ""
    return Reply(
        body={
            "id": "chatcmpl-dialect",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": _choices(text, choices),
            "usage": {"prompt_tokens": 23, "completion_tokens": 9, "total_tokens": 32},
            **extra,
        }
    )


def _openai_error(status: int, message: str, kind: str, code: Any = None, param: Any = None) -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": kind, "param": param, "code": code}})


def _format_type(body: dict[str, Any]) -> str | None:
    response_format = body.get("response_format")
    return response_format.get("type") if isinstance(response_format, dict) else None


@dataclass(frozen=True)
class Dialect:
    """One server's personality: ``respond(request, answer)`` gives the reply it would send."""

    name: str
    respond: Callable[[Received, Answer], Reply]

    def handler(self, answer: Answer = echo) -> Handler:
        return lambda request: self.respond(request, answer)


def _answer(request: Received, answer: Answer) -> str:
    reply = answer(request)
    return _text(reply, request) if reply is not None else request.content


def openai(request: Received, answer: Answer) -> Reply:
    body = request.json
    if request.model not in MODELS:
        return _openai_error(
            404,
            f"The model `{request.model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )
    kind = _format_type(body)
    if kind == "json_object" and not any("json" in str(m.get("content", "")).lower() for m in body["messages"]):
        return _openai_error(
            400,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "invalid_request_error",
            param="messages",
        )
    if kind == "json_schema" and "schema" not in (body["response_format"].get("json_schema") or {}):
        return _openai_error(400, "Missing required parameter: 'response_format.json_schema.schema'.", "invalid_request_error")
    return _completion(request, _answer(request, answer), choices=int(body.get("n") or 1), system_fingerprint="fp_test")


def vllm(request: Received, answer: Answer) -> Reply:
    body = request.json
    if request.model not in MODELS:
        return Reply(
            status=404,
            body={
                "object": "error",
                "message": f"The model `{request.model}` does not exist.",
                "type": "NotFoundError",
                "param": None,
                "code": 404,
            },
        )
    return _completion(request, _answer(request, answer), choices=int(body.get("n") or 1))


def ollama(request: Received, answer: Answer) -> Reply:
    if request.model not in MODELS:
        return _openai_error(404, f'model "{request.model}" not found, try pulling it first', "api_error")
    return _completion(request, _answer(request, answer), system_fingerprint="fp_ollama")  # `n` ignored: one choice


def llama_server(request: Received, answer: Answer) -> Reply:
    body = request.json
    if int(body.get("n") or 1) != 1:
        return Reply(
            status=400,
            body={"error": {"code": 400, "message": "Only one completion choice is allowed", "type": "invalid_request_error"}},
        )
    kind = _format_type(body)
    if kind not in (None, "text", "json_object", "json_schema"):
        return Reply(
            status=400,
            body={
                "error": {
                    "code": 400,
                    "message": 'response_format type must be one of "text", "json_object" or "json_schema", but got: '
                    + str(kind),
                    "type": "invalid_request_error",
                }
            },
        )
    return _completion(request, _answer(request, answer))  # the model name is not checked


_PYDANTIC_LITERAL = (
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
    "  Input should be 'text' or 'json_object' [type=literal_error, input_value={value!r}, input_type=str]"
)


def llama_cpp_python(request: Received, answer: Answer) -> Reply:
    kind = _format_type(request.json)
    if kind not in (None, "text", "json_object"):
        return Reply(
            status=500,
            body={
                "error": {
                    "message": _PYDANTIC_LITERAL.format(value=kind),
                    "type": "internal_server_error",
                    "param": None,
                    "code": None,
                }
            },
        )
    return _completion(request, _answer(request, answer))  # `n` accepted, one choice; the model name is not checked


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        Dialect("openai", openai),
        Dialect("vllm", vllm),
        Dialect("ollama", ollama),
        Dialect("llama-server", llama_server),
        Dialect("llama-cpp-python", llama_cpp_python),
    )
}
CHECKS_MODEL_NAMES = ("openai", "vllm", "ollama")


# --- judges as small models write them ------------------------------------------------

_TEMPLATE = re.compile(r'\{[^{}]*"thought"[^{}]*\}')


def template_copier(request: Received) -> Reply | None:
    """A small model that answers the judge by copying the reply template in its prompt, verbatim (re-asked too)."""
    messages = request.json.get("messages", []) if isinstance(request.json, dict) else []
    prompt = "\n".join(str(message.get("content", "")) for message in messages if message.get("role") == "user")
    found = _TEMPLATE.findall(prompt)
    return Reply.chat(found[-1]) if found else None
