"""Stage 1 of the pipeline: from sampled APIs, an LLM writes queries and the calls that answer them.

``generate`` does not filter: every pair the model wrote becomes a row, and text
that cannot be split into pairs becomes one row carrying ``raw_output``, which
format-check then rejects as ``unparseable_output``. So the checks, not the
generator, decide what is kept, and the run's statistics match the paper's
Table 1. A request that fails for good becomes a rejected row (``llm_error``)
that accounts for the rows it would have given, as does a reply cut off by
``--max-tokens`` before any pair was whole (``reply_cut_off``, its text kept);
and each pair a model left out of a readable reply (it wrote 1 of the 3 asked
for, as small models often do) becomes a rejected row of its own
(``missing_pair``): every requested pair is a row.
"""

from __future__ import annotations

import gc
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..errors import ConfigError, InputError
from ..library.loader import Api, load_library
from ..llm.chat import ChatRequest, ChatResult, ChatService, cut_off_problem
from ..problems import Problem
from ..rows.records import MISSING_PAIR, RAW_OUTPUT, Row
from ..schema.value_types import type_schema
from .extract import MISSING, parse_pairs
from .prompts import PromptSet, load_prompts
from .sampling import Example, GenerationSettings, GrowSettings, RequestPlan, load_examples, plan_requests

STAGE = "generate"


def render_examples(examples: Iterable[Example]) -> str:
    """The few-shot block of the generator prompt (empty when there are no examples)."""
    lines = [orjson.dumps({"query": example.query, "answers": example.answers}).decode() for example in examples]
    if not lines:
        return ""
    return (
        "\nExamples of good pairs, written for other functions (follow their form, do not copy them):\n" + "\n".join(lines) + "\n"
    )


def response_schema(plan: RequestPlan) -> dict[str, Any]:
    """The JSON Schema of a reply: pairs whose calls may only name the sampled tools, with their parameters."""
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [api.name]},
                "arguments": type_schema(api.tool.parameters, strict_objects=True),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for api in plan.apis
    ]
    pair = {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "answers": {"type": "array", "minItems": 1, "items": calls[0] if len(calls) == 1 else {"anyOf": calls}},
        },
        "required": ["query", "answers"],
        "additionalProperties": False,
    }
    # Structured-output endpoints want an object at the top: the pairs sit under one key.
    return {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": pair}},
        "required": ["pairs"],
        "additionalProperties": False,
    }


def build_request(plan: RequestPlan, prompts: PromptSet, *, with_schema: bool = False) -> ChatRequest:
    """The chat request for one plan: the template filled with the sampled tools, style and examples."""
    shown = [api.shown_definition for api in plan.apis]
    messages = plan.template.render(
        tools=orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode(),
        style_instruction=prompts.styles[plan.style],
        examples=render_examples(plan.examples),
        pairs=str(plan.pairs),
    )
    return ChatRequest(
        key=plan.key,
        model=plan.model,
        messages=messages,
        response_schema=response_schema(plan) if with_schema else None,
        offline_task={"task": "generate", "tools": shown, "style": plan.style, "pairs": plan.pairs, "seed": plan.seed},
        options={"max_tokens": plan.max_tokens} if plan.max_tokens else None,
    )


def _metadata(plan: RequestPlan) -> dict[str, Any]:
    categories = sorted({api.category for api in plan.apis})
    return {
        "tools": [api.row_definition for api in plan.apis],
        "request_id": plan.key,
        "pairs_requested": plan.pairs,
        "query_style": plan.style,
        "category": categories[0] if len(categories) == 1 else categories,
        "sampled_apis": [api.name for api in plan.apis],
        "model": plan.model,
        "prompt_template": plan.template.name,
        "sample_seed": plan.seed,
    }


