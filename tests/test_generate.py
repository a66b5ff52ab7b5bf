"""The generator's samplers, prompts and rows (the LLM replaced by canned replies)."""

from __future__ import annotations

import gc
import json
from collections import Counter
from pathlib import Path

import pytest

from apigen_cli import format_check
from apigen_cli.config import parse_range, parse_styles
from apigen_cli.errors import ConfigError, InputError
from apigen_cli.library.loader import Api, load_library
from apigen_cli.problems import Problem
from apigen_cli.stages.generate import build_request, generate, prepare_generation, response_schema
from apigen_cli.stages.prompts import load_prompts
from apigen_cli.stages.sampling import GenerationSettings, examples_from_rows, plan_requests

from .conftest import write_jsonl
from .fakes import CannedChat


def _tool(name: str, category: str, dialect: str = "json") -> dict[str, object]:
    if dialect == "xlam":
        return {
            "name": name,
            "category": category,
            "description": f"{name} does things.",
            "parameters": {
                "value": {"type": "int", "description": "a value"},
                "label": {"type": "str, optional", "description": "x", "default": ""},
            },
        }
    return {
        "name": name,
        "category": category,
        "description": f"{name} does things.",
        "parameters": {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]},
    }


@pytest.fixture
def library(tmp_path: Path) -> list[Api]:
    tools = [_tool(f"math_{n}", "math") for n in range(4)] + [_tool(f"text_{n}", "text", "xlam") for n in range(3)]
    tools += [_tool(f"date_{n}", "dates") for n in range(2)] + [_tool("lonely", "misc")]
    return load_library(str(write_jsonl(tmp_path / "apis.jsonl", tools)))


def _plans(library: list[Api], **overrides: object) -> list:  # type: ignore[type-arg]
    settings = GenerationSettings(**{"count": 3000, "pairs_per_prompt": 3, "seed": 7, **overrides})  # type: ignore[arg-type]
    return list(plan_requests(library, [], load_prompts().generators, settings))


def test_styles_come_out_near_their_weights_over_1000_requests(library: list[Api]) -> None:
    plans = _plans(library, styles=tuple(parse_styles("simple=0.4,multiple=0.2,parallel=0.2,parallel_multiple=0.2").items()))
    assert len(plans) == 1000
    shares = Counter(plan.style for plan in plans)
    for style, weight in {"simple": 0.4, "multiple": 0.2, "parallel": 0.2, "parallel_multiple": 0.2}.items():
        assert abs(shares[style] / 1000 - weight) < 0.05, shares


def test_every_api_is_used_about_equally(library: list[Api]) -> None:
    plans = _plans(library, styles=(("simple", 1.0),))
    uses = Counter(api.name for plan in plans for api in plan.apis)
    assert set(uses) == {api.name for api in library}
    assert max(uses.values()) - min(uses.values()) <= 1


def test_multi_api_styles_draw_from_one_category(library: list[Api]) -> None:
    plans = _plans(library, styles=(("multiple", 1.0), ("parallel_multiple", 1.0)), apis_per_prompt=(2, 3))
    for plan in plans:
        assert 2 <= len(plan.apis) <= 3
        assert len({api.category for api in plan.apis}) == 1
        assert "misc" not in {api.category for api in plan.apis}  # a category of one cannot give two APIs
    uses = Counter(api.name for plan in plans for api in plan.apis)
    grouped = [name for name in uses if name != "lonely"]
    assert max(uses[name] for name in grouped) / min(uses[name] for name in grouped) < 1.6


def test_a_seed_reproduces_the_plan_and_another_changes_it(library: list[Api]) -> None:
    def summary(plans: list) -> list:  # type: ignore[type-arg]
        return [(p.style, [a.name for a in p.apis], p.template.name, p.seed) for p in plans]

    assert summary(_plans(library, count=90)) == summary(_plans(library, count=90))
    assert summary(_plans(library, count=90)) != summary(_plans(library, count=90, seed=8))


def test_models_are_used_in_turn(library: list[Api]) -> None:
    plans = _plans(library, count=12, models=("m-a", "m-b", "m-c"))
    assert [plan.model for plan in plans] == ["m-a", "m-b", "m-c", "m-a"]


def test_count_sets_the_requests_and_the_last_asks_for_the_rest(library: list[Api]) -> None:
    plans = _plans(library, count=10, pairs_per_prompt=4)
    assert [plan.pairs for plan in plans] == [4, 4, 2]


