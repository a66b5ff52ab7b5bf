"""library check and merge through the CLI, on sample_data and on libraries written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from apigen_cli.library.check import example_arguments, example_value

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl

SAMPLE = str(PROJECT / "sample_data" / "apis.jsonl")
FUNCTIONS = str(PROJECT / "sample_data" / "functions")


def test_values_come_from_examples_defaults_enums_then_placeholders() -> None:
    assert example_value({"type": "string", "examples": ["x"], "default": "y"}) == "x"
    assert example_value({"type": "integer", "default": 4}) == 4
    assert example_value({"type": "string", "enum": ["km", "mi"]}) == "km"
    assert example_value({"type": "integer", "minimum": 5}) == 5
    assert example_value({"type": "number", "maximum": 0.5}) == 0.5
    assert example_value({"type": "string", "format": "date"}) == "2024-01-15"
    assert example_value({"type": "array", "items": {"type": "boolean"}}) == [True, True]
    assert example_value({"type": "array", "items": {"type": "integer"}}) == [1, 2]
    assert example_value({"type": "array", "items": {"type": "number"}, "maxItems": 1}) == [1.0]
    assert example_value({"type": "array", "minItems": 3}) == ["example"] * 3
    assert example_value({"anyOf": [{"type": "null"}, {"type": "integer"}]}) == 1
    assert example_value({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}) == {"a": "example"}
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {}}, "required": ["a"]}}
    assert example_arguments(tool) == {"a": 1}
    assert example_arguments({"name": "x", "parameters": {"n": {"type": "int"}, "m": {"type": "str, optional"}}}) == {"n": 1}


def test_check_calls_each_sample_api_and_keeps_the_ones_that_answer(runner: CliRunner, tmp_path: Path) -> None:
    keep = tmp_path / "working.jsonl"
    result = invoke(runner, "library", "check", SAMPLE, "--functions", FUNCTIONS, "--workers", "1", "--keep", str(keep))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    header = next(line for line in lines if line.startswith("API "))
    assert header.split() == ["API", "STATUS", "HTTP", "DETAIL"]
    factorial = next(line for line in lines if line.startswith("factorial "))
    assert factorial.split()[:3] == ["factorial", "ok", "1"]  # factorial(n=0): the minimum
    kept = [tool.get("function", tool)["name"] for tool in read_jsonl(keep)]
    answered = int(lines[-1].split()[1])
    assert lines[-1] == f"check: {answered} of 57 APIs answered, 0 lint findings"
    assert len(kept) == answered and "factorial" in kept
    assert all("category" in tool for tool in read_jsonl(keep))
    strict = invoke(runner, "library", "check", SAMPLE, "--functions", FUNCTIONS, "--workers", "1", "--strict", "-q")
    assert strict.exit_code == (1 if answered < 57 else 0)


def test_lint_finds_duplicates_bad_names_and_missing_descriptions(runner: CliRunner, tmp_path: Path) -> None:
    library = write_jsonl(
        tmp_path / "apis.jsonl",
        [
            {"name": "a.b", "description": "", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}},
            {"name": "ok", "description": "Fine.", "parameters": {"type": "object", "properties": {}}},
            {"name": "ok", "description": "x" * 2000, "parameters": {}},
            {"name": "bad", "parameters": {"type": "object", "properties": {"y": {"type": "frob"}}}},
        ],
    )
    result = invoke(runner, "library", "check", str(library), "--lint-only", "--strict")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'lint: line 4: tool `bad`: parameter `y` has type "frob", which apigen does not understand',
        "lint: line 1 `a.b`: the name is not of the form ^[A-Za-z0-9_-]{1,64}$ that endpoints accept",
        "lint: line 1 `a.b`: the description is empty",
        "lint: line 1 `a.b`: parameter(s) without a description: `x`",
        "lint: line 3 `ok`: the name is already used on line 2",
        "lint: line 3 `ok`: the description is 2000 characters (over 1024)",
        "check: 3 APIs linted, 6 lint findings",
    ]
    assert invoke(runner, "library", "check", str(library), "--lint-only").exit_code == 0


def test_check_of_a_missing_library_is_an_error(runner: CliRunner) -> None:
    result = invoke(runner, "library", "check", "no_such.jsonl")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: API library `no_such.jsonl` does not exist")


def test_merge_renames_clashes_keeps_bindings_and_drops_exact_repeats(runner: CliRunner, tmp_path: Path) -> None:
    rest = {"name": "factorial", "description": "REST factorial.", "parameters": {}, "http": {"url": "http://h/f"}}
    first = write_jsonl(tmp_path / "rest.jsonl", [rest])
    result = invoke(runner, "library", "merge", SAMPLE, str(first), SAMPLE)
    assert result.exit_code == 0, result.stderr
    merged = parse_stdout(result.stdout)
    names = [tool.get("function", tool)["name"] for tool in merged]
    assert len(names) == 58 and len(set(names)) == 58
    assert merged[-1] == {**rest, "name": "factorial_2"}
    assert (
        f"line 1 of `{first}`: `factorial` clashes with the API on line 1 of `{SAMPLE}`; renamed `factorial_2`" in result.stderr
    )
    assert f"line 1 of `{SAMPLE}`: `factorial` is the same API as on line 1 of `{SAMPLE}`; kept once" in result.stderr
    assert result.stderr.rstrip().endswith("merge: 58 APIs written, 57 skipped")
    out = tmp_path / "merged.jsonl"
    assert invoke(runner, "library", "merge", SAMPLE, str(first), "-o", str(out), "-q").exit_code == 0
    assert json.loads(out.read_text().splitlines()[-1])["name"] == "factorial_2"


def test_an_error_payload_is_an_error_unless_error_results_pass(runner: CliRunner, tmp_path: Path) -> None:
    library = write_jsonl(
        tmp_path / "apis.jsonl",
        [{"name": "get_book", "description": "One book.", "parameters": {"book_id": {"type": "str", "description": "Id"}}}],
    )
    failed = invoke(runner, "library", "check", str(library), "--functions", FUNCTIONS, "--workers", "1", "--strict")
    assert failed.exit_code == 1
    assert 'get_book  error          the result is an error payload: {"error": "no book with id \'example\'"}' in failed.stderr
    passed = invoke(
        runner, "library", "check", str(library), "--functions", FUNCTIONS, "--workers", "1", "--error-result", "pass"
    )
    assert passed.exit_code == 0
    assert "check: 1 of 1 APIs answered, 0 lint findings" in passed.stderr
