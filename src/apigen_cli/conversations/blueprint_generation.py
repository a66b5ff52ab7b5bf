"""Asking a model for task blueprints: one request per blueprint, its reply read into a blueprint row.

A request shows the model the sampled tools, records, persona and policy (see
``blueprint_sampling``) and asks for one JSON object: ``instruction``, ``actions`` and
``outputs``. The row it gives carries the environment's initial state and where it came from
(model, seed, sampled tools and records, template); a reply that cannot be read, or a request
that failed, is a rejected row of its own (``unparseable_blueprint``, ``llm_error``), so that
every request the run planned ends as exactly one row.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from ..llm.chat import ChatRequest, ChatResult, cut_off_problem
from ..problems import Problem, RowProblem, show_value
from ..rows.records import RAW_OUTPUT, Row
from ..schema.value_types import type_schema
from ..stages.extract import NOT_FOUND, find_json
from ..stages.prompts import Template, load_prompt_pair
from .blueprint_sampling import BlueprintExample, Record, RecordSampler, sample_examples, sample_tools
from .environment_tools import OTHER, EnvironmentTool, EnvironmentTools
from .transcript import read_actions, read_outputs

STAGE = "blueprint"
NO_POLICY = "(no policy was given: follow common sense for a careful support agent)"
NO_PERSONA = "(any customer of this business)"
TEMPLATE = "blueprint"

#: A blueprint's kind: the user's wish is served, or, on purpose, it is not (the best data has both).
POSITIVE = "positive"
POLICY_REFUSAL = "policy_refusal"  # the policy forbids what the user asks: look it up, change nothing
MISSING_DETAIL = "missing_detail"  # the user lacks a detail the change needs: the agent asks, and changes nothing
NEGATIVE_KINDS = (POLICY_REFUSAL, MISSING_DETAIL)
KIND_FIELD = "blueprint_kind"
KIND_INSTRUCTIONS = {
    POSITIVE: "The user's wish is one the policy allows and the calls carry it out.",
    POLICY_REFUSAL: (
        "This task is a refusal: the user asks for something the policy forbids (for example a change the status "
        "of their order no longer allows). The calls look up what the agent needs to see that, and stop before any "
        "change; where the policy says so, the last call transfers the user to a human. Put the reason the agent "
        "gives in outputs."
    ),
    MISSING_DETAIL: (
        "In this task the user lacks one detail the change needs (they do not remember it, or have not decided): "
        "the instruction says so. The calls are only those the agent can make without it, and change nothing; "
        "the agent must ask for the detail instead of guessing it."
    ),
}


@dataclass(frozen=True)
class BlueprintPlan:
    """One blueprint to ask for: what the model is shown, and with what seed."""

    key: str
    model: str
    seed: int
    tools: list[EnvironmentTool]
    records: list[Record]
    persona: str | None
    max_tokens: int | None = None
    kind: str = POSITIVE
    examples: tuple[BlueprintExample, ...] = ()

    @property
    def focus(self) -> EnvironmentTool:
        return self.tools[-1]


@dataclass(frozen=True)
class BlueprintJob:
    """Everything a run of ``apigen blueprint`` plans from: the environment, its state, the texts, the template."""

    environment: EnvironmentTools
    initial_state: dict[str, dict[str, Any]]
    template: Template
    policy: str | None = None
    personas: tuple[str, ...] = ()
    examples: tuple[BlueprintExample, ...] = ()

    def plans(
        self,
        count: int,
        seed: int,
        models: list[str],
        max_tokens: int | None = None,
        negative_share: float = 0.0,
        skip: int = 0,
    ) -> Iterator[BlueprintPlan]:
        """``count`` plans, from the ``skip``-th on; the i-th depends only on ``seed`` and i, so a rerun
        with the seed asks the same (and a resumed run asks the rest).

        ``negative_share`` of them (drawn per plan) are negative on purpose, of either kind in turn.
        """
        sampler = RecordSampler(self.initial_state)
        writes = self.environment.writes
        for index in range(skip, count):
            rng = random.Random(f"{seed}:{index}")
            write = writes[rng.randrange(len(writes))]
            tools = sample_tools(self.environment, write, rng)
            kind = rng.choice(NEGATIVE_KINDS) if negative_share and rng.random() < negative_share else POSITIVE
            if kind == POLICY_REFUSAL:  # a refusal may end in a hand-over: the tools that neither read nor write
                tools = [*tools[:-1], *(tool for tool in self.environment.tools.values() if tool.effect == OTHER), write]
            records = sampler.sample(write, rng, fitting=kind != POLICY_REFUSAL)
            persona = rng.choice(self.personas) if self.personas else None
            examples = tuple(sample_examples(list(self.examples), write.name, rng)) if self.examples else ()
            model = models[index % len(models)]
            yield BlueprintPlan(f"bp-{seed}-{index}", model, seed, tools, records, persona, max_tokens, kind, examples)


def load_blueprint_template(prompts_dir: str | None = None) -> Template:
    """``prompts/blueprint/`` (``system.txt`` and ``user.txt``), or the same folder in ``prompts_dir``."""
    return load_prompt_pair(TEMPLATE, prompts_dir)


def render_examples(examples: tuple[BlueprintExample, ...]) -> str:
    """The examples block of the prompt (empty when there are none)."""
    if not examples:
        return ""
    lines = [orjson.dumps(example.shown).decode() for example in examples]
    return "\nTasks written before for this database (follow their form, do not copy them):\n" + "\n".join(lines) + "\n"


def response_schema(plan: BlueprintPlan) -> dict[str, Any]:
    """The JSON Schema of a reply: an instruction, calls of the sampled tools with their parameters, outputs."""
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [tool.name]},
                "arguments": type_schema(tool.api.tool.parameters, strict_objects=True),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in plan.tools
    ]
    return {
        "type": "object",
        "properties": {
            "instruction": {"type": "string"},
            "actions": {"type": "array", "minItems": 1, "items": calls[0] if len(calls) == 1 else {"anyOf": calls}},
            "outputs": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["instruction", "actions", "outputs"],
        "additionalProperties": False,
    }


def build_request(plan: BlueprintPlan, job: BlueprintJob, *, with_schema: bool = False) -> ChatRequest:
    """The chat request for one plan, with its structured twin for the offline backend."""
    shown_tools = [tool.api.shown_definition for tool in plan.tools]
    shown_records = [record.shown() for record in plan.records]
    messages = job.template.render(
        policy=(job.policy or NO_POLICY).strip(),
        persona=plan.persona or NO_PERSONA,
        tools=orjson.dumps(shown_tools, option=orjson.OPT_INDENT_2).decode(),
        records=orjson.dumps(shown_records, option=orjson.OPT_INDENT_2).decode(),
        focus=plan.focus.name,
        kind_instruction=KIND_INSTRUCTIONS[plan.kind],
        examples=render_examples(plan.examples),
    )
    offline_task = {
        "task": "blueprint",
        "tools": shown_tools,
        "writes": [tool.name for tool in plan.tools if tool.effect == "write"],
        "creates": [tool.name for tool in plan.tools if tool.creates],
        "others": [tool.name for tool in plan.tools if tool.effect == OTHER],
        "records": shown_records,
        "persona": plan.persona,
        "seed": plan.seed,
        "kind": plan.kind,
    }
    return ChatRequest(
        key=plan.key,
        model=plan.model,
        messages=messages,
        response_schema=response_schema(plan) if with_schema else None,
        offline_task=offline_task,
        options={"max_tokens": plan.max_tokens} if plan.max_tokens else None,
    )


REVISE = (
    "That task was checked and rejected ({check}): {critique}\n"
    "Write the task again, fixing this, with the same tools and records. "
    "Answer with one JSON object and nothing else, as before."
)


def revision_request(
    plan: BlueprintPlan, job: BlueprintJob, rejected: Row, attempt: int, *, with_schema: bool = False
) -> ChatRequest:
    """The request for a blueprint again: the first request, the rejected blueprint as the model's reply, the critique."""
    first = build_request(plan, job, with_schema=with_schema)
    previous = {key: rejected.get(key) for key in ("instruction", "actions", "outputs")}
    critique = REVISE.format(check=rejected.get("rejected_by"), critique=rejected.get("reason_detail") or rejected.get("reason"))
    messages = [
        *first.messages,
        {"role": "assistant", "content": orjson.dumps(previous).decode()},
        {"role": "user", "content": critique},
    ]
    assert first.offline_task is not None
    offline_task = {**first.offline_task, "revision": attempt, "critique": critique}
    return replace(first, key=f"{plan.key}-r{attempt}", messages=messages, offline_task=offline_task)


