"""Deduplication: exact and near duplicates, things that are not duplicates, the stage contract, the command."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.errors import ConfigError
from apigen_cli.stages.dedup import LINEAR_LIMIT, DedupIndex, MinHashBands, dedup, jaccard, word_hashes, words_of

from .conftest import corpus, invoke, parse_stdout, read_jsonl, write_jsonl

TOOLS = [
    {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}},
    }
]


def row(row_id: str, query: str, *calls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    answers = list(calls) or [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}]
    return {"id": row_id, "query": query, "tools": TOOLS, "answers": answers, **extra}


def weather(city: str, **more: Any) -> dict[str, Any]:
    return {"name": "get_weather", "arguments": {"city": city, **more}}


def verdicts(rows: list[dict[str, Any]], **options: Any) -> list[tuple[str, str | None, str | None]]:
    return [(r["id"], r.get("reason"), r.get("duplicate_of")) for r in dedup(rows, **options)]


QUERY = "What is the weather in Paris today in degrees Celsius?"


def test_exact_duplicates_ignore_case_spacing_and_argument_key_order() -> None:
    rows = [
        row("a", QUERY, weather("Paris", unit="c")),
        row(
            "b",
            "  what is the WEATHER in paris today\tin degrees celsius? ",
            {"arguments": {"unit": "c", "city": "Paris"}, "name": "get_weather"},
        ),
        row("c", QUERY, weather("Paris", unit="c"), answers_as_text=True),
    ]
    rows[2]["answers"] = json.dumps(rows[2]["answers"])  # an xlam-style JSON string is the same calls
    assert verdicts(rows) == [("a", None, None), ("b", "duplicate", "a"), ("c", "duplicate", "a")]
    rejected = list(dedup(rows))[1]
    assert rejected["rejected_by"] == "dedup"
    assert rejected["reason_detail"] == "row `a` has the same query (ignoring case and spacing) and the same calls"


def test_near_duplicates_same_calls_and_a_word_or_two_apart() -> None:
    rows = [
        row("a", QUERY),
        row("b", "What is the weather like in Paris today in degrees Celsius?"),  # one word added
        row("c", "What's the weather in Paris today, in degrees Celsius?"),  # one word changed, punctuation
        row("d", "Tell me how warm it will be in the French capital, in Celsius"),  # same calls, other words
    ]
    assert verdicts(rows) == [("a", None, None), ("b", "near_duplicate", "a"), ("c", "near_duplicate", "a"), ("d", None, None)]
    detail = list(dedup(rows))[1]["reason_detail"]
    assert detail == "row `a` makes the same calls, and its query has 90% of the same words (Jaccard 0.90, threshold 0.80)"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (weather("Paris", unit="c"), weather("Rome", unit="c")),  # one argument differs
        (weather("Paris", unit="c"), weather("Paris")),  # one argument fewer
        (weather("Paris", unit="c"), {"name": "get_forecast", "arguments": {"city": "Paris", "unit": "c"}}),
    ],
)
def test_the_same_words_with_other_calls_are_not_duplicates(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert verdicts([row("a", QUERY, first), row("b", QUERY, second)]) == [("a", None, None), ("b", None, None)]


def test_call_order_counts() -> None:
    rows = [row("a", QUERY, weather("Paris"), weather("Oslo")), row("b", QUERY, weather("Oslo"), weather("Paris"))]
    assert verdicts(rows) == [("a", None, None), ("b", None, None)]


def test_threshold_and_no_near() -> None:
    rows = [row("a", QUERY), row("b", "What is the weather like in Paris today in degrees Celsius?"), row("c", QUERY.upper())]
    assert verdicts(rows, threshold=0.95) == [("a", None, None), ("b", None, None), ("c", "duplicate", "a")]
    assert verdicts(rows, near=False) == [("a", None, None), ("b", None, None), ("c", "duplicate", "a")]
    assert verdicts(rows, threshold=0.9) == [("a", None, None), ("b", "near_duplicate", "a"), ("c", "duplicate", "a")]


def test_a_duplicate_names_the_most_alike_kept_row() -> None:
    rows = [
        row("a", "weather in paris today please"),
        row("b", "weather in paris today please thanks a lot"),
        row("c", "weather in paris today please thanks a lot friend"),
    ]
    assert verdicts(rows, threshold=0.7) == [("a", None, None), ("b", None, None), ("c", "near_duplicate", "b")]


def test_large_groups_of_the_same_calls_use_the_lsh_index_and_still_find_near_duplicates() -> None:
    # the same call (a no-argument tool, as often happens) asked for in many unlike ways
    ping = {"name": "ping", "arguments": {}}
    originals = [row(f"o{n}", f"check the a{n} and b{n} and c{n} servers", ping) for n in range(40)]
    near = [row(f"n{n}", f"check the a{n} and b{n} and c{n} servers now", ping) for n in range(40)]
    index = DedupIndex()
    out = [index.check(r) for r in originals + near]
    assert len(originals) > LINEAR_LIMIT
    assert [r.get("reason") for r in out[: len(originals)]] == [None] * len(originals)
    assert [(r["reason"], r["duplicate_of"]) for r in out[len(originals) :]] == [
        ("near_duplicate", f"o{n}") for n in range(len(near))
    ]


def test_minhash_bands_are_sized_for_the_threshold() -> None:
    for threshold in (0.5, 0.8, 0.9, 1.0):
        bands = MinHashBands(threshold)
        chance_missed = (1 - threshold**bands.rows) ** bands.bands
        assert chance_missed <= 0.001
    same = word_hashes(words_of("a b c d e f g h i j"))
    assert MinHashBands(0.8).band_keys(same) == MinHashBands(0.8).band_keys(word_hashes(words_of("j i h g f e d c b a b")))
    assert MinHashBands(0.8).band_keys(same) != MinHashBands(0.8).band_keys(word_hashes(words_of("k l m n o p q r s t")))
    assert jaccard(words_of("a b c d e f g h i j"), words_of("a b c d e f g h i x")) == pytest.approx(9 / 11)


def test_rows_rejected_earlier_pass_untouched_and_are_not_remembered() -> None:
    earlier = row("a", QUERY, rejected_by="exec_check", reason="exception")
    out = list(dedup([dict(earlier), row("b", QUERY)]))
    assert out[0] == earlier
    assert out[1].get("reason") is None


def test_rows_without_ids_get_one_and_unreadable_calls_still_meet_their_copies() -> None:
    rows = [{"query": "q", "answers": "not json"}, {"query": "Q", "answers": "not json"}]
    out = list(dedup(rows))
    assert out[1]["duplicate_of"] == out[0]["id"] and len(out[0]["id"]) == 16


def test_the_stage_is_lazy() -> None:
    def rows() -> Iterator[dict[str, Any]]:
        yield row("a", QUERY)
        raise AssertionError("read past the first row before yielding it")

    assert next(dedup(rows()))["id"] == "a"


def test_a_bad_threshold_is_refused_at_once() -> None:
    with pytest.raises(ConfigError):
        dedup([], threshold=0)
    with pytest.raises(ConfigError):
        dedup([], threshold=1.5)


def test_memory_kept_is_hashes_not_rows() -> None:
    padding = "x" * 2000
    rows = (row(f"r{n}", f"weather report number {n} for the city", weather(f"City{n}"), padding=padding) for n in range(5000))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index = DedupIndex()
        for each in rows:
            index.check(each)
        retained = tracemalloc.get_traced_memory()[0] - before
        assert len(index._groups) == 5000
    finally:
        tracemalloc.stop()
    assert retained / 5000 < 600  # bytes per kept row; a kept row itself would be over 2,000


@pytest.mark.corpus
def test_bfcl_rows_are_mostly_unique_and_their_repeats_are_real() -> None:
    rows = []
    for category in ("simple_python", "multiple"):
        rows += read_jsonl(corpus(f"bfcl/{category}.jsonl"))
    by_id = {r["id"]: r for r in rows}
    out = list(dedup([dict(r) for r in rows]))
    rejected = [r for r in out if "rejected_by" in r]
    assert 0 < len(rejected) < len(rows) // 4
    for duplicate in rejected:
        kept = by_id[duplicate["duplicate_of"]]
        assert kept["answers"] == by_id[duplicate["id"]]["answers"] or duplicate["reason"] == "duplicate"


# --- the command -----------------------------------------------------------------------


def test_cli_routes_duplicates_to_rejects_and_says_how_many(tmp_path: Path, runner: CliRunner) -> None:
    rows = [
        row("a", QUERY),
        row("b", QUERY.lower()),
        row("c", "What is the weather like in Paris today in degrees Celsius?"),
        row("d", "x", weather("Rome")),
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = invoke(runner, "dedup", str(source), "--rejects", str(tmp_path / "dupes.jsonl"))
    assert result.exit_code == 0
    assert [r["id"] for r in parse_stdout(result.stdout)] == ["a", "d"]
    assert result.stderr == "dedup: 2 passed, 2 rejected (duplicate 1, near_duplicate 1)\n"
    dupes = read_jsonl(tmp_path / "dupes.jsonl")
    assert [(r["id"], r["rejected_by"], r["reason"], r["duplicate_of"]) for r in dupes] == [
        ("b", "dedup", "duplicate", "a"),
        ("c", "dedup", "near_duplicate", "a"),
    ]
    exact_only = invoke(runner, "dedup", str(source), "--no-near", "--strict")
    assert exact_only.exit_code == 1
    assert exact_only.stderr.splitlines()[-1] == "dedup: 3 passed, 1 rejected (duplicate 1)"


def test_cli_refuses_a_bad_threshold(runner: CliRunner) -> None:
    result = invoke(runner, "dedup", "--threshold", "0", input="")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: `--threshold` must be above 0 and at most 1, got 0.0"
