"""`--grow-examples`: verified rows join the example pool, with a fixed lag, the same whatever the concurrency, and after a resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.errors import ConfigError
from apigen_cli.stages.example_pool import ExamplePool, request_index
from apigen_cli.stages.sampling import GrowSettings

from .conftest import invoke, read_jsonl
from .doc_pages import page_with
from .llm_server import LLMServer
from .run_helpers import APIS, EXAMPLES, FUNCTIONS, SAMPLE, apigen_process, kill_9_once_written, run_args, saved_state
from .scripted_model import pipeline_handler

HEADER = "Examples of good pairs, written for other functions (follow their form, do not copy them):\n"
SEED_QUERIES = {row["query"] for row in read_jsonl(EXAMPLES)}


def _row(index: int, pair: int = 0) -> dict[str, Any]:
    return {
        "id": f"gen-1-{index:05d}-{pair}",
        "request_id": f"gen-1-{index:05d}",
        "query": f"query of request {index} pair {pair}",
        "answers": [{"name": "add", "arguments": {"a": index}}],
        "query_style": "simple",
        "category": "math",
    }


def _queries(examples: Sequence[Any]) -> list[str]:
    return [example.query for example in examples]


def test_a_request_sees_only_rows_verified_a_lag_before_it() -> None:
    pool = ExamplePool([], [], GrowSettings(size=100, lag=3), seed=1)
    for index in range(6):
        pool.add(_row(index))
    assert _queries(pool.visible(2)) == []  # request 2 may see requests <= -1: none
    assert _queries(pool.visible(3)) == ["query of request 0 pair 0"]
    assert _queries(pool.visible(5)) == [f"query of request {n} pair 0" for n in range(3)]
    rejected = _row(9) | {"rejected_by": "exec_check"}
    assert _queries(ExamplePool([], [], GrowSettings(lag=1), seed=1).rebuild([rejected]).visible(20)) == []


def test_the_pool_is_a_bounded_reservoir_and_the_same_for_the_same_seed() -> None:
    def filled(seed: int) -> list[str]:
        pool = ExamplePool([], [], GrowSettings(size=5, lag=1), seed=seed)
        for index in range(200):
            pool.add(_row(index))
        return _queries(pool.visible(1000))

    first = filled(7)
    assert len(first) == 5
    assert first == filled(7)
    assert first != [f"query of request {n} pair 0" for n in range(5)]  # later rows took places: a reservoir, not the first five
    assert first != filled(8)


def test_a_rebuilt_pool_is_the_pool_the_run_had() -> None:
    """Resuming at request 37: the rows kept so far, fed in order to a fresh pool, give what the uninterrupted run saw."""
    settings = GrowSettings(size=8, lag=4)
    running = ExamplePool([], [], settings, seed=3)
    seen_at: dict[int, list[str]] = {}
    kept = []
    for index in range(60):
        seen_at[index] = _queries(running.visible(index))
        for pair in range(index % 3):  # some requests give no kept row, some several
            running.add(_row(index, pair))
            kept.append(_row(index, pair))
    resumed_at = 37
    rebuilt = ExamplePool([], [], settings, seed=3).rebuild(row for row in kept if request_index(row) < resumed_at)  # type: ignore[operator]
    for index in range(resumed_at):  # a resumed run replays the skipped plans, which read the pool too
        rebuilt.visible(index)
    for index in range(resumed_at, 60):
        assert _queries(rebuilt.visible(index)) == seen_at[index]
        for pair in range(index % 3):
            rebuilt.add(_row(index, pair))


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="--grow-lag"):
        GrowSettings(lag=0)
    with pytest.raises(ConfigError, match="--example-pool"):
        GrowSettings(size=0)


def _shown(log: Path) -> dict[int, list[str]]:
    """Each generation request's index -> the example queries its prompt showed."""
    shown = {}
    for entry in read_jsonl(log):
        if entry["key"].count("-") != 2:  # judge requests are keyed by row ids (one more -PAIR)
            continue
        text = "\n".join(message["content"] for message in entry["messages"])
        queries = []
        if HEADER in text:
            for line in text.split(HEADER, 1)[1].splitlines():
                try:
                    queries.append(json.loads(line)["query"])
                except (ValueError, KeyError, TypeError):
                    break
        shown[int(entry["key"].rsplit("-", 1)[1])] = queries
    return shown


def _run(runner: CliRunner, tmp_path: Path, name: str, *extra: str) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
    out, log = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.log.jsonl"
    flags = ["-m", "offline", "-J", "offline", "-n", "150", "--seed", "5", "--examples", EXAMPLES, "--pairs-per-prompt", "3"]
    result = invoke(runner, "run", APIS, "--functions", FUNCTIONS, *flags, "-o", str(out), "--log-llm", str(log), "-q", *extra)
    assert result.exit_code == 0, result.stderr
    return read_jsonl(out), _shown(log)