def provenance(plan: BlueprintPlan, template: Template) -> dict[str, Any]:
    """Where a blueprint came from: enough to ask for it again."""
    return {
        "model": plan.model,
        "sample_seed": plan.seed,
        "sampled_apis": [tool.name for tool in plan.tools],
        "sampled_records": [{"collection": record.collection, "id": record.key} for record in plan.records],
        "persona": plan.persona,
        "sampled_examples": [example.key for example in plan.examples],
        "prompt_template": template.name,
    }


def row_from_result(plan: BlueprintPlan, job: BlueprintJob, result: ChatResult) -> Row:
    """The blueprint row one answered (or failed) request gives; rejected by ``blueprint`` when there is none."""
    row: Row = {"id": plan.key, KIND_FIELD: plan.kind}
    metadata = {"environment": job.initial_state, "blueprint_source": provenance(plan, job.template)}
    if not result.ok:
        problem = result.error or Problem("llm_error", "the model returned no text")
        return _rejected(row, metadata, problem)
    text = result.text or ""
    try:
        blueprint = read_blueprint(text, negative=plan.kind in NEGATIVE_KINDS)
    except RowProblem as error:
        problem = cut_off_problem(result, "--max-tokens", plan.max_tokens) if result.cut_off else error.problem
        return _rejected({**row, RAW_OUTPUT: text}, metadata, problem)
    row.update(blueprint)
    row.update(metadata)
    return row


def _rejected(row: Row, metadata: dict[str, Any], problem: Problem) -> Row:
    return {**row, **metadata, "rejected_by": STAGE, "reason": problem.code, "reason_detail": problem.message}


def read_blueprint(text: str, *, negative: bool = False) -> dict[str, Any]:
    """``instruction``, ``actions`` and ``outputs`` from a model's reply; ``RowProblem`` ``unparseable_blueprint`` else.

    Only a ``negative`` blueprint may have no actions (a refusal can need no lookup).
    """
    parsed = find_json(text)
    if parsed is NOT_FOUND or not isinstance(parsed, dict):
        raise RowProblem("unparseable_blueprint", f"the reply holds no JSON object: {show_value(text, 120)}")
    instruction = parsed.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise RowProblem("unparseable_blueprint", f"the reply's `instruction` should be text, not {show_value(instruction)}")
    try:
        actions = read_actions(parsed)
        outputs = read_outputs(parsed)
    except RowProblem as error:
        raise RowProblem("unparseable_blueprint", f"the reply: {error.problem.message}") from None
    if not actions and not negative:
        raise RowProblem("unparseable_blueprint", "the reply's `actions` is empty: a blueprint makes at least one call")
    return {"instruction": instruction.strip(), "actions": actions, "outputs": outputs}
