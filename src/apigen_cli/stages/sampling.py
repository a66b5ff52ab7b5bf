"""The paper's three samplers (APIs, examples, prompt templates) and the plan of a run.

Everything here is seeded and sequential, so the same library, examples,
settings and seed always give the same requests in the same order: a run can be
repeated, and resumed, request by request.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, InputError
from ..library.loader import Api
from .prompts import STYLES, Template

MULTI_API_STYLES = ("multiple", "parallel_multiple")
DEFAULT_STYLE_WEIGHTS = {"simple": 0.4, "multiple": 0.2, "parallel": 0.2, "parallel_multiple": 0.2}


# --- APIs -----------------------------------------------------------------------------


class ApiSampler:
    """Draws APIs so that over a run every API is used about equally often.

    Single-API styles take a least-used API. Multi-API styles take the category of
    a least-used API (among categories with at least two APIs) and fill up with
    that category's least-used APIs, as the paper samples several APIs of one category.
    """

    def __init__(self, apis: Sequence[Api], rng: random.Random) -> None:
        self.apis = list(apis)
        self.rng = rng
        self.uses: Counter[str] = Counter({api.name: 0 for api in apis})
        by_category: dict[str, list[Api]] = defaultdict(list)
        for api in apis:
            by_category[api.category].append(api)
        self.by_category = dict(by_category)
        grouped = [api for members in by_category.values() if len(members) >= 2 for api in members]
        # With no category of two or more, multi-API styles draw from the whole library.
        self.multi_pool = grouped or list(apis)

    def _least_used(self, pool: Sequence[Api], count: int) -> list[Api]:
        shuffled = list(pool)
        self.rng.shuffle(shuffled)
        shuffled.sort(key=lambda api: self.uses[api.name])
        return shuffled[:count]

    def sample(self, style: str, size: tuple[int, int]) -> list[Api]:
        if style not in MULTI_API_STYLES or len(self.apis) == 1:
            chosen = self._least_used(self.apis, 1)
        else:
            [anchor] = self._least_used(self.multi_pool, 1)
            members = self.by_category.get(anchor.category, [])
            pool = members if len(members) >= 2 else self.multi_pool
            wanted = min(max(2, self.rng.randint(*size)), len(pool))
            others = self._least_used([api for api in pool if api.name != anchor.name], wanted - 1)
            chosen = [anchor, *others]
            self.rng.shuffle(chosen)
        for api in chosen:
            self.uses[api.name] += 1
        return chosen


# --- examples -------------------------------------------------------------------------


def infer_style(row: dict[str, Any]) -> str:
    """A seed row's query style: given as ``query_style``, else read from its calls."""
    given = row.get("query_style")
    if isinstance(given, str) and given in STYLES:
        return given
    answers = row.get("answers") or []
    names = {call.get("name") for call in answers if isinstance(call, dict)}
    if len(answers) <= 1:
        return "multiple" if len(row.get("tools") or []) > 1 else "simple"
    return "parallel" if len(names) == 1 else "parallel_multiple"


@dataclass(frozen=True)
class Example:
    """A verified seed row, as the prompt shows it, with what it is matched on."""

    query: str
    answers: list[Any]
    style: str
    category: str | None


class ExampleSampler:
    """Few-shot examples for a request, preferring rows of the same style and category."""

    def __init__(self, examples: Sequence[Example], rng: random.Random) -> None:
        self.examples = list(examples)
        self.rng = rng

    def sample(self, style: str, category: str | None, size: tuple[int, int]) -> list[Example]:
        if not self.examples:
            return []
        wanted = min(self.rng.randint(*size), len(self.examples))
        shuffled = list(self.examples)
        self.rng.shuffle(shuffled)
        shuffled.sort(key=lambda example: -(2 * (example.style == style) + (example.category == category)))
        return shuffled[:wanted]


def examples_from_rows(rows: Sequence[dict[str, Any]], apis: Sequence[Api]) -> list[Example]:
    """Seed rows (xlam rows or apigen rows, already format-checked) as ``Example``s."""
    category_of = {api.name: api.category for api in apis}
    found = []
    for row in rows:
        answers = row.get("answers")
        query = row.get("query")
        if not isinstance(query, str) or not isinstance(answers, list) or not answers:
            continue
        category = row.get("category")
        if not isinstance(category, str):
            names = [call.get("name") for call in answers if isinstance(call, dict)]
            category = next((category_of[name] for name in names if name in category_of), None)
        found.append(Example(query, answers, infer_style(row), category))
    return found


# --- the plan -------------------------------------------------------------------------


REPLY_TOKENS_BASE, REPLY_TOKENS_PER_PAIR, REPLY_TOKENS_CAP = 1024, 512, 8192


