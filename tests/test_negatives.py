"""Irrelevance negatives: the needed tools go, the others stay, the original stays, and they pass format-check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli import format_check
from apigen_cli.errors import ConfigError
from apigen_cli.stages.negatives import NegativesSummary, chosen, make_negative, negatives

from .conftest import PROJECT, corpus, invoke, parse_stdout, read_jsonl, write_jsonl

WEATHER = {"name": "get_weather", "parameters": {"city": {"type": "str", "description": "city"}}}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
}
NEWS = {"name": "get_news", "parameters": {"topic": {"type": "str, optional", "description": "topic"}}}


def row(row_id: str, *tools: dict[str, Any], calls: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    names = calls if calls is not None else ["get_weather"]
    answers = [{"name": name, "arguments": {"city": "Oslo"} if name == "get_weather" else {}} for name in names]
    return {
        "id": row_id,
        "query": f"question {row_id}",
        "tools": list(tools) or [WEATHER, TIME, NEWS],
        "answers": answers,
        **extra,
    }


def test_the_called_tools_go_and_the_others_stay() -> None:
    original = row("r1", keep_row_after_format_check=True, execution_result=[{"ok": True, "result": 3}], thought="", my_field=[1])
    negative = make_negative(original)
    assert negative is not None
    assert negative == {
        "id": "r1-irrelevant",
        "query": "question r1",
        "tools": [TIME, NEWS],
        "answers": [],
        "my_field": [1],
        "kind": "irrelevance",
        "source_id": "r1",
        "source_verified": False,  # r1 passed the format check only
    }
    assert original["tools"] == [WEATHER, TIME, NEWS] and original["answers"]  # the original is untouched
    verdicts: dict[str, Any] = {f"keep_row_after_{check}_check": True for check in ("format", "execution", "semantic")}
    negative_of_verified = make_negative(row("r2", **verdicts))
    assert negative_of_verified is not None and negative_of_verified["source_verified"] is True


def test_parallel_calls_to_several_tools_take_them_all_away() -> None:
    negative = make_negative(row("r", calls=["get_weather", "get_time", "get_weather"]))
    assert negative is not None and negative["tools"] == [NEWS]


def test_a_row_calling_every_tool_it_offers_is_left_as_it_is_and_counted() -> None:
    summary = NegativesSummary()
    rows = [row("all", WEATHER), row("some")]
    out = list(negatives(rows, rate=1.0, summary=summary))
    assert [r["id"] for r in out] == ["all", "some", "some-irrelevant"]
    assert out[0] == row("all", WEATHER)
    assert (
        summary.line()
        == "negatives: 1 irrelevance row added to 2 rows; 1 chosen row calls every tool it offers and was left as it is"
    )


def test_the_original_is_kept_and_its_negative_follows_it() -> None:
    rows = [row(f"r{n}") for n in range(50)]
    out = list(negatives(rows, rate=0.5, seed=3))
    originals = [r for r in out if r.get("kind") != "irrelevance"]
    assert [r["id"] for r in originals] == [f"r{n}" for n in range(50)]
    for position, each in enumerate(out):
        if each.get("kind") == "irrelevance":
            assert out[position - 1]["id"] == each["source_id"]


def test_the_share_follows_the_rate_and_the_seed_decides_which_rows() -> None:
    ids = [f"row-{n}" for n in range(4000)]
    picked = {seed: {i for i in ids if chosen(i, 0.25, seed)} for seed in (0, 1)}
    assert 0.22 < len(picked[0]) / len(ids) < 0.28
    assert picked[0] != picked[1]
    assert picked[0] == {i for i in ids if chosen(i, 0.25, 0)}  # the same seed, the same rows
    assert not any(chosen(i, 0.0, 0) for i in ids) and all(chosen(i, 1.0, 0) for i in ids)
    # a row's fate does not depend on the rows around it
    assert [r["id"] for r in negatives([row("row-7")], rate=0.25) if r.get("kind")] == (
        ["row-7-irrelevant"] if "row-7" in picked[0] else []
    )


def test_rejected_rows_and_irrelevance_rows_pass_through() -> None:
    rejected = row("x", rejected_by="format_check", reason="unknown_function")
    already = {**row("y"), "answers": [], "kind": "irrelevance"}
    assert list(negatives([dict(rejected), dict(already)], rate=1.0)) == [rejected, already]


def test_unreadable_rows_pass_through_and_are_counted() -> None:
    summary = NegativesSummary()
    bad = {"id": "b", "query": "q", "tools": [{"description": "no name"}], "answers": [{"name": "f"}]}
    assert list(negatives([dict(bad)], rate=1.0, summary=summary)) == [bad]
    assert summary.unusable == 1


def test_a_bad_rate_is_refused_at_once() -> None:
    with pytest.raises(ConfigError):
        negatives([], rate=1.5)


def test_negatives_pass_format_check_as_negatives() -> None:
    out = list(format_check(negatives([row("r")], rate=1.0)))
    assert [(r["id"], r.get("reason_detail"), r["keep_row_after_format_check"]) for r in out] == [
        ("r", None, True),
        ("r-irrelevant", None, True),
    ]


@pytest.mark.corpus
@pytest.mark.parametrize("category", ["multiple", "parallel_multiple", "xlam"])
def test_negatives_never_leave_a_needed_tool_in(category: str) -> None:
    path = "xlam/samples.jsonl" if category == "xlam" else f"bfcl/{category}.jsonl"
    rows = read_jsonl(corpus(path))
    summary = NegativesSummary()
    out = list(negatives([dict(r) for r in rows], rate=1.0, summary=summary))
    by_id = {r["id"]: r for r in out if "source_id" not in r}
    made = [r for r in out if r.get("kind") == "irrelevance"]
    assert len(made) == summary.added > 0 and summary.added + summary.nothing_left == len(rows)
    for negative in made:
        source = by_id[negative["source_id"]]
        source_tools = source["tools"] if isinstance(source["tools"], list) else json.loads(source["tools"])
        needed = {call["name"] for call in source["answers"]}
        offered = [tool.get("function", tool)["name"] for tool in negative["tools"]]
        assert offered and not needed & set(offered)
        assert offered == [
            tool.get("function", tool)["name"] for tool in source_tools if tool.get("function", tool)["name"] not in needed
        ]
    checked = list(format_check(made))
    assert [r.get("reason_detail") for r in checked if "rejected_by" in r] == []


# --- the command -----------------------------------------------------------------------


def test_cli_adds_negatives_and_says_how_many(tmp_path: Path, runner: CliRunner) -> None:
    rows = [row(f"r{n}") for n in range(20)] + [row("all", WEATHER), row("gone", rejected_by="format_check", reason="x")]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = invoke(runner, "negatives", str(source), "--rate", "1")
    assert result.exit_code == 0
    out = parse_stdout(result.stdout)
    assert len(out) == 42 and out[-1]["id"] == "gone"
    assert result.stderr == (
        "negatives: 20 irrelevance rows added to 22 rows; 1 chosen row calls every tool it offers and was left as it is\n"
    )
    seeded = [
        parse_stdout(invoke(runner, "negatives", str(source), "--rate", "0.5", "--seed", seed).stdout) for seed in ("1", "1", "2")
    ]
    assert seeded[0] == seeded[1] != seeded[2]


def test_cli_refuses_a_bad_rate(runner: CliRunner) -> None:
    result = invoke(runner, "negatives", "--rate", "-0.1", input="")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: `--rate` must be between 0 and 1, got -0.1"
    missing = invoke(runner, "negatives", input="")
    assert missing.exit_code == 2 and "--rate" in missing.stderr


@pytest.mark.corpus
def test_the_shell_pipe_from_checked_rows_to_training_data(tmp_path: Path) -> None:
    """format-check | negatives | dedup | export, as real processes joined by real pipes.

    BFCL's calls are its ground truth, never run here: the export takes them with `--unverified`.
    """
    apigen = f"{sys.executable} -m apigen_cli"
    source = corpus("bfcl/parallel_multiple.jsonl")
    command = (
        f"{apigen} format-check {source} -q | {apigen} negatives --rate 0.5 --seed 1 "
        f"| {apigen} dedup --rejects {tmp_path / 'dupes.jsonl'} | {apigen} export --format openai --unverified"
    )
    environment = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, env=environment, check=False)
    assert done.returncode == 0, done.stderr
    records = parse_stdout(done.stdout)
    refusals = [r for r in records if "tool_calls" not in r["messages"][1]]
    assert len(records) > 195 and 0 < len(refusals) < len(records)
    lines = done.stderr.splitlines()
    assert lines[0].startswith("negatives: ") and lines[1].startswith("dedup: ")
    assert (
        lines[2] == f"export: {len(records)} rows written as openai ({len(refusals)} irrelevance, {len(records)} never verified)"
    )