def rows_from_result(plan: RequestPlan, result: ChatResult) -> list[Row]:
    """The rows one answered (or failed) request gives."""
    if not result.ok:
        problem = result.error or Problem("llm_error", "the model returned no text")
        return [
            {"id": plan.key, **_metadata(plan), "rejected_by": STAGE, "reason": problem.code, "reason_detail": problem.message}
        ]
    text = result.text or ""
    pairs = parse_pairs(text)
    if not pairs and result.cut_off:
        problem = cut_off_problem(result, "--max-tokens", plan.max_tokens)
        rejected = {"rejected_by": STAGE, "reason": problem.code, "reason_detail": problem.message}
        return [{"id": plan.key, **_metadata(plan), "raw_output": text, **rejected}]
    if not pairs:
        return [{"id": plan.key, **_metadata(plan), RAW_OUTPUT: text}]
    rows: list[Row] = []
    for index, (query, answers) in enumerate(pairs):
        row: Row = {"id": f"{plan.key}-{index}"}
        if query is not MISSING:
            row["query"] = query
        row["answers"] = None if answers is MISSING else answers
        row.update(_metadata(plan))
        rows.append(row)
    written = len(rows)
    for index in range(written, plan.pairs):
        detail = f"the request asked for {plan.pairs} pairs and the model wrote {written}"
        rows.append(
            {
                "id": f"{plan.key}-{index}",
                **_metadata(plan),
                "rejected_by": STAGE,
                "reason": MISSING_PAIR,
                "reason_detail": detail,
            }
        )
    return rows


def generate(plans: Iterable[RequestPlan], chat: ChatService, prompts: PromptSet, *, with_schema: bool = False) -> Iterator[Row]:
    """Send each plan's request (concurrently, answers in order) and yield the rows they give."""
    requests = ((plan, build_request(plan, prompts, with_schema=with_schema)) for plan in plans)
    for plan, result in chat.map(requests):
        yield from rows_from_result(plan, result)


class ExamplePoolView(Protocol):
    """What planning needs of the growing example pool: the examples a request at an index may see."""

    def visible(self, index: int) -> Sequence[Example]: ...


@dataclass(frozen=True)
class Generation:
    """A generation job made ready: the library, the prompts, the settings, and the examples left out."""

    apis: list[Api]
    examples: list[Example]
    prompts: PromptSet
    settings: GenerationSettings
    examples_left_out: int = 0
    grow: GrowSettings | None = None  # --grow-examples (see example_pool.py)

    def plans(self, skip: int = 0, pool: ExamplePoolView | None = None) -> Iterator[RequestPlan]:
        """The job's requests in order (its shard's, if any), without the first ``skip`` (done, when resuming).

        A shard walks the plan from the start: sampling is sequential, and walking is cheap.
        With ``pool`` (``--grow-examples``, an ``example_pool.ExamplePool``) each request
        draws its examples from it.
        """
        planned = self.settings.planned
        examples_at = pool.visible if pool is not None else None
        everything = plan_requests(self.apis, self.examples, self.prompts.generators, self.settings, examples_at)
        return itertools.islice(everything, planned.start + skip, planned.stop)


def prepare_generation(
    apis_path: str, settings: GenerationSettings, *, examples_path: str | None = None, prompts_dir: str | None = None
) -> Generation:
    """Load the library, the seed examples and the prompts; raises ``InputError``/``ConfigError`` early."""
    if settings.count < 1 or settings.pairs_per_prompt < 1:
        raise ConfigError("`--count` and `--pairs-per-prompt` must be at least 1")
    prompts = load_prompts(prompts_dir)
    if examples_path and not os.path.isfile(examples_path):
        raise InputError(
            f"`--examples` names `{examples_path}`, which is not a file",
            hint="give a JSONL file of seed rows, e.g. sample_data/examples.jsonl",
        )
    with _kept_for_the_run():
        apis = load_library(apis_path)
        examples, left_out = load_examples(examples_path, apis) if examples_path else ([], 0)
    return Generation(apis, examples, prompts, settings, left_out)


@contextmanager
def _kept_for_the_run() -> Iterator[None]:
    """Load what the whole run keeps with the cycle collector paused, then set it aside (``gc.freeze``).

    A library of 64,000 APIs is millions of objects, none of them garbage while the run
    lasts; every full collection walks them all. Left to the collector, they made loading
    such a library four times as slow, and every later request pay in proportion to the
    library's size. Frozen objects are still freed as usual when nothing refers to them;
    the garbage of before is collected first (a small heap yet), so none of it is kept.
    """
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
