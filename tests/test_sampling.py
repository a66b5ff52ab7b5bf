"""The samplers' promises over a big library: equal use, one category for multi-API styles, a plan per seed."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from apigen_cli.library.loader import Api, load_library
from apigen_cli.stages.prompts import load_prompts
from apigen_cli.stages.sampling import MULTI_API_STYLES, Example, ExampleSampler, GenerationSettings, RequestPlan, plan_requests

from .conftest import write_jsonl

LIBRARY_SIZE = 20_000


@pytest.fixture(scope="module")
def big_library(tmp_path_factory: pytest.TempPathFactory) -> list[Api]:
    """20,000 APIs in categories of 1 to 40 APIs (about 1,000 categories, a few hundred of them of one API)."""
    chooser = random.Random(5)
    tools: list[dict[str, object]] = []
    category = 0
    while len(tools) < LIBRARY_SIZE:
        size = chooser.choice([1, 1, 2, 3, 5, 8, 13, 21, 40])
        for _ in range(min(size, LIBRARY_SIZE - len(tools))):
            tools.append(
                {
                    "name": f"api_{len(tools)}",
                    "category": f"category_{category}",
                    "description": "Does one thing.",
                    "parameters": {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]},
                }
            )
        category += 1
    return load_library(str(write_jsonl(tmp_path_factory.mktemp("big") / "apis.jsonl", tools)))


def _plans(library: list[Api], requests: int, seed: int, **overrides: object) -> list[RequestPlan]:
    settings = GenerationSettings(**{"count": requests, "pairs_per_prompt": 1, "seed": seed, **overrides})  # type: ignore[arg-type]
    return list(plan_requests(library, [], load_prompts().generators, settings))


def test_single_api_draws_take_a_least_used_api_and_use_every_api_equally(big_library: list[Api]) -> None:
    plans = _plans(big_library, 50_000, seed=1, styles=(("simple", 1.0),))
    uses: Counter[str] = Counter()
    at_uses = Counter({0: LIBRARY_SIZE})  # how many APIs have been used n times
    for plan in plans:
        [api] = plan.apis
        assert uses[api.name] == min(n for n, apis in at_uses.items() if apis), "not a least-used API"
        at_uses[uses[api.name]] -= 1
        uses[api.name] += 1
        at_uses[uses[api.name]] += 1
    assert len(uses) == LIBRARY_SIZE
    assert set(uses.values()) == {2, 3}  # 50,000 draws over 20,000 APIs: 2.5 each


def test_mixed_styles_keep_every_api_within_a_few_uses_of_the_others(big_library: list[Api]) -> None:
    plans = _plans(big_library, 40_000, seed=2)
    uses = Counter(api.name for plan in plans for api in plan.apis)
    assert len(uses) == LIBRARY_SIZE
    assert max(uses.values()) - min(uses.values()) <= 3, Counter(uses.values())


def test_multi_api_styles_draw_distinct_apis_of_one_category(big_library: list[Api]) -> None:
    category_size = Counter(api.category for api in big_library)
    plans = _plans(big_library, 20_000, seed=3, apis_per_prompt=(2, 5))
    multi = [plan for plan in plans if plan.style in MULTI_API_STYLES]
    assert len(multi) > 5_000
    for plan in multi:
        names = [api.name for api in plan.apis]
        [category] = {api.category for api in plan.apis}
        assert len(set(names)) == len(names) and 2 <= len(names) <= min(5, category_size[category])
    drawn_categories = {plan.apis[0].category for plan in multi}
    grouped = {name for name, size in category_size.items() if size >= 2}
    assert drawn_categories <= grouped and len(drawn_categories) > 0.9 * len(grouped), (len(drawn_categories), len(grouped))


def test_a_seed_gives_its_plan_and_another_seed_another(big_library: list[Api]) -> None:
    def drawn(plans: list[RequestPlan]) -> list[tuple[str, ...]]:
        return [tuple(api.name for api in plan.apis) for plan in plans]

    first, again, other = (_plans(big_library, 3_000, seed=seed) for seed in (11, 11, 12))
    assert drawn(first) == drawn(again)
    assert sum(a != b for a, b in zip(drawn(first), drawn(other), strict=True)) > 2_900


def test_examples_come_from_the_best_tier_first_and_evenly_within_it() -> None:
    chooser = random.Random(9)
    styles, categories = ["simple", "multiple", "parallel"], ["maps", "math", "text", None]
    examples = [Example(f"q{n}", [], chooser.choice(styles), chooser.choice(categories)) for n in range(60_000)]
    sampler = ExampleSampler(examples, random.Random(1))

    def rank(example: Example, style: str, category: str | None) -> int:
        return 2 * (example.style == style) + (example.category == category)

    drawn: Counter[str] = Counter()
    for _ in range(5_000):
        shots = sampler.sample("multiple", "math", (3, 3))
        assert [rank(shot, "multiple", "math") for shot in shots] == [3, 3, 3]
        drawn.update(shot.query for shot in shots)
    best = sum(1 for example in examples if rank(example, "multiple", "math") == 3)
    assert len(drawn) > 0.9 * best  # about 5,000 of them, each drawn about 3 times

    few = [Example("a", [], "simple", "maps"), Example("b", [], "parallel", "math"), Example("c", [], "simple", "text")]
    few += [Example("d", [], "parallel", "text"), Example("e", [], "simple", None)]
    sampler = ExampleSampler(few, random.Random(2))
    for _ in range(50):
        shots = sampler.sample("simple", "text", (5, 5))
        assert sorted(shots, key=lambda shot: -rank(shot, "simple", "text")) == shots
        assert [shot.query for shot in shots[:3]] in (["c", "a", "e"], ["c", "e", "a"])
        assert {shot.query for shot in shots[3:]} == {"b", "d"} and shots[3].query == "d"


def test_a_library_of_one_category_or_of_lone_apis_still_plans(tmp_path: Path) -> None:
    def tool(name: str, category: str) -> dict[str, object]:
        return {"name": name, "category": category, "description": "x", "parameters": {"type": "object", "properties": {}}}

    lone = load_library(str(write_jsonl(tmp_path / "lone.jsonl", [tool(f"t{n}", f"c{n}") for n in range(5)])))
    for plan in _plans(lone, 60, seed=1, styles=(("multiple", 1.0),)):
        assert 2 <= len({api.name for api in plan.apis}) == len(plan.apis)  # from the whole library, as before
    one = load_library(str(write_jsonl(tmp_path / "one.jsonl", [tool("only", "c")])))
    assert all(plan.apis == (one[0],) for plan in _plans(one, 10, seed=1))
