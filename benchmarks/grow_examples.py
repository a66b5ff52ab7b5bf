"""What `--grow-examples` does, on the offline backend: `apigen run` with and without it, same seeds.

For each seed, the same run (sample data, offline generator and judge, the seed examples
of sample_data/examples.jsonl) is made twice, the baseline without the flag and then with
it, and compared on

- the verified rows: pass rate, query diversity (distinct-n: distinct word n-grams over all
  n-grams of the verified queries, n = 1, 2, 3) and the near-duplicate rate (as
  `apigen report` counts it: dedup's rule over the verified rows);
- the prompts (read back from `--log-llm`): the distinct few-shot examples shown over all
  example slots, and the share of slots filled by the run's own rows;
- wall time (the grown run plans its requests a lag at a time, waiting for each batch).

    .venv/bin/python benchmarks/grow_examples.py                  # 3 seeds x 1,500 rows
    .venv/bin/python benchmarks/grow_examples.py --rows 300 --seeds 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SAMPLE, apigen_command, read_jsonl

from apigen_cli.reporting.figures import collect_figures

HEADER = "Examples of good pairs, written for other functions (follow their form, do not copy them):\n"


def distinct_n(queries: list[str], n: int) -> float:
    grams = [tuple(words[i : i + n]) for words in (query.lower().split() for query in queries) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def shown_examples(log: Path) -> list[str]:
    shown = []
    for entry in read_jsonl(log):
        if entry["key"].count("-") != 2:
            continue
        text = "\n".join(message["content"] for message in entry["messages"])
        if HEADER not in text:
            continue
        for line in text.split(HEADER, 1)[1].splitlines():
            try:
                shown.append(json.loads(line)["query"])
            except (ValueError, KeyError, TypeError):
                break
    return shown


def one_run(folder: Path, name: str, rows: int, seed: int, grow: bool) -> dict[str, Any]:
    out, rejects, log = folder / f"{name}.jsonl", folder / f"{name}_rejects.jsonl", folder / f"{name}.log.jsonl"
    flags = [
        "--examples",
        str(SAMPLE / "examples.jsonl"),
        "--log-llm",
        str(log),
        "--overwrite",
        *(["--grow-examples"] if grow else []),
    ]
    command = apigen_command("run", *flags, count=rows, seed=seed, concurrency=16, out=out, rejects=rejects)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    figures = collect_figures([*read_jsonl(out), *read_jsonl(rejects)])
    queries = [row["query"] for row in read_jsonl(out)]
    seeds = {row["query"] for row in read_jsonl(SAMPLE / "examples.jsonl")}
    shown = shown_examples(log)
    total = figures.table.total()
    return {
        "pass_rate": total.pass_rate,
        "distinct": [distinct_n(queries, n) for n in (1, 2, 3)],
        "near_dup": figures.near_duplicate_rate(),
        "shown_distinct": len(set(shown)) / len(shown) if shown else 0.0,
        "shown_grown": sum(query not in seeds for query in shown) / len(shown) if shown else 0.0,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--seeds", type=int, default=3)
    arguments = parser.parse_args()
    print(f"apigen run, offline, {arguments.rows} rows, concurrency 16; baseline: the same run without --grow-examples")
    print("seed  run       pass rate  distinct-1/2/3        near-dup  shown distinct  shown grown  wall s  ratio")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for seed in range(1, arguments.seeds + 1):
            base = one_run(folder, f"base{seed}", arguments.rows, seed, grow=False)
            grown = one_run(folder, f"grow{seed}", arguments.rows, seed, grow=True)
            for name, figures in (("baseline", base), ("grow", grown)):
                distinct = "/".join(f"{value:.3f}" for value in figures["distinct"])
                print(
                    f"{seed:<5} {name:<9} {figures['pass_rate']:>8.2%}  {distinct:<20}  {figures['near_dup']:>7.2%}"
                    f"  {figures['shown_distinct']:>14.3f}  {figures['shown_grown']:>11.2%}  {figures['seconds']:>6.2f}"
                    f"  {figures['seconds'] / base['seconds']:>5.2f}"
                )


if __name__ == "__main__":
    main()
