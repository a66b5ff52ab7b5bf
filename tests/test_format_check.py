"""The format check, table-driven from tests/fixtures/format_check.jsonl, and on the real corpora."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apigen_cli import format_check
from apigen_cli.rows.jsonl import read_rows

from .conftest import corpus, read_jsonl

CASES = read_jsonl(Path(__file__).parent / "fixtures" / "format_check.jsonl")


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_table_of_rows(case: dict[str, Any]) -> None:
    results = list(format_check([json.loads(json.dumps(case["record"]))]))
    assert len(results) == 1
    row = results[0]
    if case["expected"] is None:
        assert "rejected_by" not in row, row.get("reason_detail")
        assert row["keep_row_after_format_check"] is True
    else:
        assert row["rejected_by"] == "format_check"
        assert row["reason"] == case["expected"], row["reason_detail"]
        assert row["keep_row_after_format_check"] is False
        assert row["reason_detail"]


def test_reason_names_the_call_and_the_argument() -> None:
    tool = {"name": "f", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}}}
    row = {
        "query": "q",
        "tools": [tool],
        "answers": [{"name": "f", "arguments": {"n": 1}}, {"name": "f", "arguments": {"n": "2"}}],
    }
    [checked] = format_check([row])
    assert checked["reason_detail"] == 'call 2 `f`: argument `n` should be integer, got string "2"'


def test_list_of_pairs_gives_one_row_per_pair_with_stable_ids() -> None:
    tool = {"name": "f", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}
    pairs = [{"query": f"n is {n}", "answers": [{"name": "f", "arguments": {"n": n}}], "thought": "t"} for n in (1, 2, 3)]
    row = {"id": "g7", "tools": [tool], "raw_output": json.dumps(pairs), "model": "m1"}
    out = list(format_check([row]))
    assert [r["id"] for r in out] == ["g7-0", "g7-1", "g7-2"]
    assert [r["query"] for r in out] == ["n is 1", "n is 2", "n is 3"]
    assert all("raw_output" not in r and "thought" not in r and r["model"] == "m1" for r in out)


def test_unknown_keys_pass_through_and_strings_become_lists() -> None:
    row = {
        "query": "q",
        "tools": json.dumps([{"name": "f", "parameters": {"a": {"type": "int", "description": "x"}}}]),
        "answers": json.dumps([{"name": "f", "arguments": {"a": 1}}]),
        "my_field": {"kept": [1, 2]},
    }
    [checked] = format_check([row])
    assert checked["my_field"] == {"kept": [1, 2]}
    assert isinstance(checked["tools"], list) and isinstance(checked["answers"], list)
    assert isinstance(checked["id"], str) and len(checked["id"]) == 16


def test_derived_id_is_stable_across_string_and_list_forms() -> None:
    tools = [{"name": "f", "parameters": {"a": {"type": "int", "description": "x"}}}]
    answers = [{"name": "f", "arguments": {"a": 1}}]
    [as_strings] = format_check([{"query": "q", "tools": json.dumps(tools), "answers": json.dumps(answers)}])
    [as_lists] = format_check([{"query": "q", "tools": tools, "answers": answers}])
    assert as_strings["id"] == as_lists["id"]


def test_distilabel_columns_are_read() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_breed_information",
            "description": "Cat breeds.",
            "parameters": {"type": "object", "properties": {"breed": {"type": "string"}}, "required": ["breed"]},
        },
    }
    row = {
        "func_name": "get_breed_information",
        "func_desc": "Cat breeds.",
        "tools": json.dumps([tool]),
        "query": "Tell me about Maine Coons",
        "answers": json.dumps([{"name": "get_breed_information", "arguments": {"breed": "Maine Coon"}}]),
    }
    [checked] = format_check([row])
    assert checked["keep_row_after_format_check"] is True
    assert checked["func_name"] == "get_breed_information"


def test_rows_rejected_earlier_pass_through_untouched() -> None:
    row = {"id": "x", "rejected_by": "input", "reason": "invalid_json", "raw": "{"}
    assert list(format_check([dict(row)])) == [row]


# --- the real corpora -----------------------------------------------------------------

BFCL_SLIPS = {
    "parallel_multiple_12": "unknown_argument",
    "parallel_multiple_26": "unknown_argument",
    "parallel_multiple_21": "wrong_type",
    "parallel_multiple_94": "wrong_type",
    "simple_python_307": "wrong_type",
}


@pytest.mark.corpus
@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "parallel_multiple"])
def test_bfcl_rows_pass_except_the_documented_slips(category: str) -> None:
    rows = list(format_check(read_rows(str(corpus(f"bfcl/{category}.jsonl")))))
    assert len(rows) >= 200
    rejected = {row["id"]: row["reason"] for row in rows if "rejected_by" in row}
    expected = {key: code for key, code in BFCL_SLIPS.items() if key.rsplit("_", 1)[0] == category}
    assert rejected == expected


@pytest.mark.corpus
def test_every_xlam_sample_passes() -> None:
    rows = list(format_check(read_rows(str(corpus("xlam/samples.jsonl")))))
    assert len(rows) == 13
    assert [row.get("reason_detail") for row in rows if "rejected_by" in row] == []
    assert all(isinstance(row["answers"], list) and isinstance(row["tools"], list) for row in rows)


@pytest.mark.corpus
def test_xlam_rows_read_as_one_json_array(tmp_path: Path) -> None:
    samples = read_jsonl(corpus("xlam/samples.jsonl"))
    array_file = tmp_path / "xlam.json"
    array_file.write_text(json.dumps(samples, indent=2))
    rows = list(format_check(read_rows(str(array_file))))
    assert len(rows) == 13 and all(row["keep_row_after_format_check"] for row in rows)