def test_run_feeds_verified_rows_to_later_prompts_whatever_the_concurrency(runner: CliRunner, tmp_path: Path) -> None:
    grow = ("--grow-examples", "--grow-lag", "6", "--example-pool", "40")
    rows, shown = _run(runner, tmp_path, "c1", *grow, "--concurrency", "1")
    rows_16, shown_16 = _run(runner, tmp_path, "c16", *grow, "--concurrency", "16")
    assert rows == rows_16 and shown == shown_16  # the same rows and the very same prompts
    verified_at: dict[str, set[int]] = {}
    for row in rows:
        verified_at.setdefault(row["query"], set()).add(int(row["request_id"].rsplit("-", 1)[1]))
    grown = 0
    for index, queries in shown.items():
        for query in queries:
            if query in SEED_QUERIES:
                continue
            grown += 1
            assert min(verified_at[query]) <= index - 6, (index, query)  # only rows verified a lag before
    assert grown > 50  # later prompts really draw on the run's own rows
    assert all(query in SEED_QUERIES for index in range(6) for query in shown[index])
    _, plain = _run(runner, tmp_path, "off")
    assert all(query in SEED_QUERIES for queries in plain.values() for query in queries)


def test_generate_grows_the_pool_from_format_checked_pairs(runner: CliRunner, tmp_path: Path) -> None:
    log, out = tmp_path / "gen.log.jsonl", tmp_path / "gen.jsonl"
    flags = ["-m", "offline", "-n", "90", "--seed", "2", "--examples", EXAMPLES, "--grow-examples", "--grow-lag", "4"]
    result = invoke(runner, "generate", APIS, *flags, "-o", str(out), "--log-llm", str(log), "-q")
    assert result.exit_code == 0, result.stderr
    plain = invoke(runner, "generate", APIS, *flags[:-3], "-q")
    assert read_jsonl(out) == [json.loads(line) for line in plain.stdout.splitlines()]  # the offline model ignores examples
    checked = invoke(runner, "format-check", str(out), "-q")
    passed = {row["query"] for row in map(json.loads, checked.stdout.splitlines())}
    shown = [query for queries in _shown(log).values() for query in queries if query not in SEED_QUERIES]
    assert shown and set(shown) <= passed


def test_a_resumed_run_shows_the_prompts_the_whole_run_would_have(tmp_path: Path) -> None:
    """kill -9 in the middle, run again: the rebuilt pool gives the resumed requests the reference's prompts."""
    with LLMServer(latency=0.05, handler=pipeline_handler) as server:

        def command(name: str) -> list[str]:
            grow = ["--examples", EXAMPLES, "--grow-examples", "--grow-lag", "2"]
            log, out = tmp_path / f"{name}.log.jsonl", tmp_path / f"{name}.jsonl"
            return run_args(*grow, "--log-llm", str(log), server=server, count=60, seed=8, concurrency=2, out=out, quiet=True)

        reference = apigen_process(command("reference"))
        assert reference.returncode == 0, reference.stderr
        output = tmp_path / "resumed.jsonl"
        kill_9_once_written(command("resumed"), output, lines=12, server=server, answered=server.count * 2 // 3)
        state = saved_state(tmp_path / "resumed.jsonl.apigen-run.json")
        assert 0 < state["requests_done"] < state["requests_total"] and not state["complete"]
        (tmp_path / "resumed.log.jsonl").unlink()
        second = apigen_process(command("resumed"))
        assert second.returncode == 0, second.stderr

    assert read_jsonl(output) == read_jsonl(tmp_path / "reference.jsonl")
    reference_prompts, resumed_prompts = _shown(tmp_path / "reference.log.jsonl"), _shown(tmp_path / "resumed.log.jsonl")
    assert min(resumed_prompts) >= state["requests_done"]
    assert resumed_prompts == {index: reference_prompts[index] for index in resumed_prompts}
    assert any(query not in SEED_QUERIES for queries in resumed_prompts.values() for query in queries)


def test_the_readme_examples_run(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    readme = page_with("**Growing the examples**")
    block = readme.split("**Growing the examples**", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    (tmp_path / "sample_data").symlink_to(SAMPLE)
    monkeypatch.chdir(tmp_path)
    commands = [line for line in block.splitlines() if line.startswith("apigen ")]
    assert [line.split()[1] for line in commands] == ["run", "generate"]
    for line in commands:
        result = invoke(runner, *shlex.split(line)[1:])
        assert result.exit_code == 0, (line, result.stderr)
    assert len(read_jsonl(tmp_path / "out/grown.jsonl")) > 50 and len(read_jsonl(tmp_path / "out/generated.jsonl")) == 60
