"""``--grow-examples``: verified rows join the pool of few-shot examples during the run (paper §3.1).

In the paper each verified pair joins the pool later prompts draw from, so the
data grows more varied as generation goes on. Done naively, what a request sees
would depend on how far the other requests had got, that is on concurrency and
timing. Here the rule is fixed instead:

    the request at plan index ``i`` draws from the seed examples plus the rows
    verified for requests ``0 .. i - lag``.

``grown`` enforces it: it makes the plans ``lag`` at a time and lets each batch
run through every stage before the next batch is planned, so when request ``i``
is planned every request up to ``i - lag`` has its verdict (concurrency works
within a batch). What joins is kept in a reservoir of ``size`` examples
(Algorithm R, with its own seeded generator), so memory is bounded; rows waiting
for their turn (at most ``lag`` requests' worth) are held apart until then.

Everything is decided by the order of the rows, which is plan order, so the same
seed gives the same pool at every request, and a resumed run rebuilds it by
feeding the rows it kept, in order, to a fresh pool (``ExamplePool.rebuild``).
"""

from __future__ import annotations

import copy
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from ..library.loader import Api
from ..rows.records import REJECTED_BY, Row
from .sampling import Example, GrowSettings, RequestPlan, examples_from_rows

if TYPE_CHECKING:
    from ..llm.chat import ChatService
    from .generate import Generation

_POOL_SEED_SALT = 0x5EED_B00C  # the reservoir's generator is derived from, but apart from, the run seed


def request_index(row: Row) -> int | None:
    """The plan index of the request a generated row came from (``gen-SEED-INDEX``), if it says."""
    request_id = row.get("request_id")
    if not isinstance(request_id, str):
        return None
    tail = request_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


class ExamplePool:
    """The seed examples plus a reservoir of verified rows, each visible ``lag`` requests after its own."""

    def __init__(self, seed_examples: Sequence[Example], apis: Sequence[Api], settings: GrowSettings, seed: int) -> None:
        self.seed_examples = list(seed_examples)
        self.settings = settings
        self.joined = 0  # rows that reached the reservoir (kept or not)
        self._apis = list(apis)
        self._reservoir: list[Example] = []
        self._waiting: deque[tuple[int, Example]] = deque()
        self._rng = random.Random(seed ^ _POOL_SEED_SALT)
        self._visible: tuple[Example, ...] | None = None

    def add(self, row: Row) -> None:
        """Offer a verified row; it becomes visible to requests ``lag`` or more after its own."""
        index = request_index(row)
        if index is None:
            return
        for example in examples_from_rows([row], self._apis):
            self._waiting.append((index, example))

    def visible(self, index: int) -> tuple[Example, ...]:
        """What the request at plan index ``index`` may draw from (call with non-decreasing indexes).

        The same tuple until a row joins, so the example sampler indexes it once, not per request.
        """
        joined = self.joined
        while self._waiting and self._waiting[0][0] <= index - self.settings.lag:
            self._join(self._waiting.popleft()[1])
        if self._visible is None or self.joined != joined:
            self._visible = (*self.seed_examples, *self._reservoir)
        return self._visible

    def _join(self, example: Example) -> None:
        self.joined += 1
        if len(self._reservoir) < self.settings.size:
            self._reservoir.append(example)
            return
        slot = self._rng.randrange(self.joined)
        if slot < self.settings.size:
            self._reservoir[slot] = example

    def rebuild(self, kept: Iterable[Row]) -> ExamplePool:
        """Feed the rows a run already kept (its output, in order), as they were fed when it ran."""
        for row in kept:
            if REJECTED_BY not in row:
                self.add(row)
        return self


def grown(
    plans: Iterator[RequestPlan],
    lag: int,
    pipeline: Callable[[Iterable[RequestPlan]], Iterator[Row]],
    joins: Callable[[Row], Iterable[Row]],
    pool: ExamplePool,
) -> Iterator[Row]:
    """Run ``pipeline`` over ``plans`` in batches of ``lag``, feeding ``joins(row)`` of each row out to ``pool``.

    A batch is planned only once the rows of the batch before it have all come
    out, which is what makes the pool each request sees independent of timing.
    """
    while True:
        batch = list(itertools.islice(plans, lag))
        if not batch:
            return
        for row in pipeline(batch):
            for member in joins(row):
                pool.add(member)
            yield row


def verified(row: Row) -> Iterable[Row]:
    """``run``: a row joins when it passed every check."""
    return () if REJECTED_BY in row else (row,)


def format_checked(row: Row) -> Iterable[Row]:
    """``generate`` alone: the pairs of a row that pass the format check (the one check it can run itself).

    The row is copied, so what ``generate`` writes is untouched.
    """
    from .format_check import format_check

    return [checked for checked in format_check([copy.deepcopy(row)]) if REJECTED_BY not in checked]


def pool_for(generation: Generation) -> ExamplePool:
    """A fresh pool for a generation job: its seed examples, its library, its seed."""
    assert generation.grow is not None
    return ExamplePool(generation.examples, generation.apis, generation.grow, generation.settings.seed)


def generate_growing(generation: Generation, chat: ChatService, *, with_schema: bool = False) -> Iterator[Row]:
    """``generate --grow-examples``: the rows of ``generate``, with format-checked pairs joining the pool."""
    from .generate import generate

    assert generation.grow is not None
    pool = pool_for(generation)
    return grown(
        generation.plans(pool=pool),
        generation.grow.lag,
        lambda plans: generate(plans, chat, generation.prompts, with_schema=with_schema),
        format_checked,
        pool,
    )