@dataclass(frozen=True)
class GenerationSettings:
    """What ``generate`` is asked for; the defaults are the CLI's."""

    count: int = 100
    pairs_per_prompt: int = 3
    styles: tuple[tuple[str, float], ...] = tuple(DEFAULT_STYLE_WEIGHTS.items())
    apis_per_prompt: tuple[int, int] = (2, 4)
    examples_per_prompt: tuple[int, int] = (1, 3)
    models: tuple[str, ...] = ("offline",)
    seed: int = 0
    shard: tuple[int, int] | None = None  # (K, N): make only shard K of N, see ``shard_requests``
    max_tokens: int | None = None  # per reply; None: ``reply_tokens`` chooses by pairs, 0: no limit sent

    def reply_tokens(self, pairs: int) -> int | None:
        """The ``max_tokens`` of a request for ``pairs`` pairs (``None``: send none).

        Unset, 1024 + 512 per pair, at most 8192: a pair (a query and its calls, in JSON)
        takes about 100 to 300 tokens, so this is twice that with room for the wrapping
        and a little thinking, while a runaway reply (one of 3,652 tokens held a llama.cpp
        server's only slot until four requests timed out) is cut off.
        """
        if self.max_tokens is not None:
            return self.max_tokens or None
        return min(REPLY_TOKENS_BASE + REPLY_TOKENS_PER_PAIR * pairs, REPLY_TOKENS_CAP)

    @property
    def requests(self) -> int:
        """How many requests the whole plan holds (every shard of it)."""
        return -(-self.count // self.pairs_per_prompt)

    @property
    def planned(self) -> range:
        """The request indices this job makes: all of them, or its shard's block."""
        return shard_requests(self.requests, self.shard)


def shard_requests(total: int, shard: tuple[int, int] | None) -> range:
    """Shard K of N is the K-th of N contiguous blocks of the plan, as equal as can be.

    Contiguous, so the shards' files, one after another in shard order, are the
    unsharded run's files; and since each shard walks the same seeded plan
    (the samplers' counts depend on every earlier request) and keeps only its
    block, its requests are the very ones the whole run makes.
    """
    if shard is None:
        return range(total)
    index, count = shard
    return range(index * total // count, (index + 1) * total // count)


DEFAULT_POOL_SIZE = 1000
DEFAULT_LAG = 64


@dataclass(frozen=True)
class GrowSettings:
    """``--grow-examples`` with ``--example-pool`` (reservoir size) and ``--grow-lag`` (requests)."""

    size: int = DEFAULT_POOL_SIZE
    lag: int = DEFAULT_LAG

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"`--example-pool` must be at least 1, got {self.size}")
        if self.lag < 1:
            raise ConfigError(f"`--grow-lag` must be at least 1, got {self.lag}")


@dataclass(frozen=True)
class RequestPlan:
    """Everything one generation request is made of, fixed before it is sent."""

    index: int
    seed: int
    style: str
    apis: tuple[Api, ...]
    examples: tuple[Example, ...]
    template: Template
    model: str
    pairs: int
    run_seed: int
    max_tokens: int | None = None  # sent with the request; None sends no limit

    @property
    def key(self) -> str:
        """The request's id, the stem of its rows' ids: the same for the same run seed and position."""
        return f"gen-{self.run_seed}-{self.index:05d}"


def plan_requests(
    apis: Sequence[Api],
    examples: Sequence[Example],
    templates: Sequence[Template],
    settings: GenerationSettings,
    examples_at: Callable[[int], Sequence[Example]] | None = None,
) -> Iterator[RequestPlan]:
    """The run's requests, in order, each with its sampled APIs, examples, template, style and model.

    ``examples_at(index)``, when given (``--grow-examples``), replaces ``examples`` for each request.
    """
    rng = random.Random(settings.seed)
    api_sampler = ApiSampler(apis, random.Random(rng.getrandbits(64)))
    example_sampler = ExampleSampler(examples, random.Random(rng.getrandbits(64)))
    names = [name for name, _ in settings.styles]
    weights = [weight for _, weight in settings.styles]
    remaining = settings.count
    for index in range(settings.requests):
        pairs = min(settings.pairs_per_prompt, remaining)
        remaining -= pairs
        style = rng.choices(names, weights)[0]
        chosen = api_sampler.sample(style, settings.apis_per_prompt)
        category = chosen[0].category if len({api.category for api in chosen}) == 1 else None
        if examples_at is not None:  # --grow-examples: the seed examples plus rows verified up to a fixed lag before
            example_sampler.examples = list(examples_at(index))
        shots = example_sampler.sample(style, category, settings.examples_per_prompt)
        template = rng.choice(list(templates))
        yield RequestPlan(
            index=index,
            seed=rng.getrandbits(32),
            style=style,
            apis=tuple(chosen),
            examples=tuple(shots),
            template=template,
            model=settings.models[index % len(settings.models)],
            pairs=pairs,
            run_seed=settings.seed,
            max_tokens=settings.reply_tokens(pairs),
        )


def load_examples(path: str, apis: Sequence[Api]) -> tuple[list[Example], int]:
    """Seed rows from a file (xlam rows or apigen rows), format-checked; returns (examples, rows left out)."""
    from ..rows.jsonl import read_rows
    from .format_check import format_check

    usable, left_out, first = [], 0, ""
    for number, row in enumerate(format_check(read_rows(path)), start=1):
        if "rejected_by" in row:
            left_out += 1
            first = first or f"row {number}: {row.get('reason')}: {row.get('reason_detail')}"
        else:
            usable.append(row)
    if left_out and not usable:  # asked for examples and would get none: say so before any request
        raise InputError(
            f"no row of `--examples` `{path}` passes the format check, so there is no seed example to show ({first})",
            hint="give seed rows with a `query`, its `answers` and their `tools`, e.g. sample_data/examples.jsonl",
        )
    return examples_from_rows(usable, apis), left_out