def test_prompt_holds_the_sampled_tools_style_and_examples(library: list[Api]) -> None:
    seeds = [{"query": "Add 2 to five", "answers": [{"name": "math_0", "arguments": {"value": 2}}], "query_style": "simple"}]
    examples = examples_from_rows(seeds, library)
    settings = GenerationSettings(count=30, pairs_per_prompt=3, seed=1, styles=(("simple", 1.0),), examples_per_prompt=(1, 1))
    prompts = load_prompts()
    for plan in plan_requests(library, examples, prompts.generators, settings):
        request = build_request(plan, prompts)
        text = "\n".join(message["content"] for message in request.messages)
        assert json.dumps(plan.apis[0].name) in text
        assert "category" not in json.loads(text.split("(JSON):\n", 1)[1].split("\n\n", 1)[0])[0]
        assert prompts.styles["simple"] in text
        assert "Add 2 to five" in text
        assert "Write 3" in text or "3 pairs" in text or "exactly 3" in text or "Give 3" in text or "Produce 3" in text
        assert request.offline_task == {
            "task": "generate",
            "tools": [plan.apis[0].shown_definition],
            "style": "simple",
            "pairs": 3,
            "seed": plan.seed,
        }


def test_rows_one_per_pair_with_metadata_and_raw_rows_for_unparseable_text(library: list[Api]) -> None:
    plans = _plans(library, count=9, styles=(("simple", 1.0),))
    good = json.dumps(
        [
            {"query": "use seven", "answers": [{"name": plans[0].apis[0].name, "arguments": {"value": 7}}]},
            {"query": "use eight", "answers": [{"name": plans[0].apis[0].name, "arguments": {"value": "8"}}], "thought": "x"},
        ]
    )
    chat = CannedChat(["```json\n" + good + "\n```", "Sorry, I cannot do that.", Problem("llm_error", "503: overloaded")])
    rows = list(generate(plans, chat, load_prompts()))
    ids = ["gen-7-00000-0", "gen-7-00000-1", "gen-7-00000-2", "gen-7-00001", "gen-7-00002"]
    assert [row["id"] for row in rows] == ids
    assert rows[2]["rejected_by"] == "generate" and rows[2]["reason"] == "missing_pair"  # 2 pairs of the 3 asked for
    del rows[2]
    first = rows[0]
    assert first["query"] == "use seven" and first["query_style"] == "simple" and first["model"] == "offline"
    assert first["sampled_apis"] == [plans[0].apis[0].name] and first["prompt_template"] == plans[0].template.name
    assert first["request_id"] == "gen-7-00000" and first["pairs_requested"] == 3
    assert first["sample_seed"] == plans[0].seed and first["tools"] == [plans[0].apis[0].row_definition]
    assert rows[2]["raw_output"] == "Sorry, I cannot do that." and "rejected_by" not in rows[2]
    assert rows[3]["rejected_by"] == "generate" and rows[3]["reason"] == "llm_error" and rows[3]["pairs_requested"] == 3
    checked = list(format_check(rows))
    assert [row.get("reason") for row in checked] == [None, "wrong_type", "unparseable_output", "llm_error"]


def test_response_schema_restricts_names_and_arguments(library: list[Api]) -> None:
    [plan] = _plans(library, count=3, styles=(("multiple", 1.0),))
    schema = response_schema(plan)
    calls = schema["properties"]["pairs"]["items"]["properties"]["answers"]["items"]["anyOf"]
    assert sorted(call["properties"]["name"]["enum"][0] for call in calls) == sorted(api.name for api in plan.apis)
    assert all(call["properties"]["arguments"]["additionalProperties"] is False for call in calls)


def test_library_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "apis.jsonl"
    path.write_text(json.dumps(_tool("a", "x")) + "\n" + json.dumps({"description": "nameless"}) + "\n")
    with pytest.raises(InputError, match=r"line 2 of `.*apis.jsonl`: tool 2 has no `name`"):
        load_library(str(path))
    path.write_text(json.dumps(_tool("a", "x")) + "\n" + json.dumps(_tool("a", "y")) + "\n")
    with pytest.raises(InputError, match="already used on line 1"):
        load_library(str(path))


def test_option_parsing() -> None:
    assert parse_styles("simple=1,parallel-multiple=3") == {"simple": 1.0, "parallel_multiple": 3.0}
    assert parse_range("2-4", "--x") == (2, 4) and parse_range("3", "--x") == (3, 3)
    for bad in ("simple=x", "chatty=1", "simple=0"):
        with pytest.raises(ConfigError):
            parse_styles(bad)
    with pytest.raises(ConfigError):
        parse_range("4-2", "--x")


def test_a_loaded_library_is_set_aside_from_the_cycle_collector(tmp_path: Path) -> None:
    """The collector would walk every API's objects at each full collection, for as long as the run lasts."""
    tools = [{"name": f"t{n}", "description": "x", "parameters": {"type": "object", "properties": {}}} for n in range(500)]
    library = write_jsonl(tmp_path / "apis.jsonl", tools)
    gc.unfreeze()
    try:
        job = prepare_generation(str(library), GenerationSettings(count=3))
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        watched = {id(object) for object in gc.get_objects()}  # (frozen objects are in no generation)
        assert all(gc.is_tracked(api.definition) and id(api.definition) not in watched for api in job.apis)
    finally:
        gc.unfreeze()
