"""Issue 12: finding the JSON in a model's text is linear in the text, whatever the text.

The attack is text the old search re-read from every ``[``: 200 of them, then
megabytes that never close. format-check must reject it as unparseable at once
(the run's deadline would kill a quadratic search, which took half a minute).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_cli.stages.extract import NOT_FOUND, find_json

from .conftest import read_jsonl, write_jsonl
from .hostile import run_cli

TOOLS = [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}]
ANSWER = json.dumps([{"query": "q", "answers": [{"name": "f", "arguments": {"a": 1}}]}])


@pytest.mark.parametrize(
    "text",
    [
        "[" * 200 + "1," * 5_000_000,  # 10 MB of numbers, never closed
        "[" * 200 + '"' + "x" * 10_000_000,  # a string never closed
        "[" * 200 + "1," * 2_000_000 + "x" + "]" * 200,  # balanced, but broken deep inside
        "[" * 1_000_000,
    ],
    ids=["numbers", "string", "broken-deep", "brackets"],
)
def test_format_check_rejects_pathological_text_promptly(tmp_path: Path, text: str) -> None:
    rows = [{"id": "bad", "tools": TOOLS, "raw_output": text}, {"id": "good", "tools": TOOLS, "raw_output": ANSWER}]
    source, output, rejects = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    write_jsonl(source, rows)
    ran = run_cli("format-check", str(source), "-o", str(output), "--rejects", str(rejects), deadline=20)
    assert not ran.killed and ran.exit_code == 0, ran.stderr
    [rejected] = read_jsonl(rejects)
    assert rejected["reason"] == "unparseable_output"
    assert [row["query"] for row in read_jsonl(output)] == ["q"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Sure [note: it"s] here: {"a": 1} ok', {"a": 1}),  # a stray quote in prose does not hide the value
        ('[NaN, {"a": 1}] then {"b": 2}', {"b": 2}),  # a value orjson refuses is skipped whole
        ('see [1] and [] then [{"a": [1, {"b": "}"}]}]', [1]),
        ('pick {"x": "a\\"]"} please', {"x": 'a"]'}),
        ("[1, 2", NOT_FOUND),
        ('[\n"line\nbreak"] {"c": 3}', {"c": 3}),  # a raw line break in a string is not JSON
    ],
)
def test_the_search_still_finds_what_the_model_meant(text: str, expected: object) -> None:
    assert find_json(text) == expected if expected is not NOT_FOUND else find_json(text) is NOT_FOUND
