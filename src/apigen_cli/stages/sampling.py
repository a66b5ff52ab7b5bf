"""The paper's three samplers (APIs, examples, prompt templates) and the plan of a run.

Everything here is seeded and sequential, so the same library, examples,
settings and seed always give the same requests in the same order: a run can be
repeated, and resumed, request by request.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, InputError
from ..library.loader import Api
from .prompts import STYLES, Template

# The version of the draws below. The same seed and library give the same plan only within
# one version: a change to how APIs or examples are drawn raises it, and the run fingerprint
# covers it, so a run planned by another version is refused on resume rather than continued
# with other requests. 2: draws from pools kept by use count (1 had no number: shuffle and sort).
PLAN_VERSION = 2
MULTI_API_STYLES = ("multiple", "parallel_multiple")
DEFAULT_STYLE_WEIGHTS = {"simple": 0.4, "multiple": 0.2, "parallel": 0.2, "parallel_multiple": 0.2}


# --- APIs -----------------------------------------------------------------------------


class LeastUsedPool:
    """A set of APIs, grouped by how often each has been used, so that a least-used one is found at once.

    ``levels[n]`` holds the members used ``n`` times, in no order; a member's place in
    its level is kept, so it moves up a level by a swap with the level's last member.
    Uses only ever grow by one, so the lowest level is found by stepping up from the last.
    Every operation costs the same whatever the library's size.
    """

    def __init__(self, members: Sequence[int], uses: list[int]) -> None:
        self.size = len(members)
        self._uses = uses  # shared by every pool an API is in
        self._levels: dict[int, list[int]] = {}
        self._place: dict[int, int] = {}
        for member in members:
            level = self._levels.setdefault(uses[member], [])
            self._place[member] = len(level)
            level.append(member)
        self._lowest = min(self._levels, default=0)

    def __contains__(self, member: int) -> bool:
        return member in self._place

    def moved_up(self, member: int) -> None:
        """``member`` was just used once more: move it from its old level to the next."""
        old = self._uses[member] - 1
        level = self._levels[old]
        place, last = self._place[member], level.pop()
        if last != member:
            level[place] = last
            self._place[last] = place
        higher = self._levels.setdefault(old + 1, [])
        self._place[member] = len(higher)
        higher.append(member)
        if not level:
            del self._levels[old]
            while self._lowest not in self._levels:
                self._lowest += 1

    def least_used(self, rng: random.Random) -> int:
        """One of the least-used members, at random."""
        level = self._levels[self._lowest]
        return level[rng.randrange(len(level))]

    def least_used_but(self, count: int, left_out: int, rng: random.Random) -> list[int]:
        """``count`` least-used members other than ``left_out``, ties broken at random (fewer if the pool is short)."""
        chosen: list[int] = []
        left_out_level = self._uses[left_out] if left_out in self._place else None
        count = min(count, self.size - (left_out_level is not None))
        uses = self._lowest
        while len(chosen) < count:
            level = self._levels.get(uses, [])
            wanted = count - len(chosen)
            # one more than wanted from the level that holds ``left_out``, which is then dropped: still a fair draw
            extra = 1 if uses == left_out_level else 0
            drawn = rng.sample(level, min(wanted + extra, len(level)))
            chosen.extend([member for member in drawn if member != left_out][:wanted])
            uses += 1
        return chosen


class ApiSampler:
    """Draws APIs so that over a run every API is used about equally often.

    Single-API styles take a least-used API. Multi-API styles take the category of
    a least-used API (among categories with at least two APIs) and fill up with
    that category's least-used APIs, as the paper samples several APIs of one category.
    Ties are broken at random. Each API is in three pools (the library, its category,
    the APIs multi-API styles draw from), each kept by use count (``LeastUsedPool``),
    so a draw costs the same for 800 APIs as for 64,000.
    """

    def __init__(self, apis: Sequence[Api], rng: random.Random) -> None:
        self.apis = list(apis)
        self.rng = rng
        self.uses = [0] * len(self.apis)
        every = range(len(self.apis))
        by_category: dict[str, list[int]] = defaultdict(list)
        for index, api in enumerate(self.apis):
            by_category[api.category].append(index)
        self.everything = LeastUsedPool(every, self.uses)
        self.categories = {category: LeastUsedPool(members, self.uses) for category, members in by_category.items()}
        grouped = [index for members in by_category.values() if len(members) >= 2 for index in members]
        # With no category of two or more, multi-API styles draw from the whole library.
        self.multi = LeastUsedPool(grouped, self.uses) if grouped else self.everything
        self._pools_of = [self._pools_holding(index) for index in every]

    def _pools_holding(self, index: int) -> list[LeastUsedPool]:
        pools = [self.everything, self.categories[self.apis[index].category]]
        if self.multi is not self.everything and index in self.multi:
            pools.append(self.multi)
        return pools

    def sample(self, style: str, size: tuple[int, int]) -> list[Api]:
        if style not in MULTI_API_STYLES or len(self.apis) == 1:
            chosen = [self.everything.least_used(self.rng)]
        else:
            anchor = self.multi.least_used(self.rng)
            members = self.categories[self.apis[anchor].category]
            pool = members if members.size >= 2 else self.multi
            wanted = min(max(2, self.rng.randint(*size)), pool.size)
            chosen = [anchor, *pool.least_used_but(wanted - 1, anchor, self.rng)]
            self.rng.shuffle(chosen)
        for index in chosen:
            self.uses[index] += 1
            for member_of in self._pools_of[index]:
                member_of.moved_up(index)
        return [self.apis[index] for index in chosen]


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


Run = tuple[int, int]  # positions start (inclusive) to stop (exclusive)


class ExampleSampler:
    """Few-shot examples for a request, preferring rows of the same style and category.

    The preference makes four tiers: same style and category, same style, same
    category, the rest; examples are taken tier by tier, at random within a tier.
    The examples are kept sorted by style, then category, so each tier is a few runs
    of positions and a draw costs the same for ten examples as for sixty thousand.
    """

    def __init__(self, examples: Sequence[Example], rng: random.Random) -> None:
        self.rng = rng
        self._source: Sequence[Example] | None = None
        self.use(examples)

    def use(self, examples: Sequence[Example]) -> None:
        """Draw from ``examples`` from now on; indexed once, so passing the same sequence again costs nothing."""
        if examples is self._source:
            return
        self._source = examples
        self.examples = sorted(examples, key=lambda example: (example.style, *_category_order(example.category)))
        self._same: dict[tuple[str, str | None], Run] = {}
        self._style: dict[str, Run] = {}
        self._category: dict[str | None, list[Run]] = defaultdict(list)
        start = 0
        for (style, category), group in itertools.groupby(self.examples, key=lambda example: (example.style, example.category)):
            stop = start + sum(1 for _ in group)
            self._same[style, category] = (start, stop)
            self._style[style] = (self._style.get(style, (start, stop))[0], stop)
            self._category[category].append((start, stop))
            start = stop

    def sample(self, style: str, category: str | None, size: tuple[int, int]) -> list[Example]:
        if not self.examples:
            return []
        wanted = min(self.rng.randint(*size), len(self.examples))
        same = [self._same[style, category]] if (style, category) in self._same else []
        style_runs = [self._style[style]] if style in self._style else []
        category_runs = self._category.get(category, [])
        tiers = (
            same,
            _without(style_runs, same),
            _without(category_runs, same),
            _without([(0, len(self.examples))], [*style_runs, *category_runs]),
        )
        chosen: list[Example] = []
        for runs in tiers:
            if len(chosen) == wanted:
                break
            total = sum(stop - start for start, stop in runs)
            for pick in self.rng.sample(range(total), min(wanted - len(chosen), total)):
                chosen.append(self.examples[_position(runs, pick)])
        return chosen


def _category_order(category: str | None) -> tuple[bool, str]:
    return (category is not None, category or "")


def _without(runs: Sequence[Run], removed: Sequence[Run]) -> list[Run]:
    """The positions of ``runs`` outside every run of ``removed``, as runs."""
    left = list(runs)
    for cut_start, cut_stop in removed:
        left = [
            piece
            for start, stop in left
            for piece in ((start, min(stop, cut_start)), (max(start, cut_stop), stop))
            if piece[0] < piece[1]
        ]
    return left


def _position(runs: Sequence[Run], offset: int) -> int:
    """The ``offset``-th position counting through ``runs`` in order."""
    for start, stop in runs:
        if offset < stop - start:
            return start + offset
        offset -= stop - start
    raise IndexError(offset)


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
            example_sampler.use(examples_at(index))
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
