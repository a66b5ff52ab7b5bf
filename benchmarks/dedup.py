"""Rows per second of `apigen dedup` over generated rows, beside a bare orjson loads+dumps loop.

Rows are made from the BFCL corpus (../shared/corpora/bfcl): each generated row takes a
BFCL row, swaps a few words of its query and, for a fresh row, changes one argument so
that its calls are its own. About 1 row in 10 is instead a near duplicate of an earlier
row (the same calls, one word of the query inserted, dropped or replaced) and 1 in 20 an
exact duplicate (case and spacing changed). Each chunk of rows is encoded once, then run
through both loops, so generating rows costs neither of them:

- baseline: ``orjson.dumps(orjson.loads(line))`` per line;
- dedup: ``orjson.loads``, ``DedupIndex.check`` (the code behind ``dedup()``), ``orjson.dumps``.

Peak memory is the process's peak resident set (``resource.getrusage``), before and
after; the growth over a run is what dedup remembers of the kept rows.

    .venv/bin/python benchmarks/dedup.py                 # a million rows, a minute or two
    .venv/bin/python benchmarks/dedup.py --rows 100000   # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from apigen_cli.stages.dedup import DedupIndex

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "bfcl"
VOCABULARY = [
    "please",
    "kindly",
    "now",
    "quickly",
    "also",
    "today",
    "exactly",
    "maybe",
    "the",
    "a",
    "for",
    "about",
    "with",
    "current",
    "latest",
]
CHUNK = 20_000


def load_bases() -> list[dict[str, Any]]:
    if not CORPORA.exists():
        sys.exit(f"benchmarks/dedup.py needs the BFCL corpus at {CORPORA}")
    bases = []
    for path in sorted(CORPORA.glob("*.jsonl")):
        bases += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return bases


def _perturb_words(words: list[str], generator: random.Random, edits: int) -> list[str]:
    words = list(words)
    for _ in range(edits):
        choice = generator.random()
        position = generator.randrange(len(words) + 1)
        if choice < 0.4 or len(words) < 4:
            words.insert(position, generator.choice(VOCABULARY))
        elif choice < 0.7:
            del words[min(position, len(words) - 1)]
        else:
            words[min(position, len(words) - 1)] = generator.choice(VOCABULARY)
    return words


def _changed_calls(answers: list[dict[str, Any]], number: int) -> list[dict[str, Any]]:
    calls = json.loads(json.dumps(answers))
    arguments = calls[0]["arguments"]
    for key, value in arguments.items():
        if isinstance(value, str):
            arguments[key] = f"{value} {number}"
            break
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            arguments[key] = value + number
            break
    else:
        arguments["variant"] = number
    return calls


def fresh_row(number: int, bases: list[dict[str, Any]]) -> dict[str, Any]:
    """Row ``number``, the same on every call: a BFCL row with its query reworded and its calls its own."""
    generator = random.Random(number)
    base = bases[number % len(bases)]
    words = _perturb_words(base["query"].split(), generator, 2)
    return {
        "id": f"g{number}",
        "query": " ".join(words),
        "tools": base["tools"],
        "answers": _changed_calls(base["answers"], number),
    }


def generated_row(number: int, bases: list[dict[str, Any]]) -> dict[str, Any]:
    generator = random.Random(-number - 1)
    draw = generator.random()
    if number < 100 or draw >= 0.15:
        return fresh_row(number, bases)
    earlier = fresh_row(generator.randrange(number - 100, number), bases)
    earlier["id"] = f"g{number}"
    if draw < 0.05:  # an exact duplicate: case and spacing only
        earlier["query"] = "  " + earlier["query"].upper().replace(" ", "  ")
    else:  # a near duplicate: one word inserted, dropped or replaced
        earlier["query"] = " ".join(_perturb_words(earlier["query"].split(), generator, 1))
    return earlier


def index_bytes(index: DedupIndex) -> int:
    """What the index holds, object by object (its private table, read here only to measure it)."""
    groups = index._groups
    total = sys.getsizeof(groups)
    for key, entry in groups.items():
        total += sys.getsizeof(key) + sys.getsizeof(entry)
        if isinstance(entry, tuple):
            total += sum(sys.getsizeof(item) for item in entry)
        else:
            total += sum(map(sys.getsizeof, entry.ids)) + sys.getsizeof(entry.ids) + sys.getsizeof(entry.queries)
            total += (
                sum(sys.getsizeof(key) for key in entry.queries)
                + sum(map(sys.getsizeof, entry.texts))
                + sys.getsizeof(entry.texts)
            )
            if entry.buckets is not None:
                total += sys.getsizeof(entry.buckets) + sum(sys.getsizeof(members) for members in entry.buckets.values())
    return total


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(rows: int, threshold: float) -> dict[str, Any]:
    bases = load_bases()
    index = DedupIndex(threshold=threshold)
    baseline_seconds = dedup_seconds = 0.0
    rejected: dict[str, int] = {}
    start_rss = 0.0
    made = 0
    while made < rows:
        count = min(CHUNK, rows - made)
        lines = [orjson.dumps(generated_row(number, bases)) for number in range(made, made + count)]
        if made == 0:  # from here on a chunk of lines is in memory all the time: not dedup's
            start_rss = peak_rss_mb()
        made += count

        started = time.perf_counter()
        for line in lines:
            orjson.dumps(orjson.loads(line))
        baseline_seconds += time.perf_counter() - started

        started = time.perf_counter()
        for line in lines:
            row = index.check(orjson.loads(line))
            orjson.dumps(row)
            reason = row.get("reason")
            if reason is not None:
                rejected[reason] = rejected.get(reason, 0) + 1
        dedup_seconds += time.perf_counter() - started
    kept = rows - sum(rejected.values())
    end_rss = peak_rss_mb()
    return {
        "rows": rows,
        "baseline_rows_per_s": rows / baseline_seconds,
        "dedup_rows_per_s": rows / dedup_seconds,
        "ratio": baseline_seconds / dedup_seconds,
        "rejected": rejected,
        "kept": kept,
        "peak_rss_mb": end_rss,
        "rss_growth_mb": end_rss - start_rss,
        "index_bytes_per_kept_row": index_bytes(index) / kept if kept else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="how many rows to generate (default: a million)")
    parser.add_argument("--threshold", type=float, default=0.8, help="dedup's near-duplicate threshold (default 0.8)")
    options = parser.parse_args()
    result = run(options.rows, options.threshold)
    print(f"dedup benchmark: {result['rows']:,} generated rows (BFCL-based), threshold {options.threshold}")
    print(f"  orjson loads+dumps   {result['baseline_rows_per_s']:>10,.0f} rows/s")
    print(f"  dedup                {result['dedup_rows_per_s']:>10,.0f} rows/s   ratio {result['ratio']:.2f} of the baseline")
    print(f"  rejected             {result['rejected']}, kept {result['kept']:,}")
    print(f"  peak RSS             {result['peak_rss_mb']:,.0f} MB (grew {result['rss_growth_mb']:,.0f} MB during the run)")
    print(f"  dedup's memory       {result['index_bytes_per_kept_row']:,.0f} bytes per kept row (counted object by object)")


if __name__ == "__main__":
    main()
