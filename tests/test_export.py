"""Export to xlam, OpenAI chat fine-tuning and ShareGPT: round trips on the real corpora and hand-made rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli import format_check
from apigen_cli.rows.jsonl import read_rows
from apigen_cli.schema.dialects import Note
from apigen_cli.schema.tools import compile_tool
from apigen_cli.stages.export import IRRELEVANCE_REPLY, ExportSummary, NoteCollector, export_rows

from .conftest import PROJECT, corpus, invoke, parse_stdout, read_jsonl, write_jsonl

BFCL_SLIPS = {"parallel_multiple_12", "parallel_multiple_26", "parallel_multiple_21", "parallel_multiple_94", "simple_python_307"}

WEATHER = {
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}
TIME = {"name": "get_time", "description": "Local time.", "parameters": {"zone": {"type": "str", "description": "IANA zone"}}}
#: TIME as every export writes it: its xlam parameters turned into a JSON Schema object.
TIME_AS_JSON_SCHEMA = {
    "name": "get_time",
    "description": "Local time.",
    "parameters": {
        "type": "object",
        "properties": {"zone": {"type": "string", "description": "IANA zone"}},
        "required": ["zone"],
    },
}


def bfcl_rows() -> list[dict[str, Any]]:
    rows = []
    for category in ("simple_python", "multiple", "parallel", "parallel_multiple"):
        rows += [row for row in read_jsonl(corpus(f"bfcl/{category}.jsonl")) if row["id"] not in BFCL_SLIPS]
    return rows


def bfcl_exported(form: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each BFCL row beside its export as ``form``: exactly one record a row, in the rows' order."""
    rows = bfcl_rows()
    exported = list(export_rows([dict(row) for row in rows], form))
    assert len(exported) == len(rows)
    return list(zip(rows, exported, strict=True))


def results_row() -> dict[str, Any]:
    return {
        "id": "w1",
        "query": "Weather in Paris and Oslo, please",
        "tools": [WEATHER, TIME],
        "answers": [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"unit": "c", "city": "Oslo"}},
        ],
        "execution_result": [
            {"name": "get_weather", "ok": True, "result": {"temp": 21, "sky": "clear"}},
            {"name": "get_weather", "ok": True, "result": "3 degrees, snow"},
        ],
        **VERIFIED,
    }


#: The verdicts of a row that passed the three checks: what `apigen export` asks of a row
VERIFIED = {"keep_row_after_format_check": True, "keep_row_after_execution_check": True, "keep_row_after_semantic_check": True}


def irrelevance_row() -> dict[str, Any]:
    """A negative as `apigen negatives` makes one of a verified row."""
    return {
        "id": "w1-irrelevant",
        "query": "What time is it in Lima?",
        "tools": [WEATHER],
        "answers": [],
        "kind": "irrelevance",
        "source_verified": True,
    }


def checked(row: dict[str, Any]) -> dict[str, Any]:
    [result] = format_check([row])
    assert "rejected_by" not in result, result.get("reason_detail")
    return result


# --- xlam ------------------------------------------------------------------------------


@pytest.mark.corpus
def test_xlam_samples_come_back_with_the_same_values(tmp_path: Path, runner: CliRunner) -> None:
    samples = read_jsonl(corpus("xlam/samples.jsonl"))
    source = write_jsonl(tmp_path / "samples.jsonl", samples)
    # the released rows were verified by their makers, not here: exported as they are, and counted
    result = invoke(runner, "export", str(source), "--format", "xlam", "--unverified", "-o", str(tmp_path / "out.json"))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "export: 13 rows written as xlam (13 never verified)\n"
    exported = json.loads((tmp_path / "out.json").read_text())
    assert len(exported) == 13
    for before, after in zip(samples, exported, strict=True):
        assert after.get("id", "absent") == before.get("id", "absent")
        assert after["query"] == before["query"]
        assert json.loads(after["answers"]) == json.loads(before["answers"])
        assert json.loads(after["tools"]) == json.loads(before["tools"])
        assert (after["answers"], after["tools"]) == (before["answers"], before["tools"])  # byte for byte, even
        assert list(after) == [key for key in ("id", "query", "answers", "tools") if key in before]


@pytest.mark.corpus
def test_xlam_samples_through_format_check_keep_their_ids_and_values(tmp_path: Path) -> None:
    samples = read_jsonl(corpus("xlam/samples.jsonl"))
    rows = list(format_check(read_rows(str(corpus("xlam/samples.jsonl")))))
    exported = list(export_rows(rows, "xlam"))
    for before, after in zip(samples, exported, strict=True):
        if "id" in before:
            assert after["id"] == before["id"] and isinstance(after["id"], int)
        assert (after["query"], after["answers"], after["tools"]) == (before["query"], before["answers"], before["tools"])


def test_xlam_array_is_streamed_one_row_a_line_and_jsonl_on_request(tmp_path: Path, runner: CliRunner) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [results_row(), irrelevance_row(), {**results_row(), "id": "w2"}])
    result = invoke(runner, "export", str(source), "--format", "xlam")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("[{") and lines[0].endswith("},") and lines[2].endswith("}]")
    array = json.loads(result.stdout)
    assert [row["id"] for row in array] == ["w1", "w1-irrelevant", "w2"]
    assert array[1]["answers"] == "[]"
    assert [tool["parameters"] for tool in json.loads(array[0]["tools"])] == [
        {"city": {"type": "str"}, "unit": {"type": "str, optional", "enum": ["c", "f"]}},
        {"zone": {"type": "str", "description": "IANA zone"}},
    ]
    as_lines = invoke(runner, "export", str(source), "--format", "xlam", "--jsonl")
    assert parse_stdout(as_lines.stdout) == array


def test_an_empty_input_gives_an_empty_array(tmp_path: Path, runner: CliRunner) -> None:
    result = invoke(runner, "export", "-", "--format", "xlam", input="")
    assert (result.exit_code, result.stdout) == (0, "[]\n")


@pytest.mark.corpus
def test_bfcl_rows_exported_as_xlam_read_back_and_pass_format_check() -> None:
    for row, record in bfcl_exported("xlam"):
        tools = json.loads(record["tools"])
        assert all(compile_tool(tool, 1).dialect == "xlam" or not tool["parameters"] for tool in tools)
        back = checked({"id": record["id"], "query": record["query"], "answers": record["answers"], "tools": record["tools"]})
        assert back["answers"] == row["answers"]


# --- openai ----------------------------------------------------------------------------


def openai_to_row(record: dict[str, Any]) -> dict[str, Any]:
    """Read an exported OpenAI example back into a row, as a fine-tuning reader would see it."""
    user, assistant = record["messages"][:2]
    calls = [
        {"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"])}
        for call in assistant.get("tool_calls", [])
    ]
    return {"query": user["content"], "answers": calls, "tools": record.get("tools", [])}


@pytest.mark.corpus
def test_bfcl_rows_round_trip_through_openai() -> None:
    for index, (row, record) in enumerate(bfcl_exported("openai")):
        assert set(record) == {"messages", "tools"}
        assert [message["role"] for message in record["messages"]] == ["user", "assistant"]
        tool_calls = record["messages"][1]["tool_calls"]
        assert [call["id"] for call in tool_calls] == [f"call_{index}_{n}" for n in range(len(row["answers"]))]
        assert all(call["type"] == "function" and isinstance(call["function"]["arguments"], str) for call in tool_calls)
        assert all(tool["type"] == "function" and tool["function"]["parameters"]["type"] == "object" for tool in record["tools"])
        back = checked(openai_to_row(record))
        assert back["answers"] == row["answers"]


def test_openai_with_results_adds_one_tool_message_per_call() -> None:
    [record] = export_rows([results_row()], "openai", with_results=True)
    assistant = record["messages"][1]
    assert assistant == {
        "role": "assistant",
        "tool_calls": [
            {"id": "call_0_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {
                "id": "call_0_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"unit": "c", "city": "Oslo"}'},
            },
        ],
    }
    assert record["messages"][2:] == [
        {"role": "tool", "tool_call_id": "call_0_0", "content": '{"temp": 21, "sky": "clear"}'},
        {"role": "tool", "tool_call_id": "call_0_1", "content": "3 degrees, snow"},
    ]
    [without] = export_rows([results_row()], "openai")
    assert len(without["messages"]) == 2


def test_openai_results_of_other_shapes_and_missing_results_are_said() -> None:
    errored = {
        **results_row(),
        "execution_result": [{"name": "get_weather", "ok": False, "error": {"type": "KeyError", "message": "x"}}, [1, 2]],
    }
    missing = {**results_row(), "id": "w2", "execution_result": [{"name": "get_weather", "ok": True, "result": 1}]}
    notes = NoteCollector()
    first, second = export_rows([errored, missing], "openai", with_results=True, on_note=notes)
    assert [message["content"] for message in first["messages"][2:]] == [
        '{"error": {"type": "KeyError", "message": "x"}}',
        "[1, 2]",
    ]
    assert [message["role"] for message in second["messages"]] == ["user", "assistant"]
    assert notes.lines() == [
        "not carried: execution results of rows without one result per call (their tool messages are left out)"
        " (1 time, first at row `w2`)"
    ]


def test_call_ids_count_the_rows_written() -> None:
    rows = [{**results_row(), "id": f"r{n}"} for n in range(3)]
    rows[1]["rejected_by"] = "exec_check"
    records = list(export_rows(rows, "openai"))
    assert [record["messages"][1]["tool_calls"][0]["id"] for record in records] == ["call_0_0", "call_1_0"]


# --- sharegpt --------------------------------------------------------------------------


def sharegpt_to_row(record: dict[str, Any]) -> dict[str, Any]:
    human, answer = record["conversations"]
    assert human["from"] == "human"
    calls: Any = json.loads(answer["value"]) if answer["from"] == "function_call" else []
    return {
        "query": human["value"],
        "answers": calls if isinstance(calls, list) else [calls],
        "tools": json.loads(record["tools"]),
    }


@pytest.mark.corpus
def test_bfcl_rows_round_trip_through_sharegpt() -> None:
    for row, record in bfcl_exported("sharegpt"):
        assert set(record) == {"conversations", "tools"}
        value = json.loads(record["conversations"][1]["value"])
        assert isinstance(value, list) == (len(row["answers"]) > 1)  # one call: an object; parallel calls: a list
        tools = json.loads(record["tools"])
        assert all("properties" in tool["parameters"] for tool in tools)  # LLaMA-Factory reads parameters.properties
        back = checked(sharegpt_to_row(record))
        assert back["answers"] == row["answers"]


def test_sharegpt_of_a_row_with_results_keeps_the_calls_only() -> None:
    [record] = export_rows([results_row()], "sharegpt")
    assert record["conversations"] == [
        {"from": "human", "value": "Weather in Paris and Oslo, please"},
        {
            "from": "function_call",
            "value": '[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
            '{"name": "get_weather", "arguments": {"unit": "c", "city": "Oslo"}}]',
        },
    ]
    assert json.loads(record["tools"])[1] == TIME_AS_JSON_SCHEMA
    assert checked(sharegpt_to_row(record))["answers"] == results_row()["answers"]


# --- irrelevance rows, rejected rows, unusable rows -------------------------------------


def test_irrelevance_rows_become_a_reply_without_calls_in_every_format() -> None:
    [xlam] = export_rows([irrelevance_row()], "xlam")
    assert xlam["answers"] == "[]"
    [openai] = export_rows([irrelevance_row()], "openai", with_results=True)
    assert openai["messages"] == [
        {"role": "user", "content": "What time is it in Lima?"},
        {"role": "assistant", "content": IRRELEVANCE_REPLY},
    ]
    [sharegpt] = export_rows([irrelevance_row()], "sharegpt")
    assert sharegpt["conversations"][1] == {"from": "gpt", "value": IRRELEVANCE_REPLY}
    assert [tool["name"] for tool in json.loads(sharegpt["tools"])] == ["get_weather"]


def test_rejected_and_unusable_rows_are_left_out_and_counted() -> None:
    rows = [
        results_row(),
        {**results_row(), "id": "bad", "rejected_by": "exec_check", "reason": "exception"},
        {"id": "no-query", "tools": [WEATHER], "answers": [{"name": "get_weather", "arguments": {"city": "x"}}]},
        {
            "id": "bad-tool",
            "query": "q",
            "tools": [{"name": "f", "parameters": {"p": {"type": "Frob[int]"}}}],
            "answers": [{"name": "f"}],
        },
        {**irrelevance_row(), "answers": [{"name": "get_weather", "arguments": {"city": "x"}}]},
    ]
    summary = ExportSummary("openai")
    records = list(export_rows(rows, "openai", summary=summary))
    assert len(records) == 1
    assert summary.line() == (
        "export: 1 row written as openai, 1 rejected row left out, "
        "3 rows could not be exported (empty_query 1, unsupported_type 1, unexpected_calls 1)"
    )


def test_note_collector_says_each_kind_once() -> None:
    notes = NoteCollector()
    for where in ("tool `a`", "tool `b`", "tool `c`"):
        notes(Note("`minimum` (xLAM has no way to say it)", where))
    notes(Note("descriptions of nested values", "tool `d`"))
    assert notes.lines() == [
        "not carried: `minimum` (xLAM has no way to say it) (3 times, first at tool `a`)",
        "not carried: descriptions of nested values (1 time, first at tool `d`)",
    ]


# --- the command -----------------------------------------------------------------------


def test_cli_openai_writes_json_lines_and_says_what_it_could_not_carry(tmp_path: Path, runner: CliRunner) -> None:
    bounded = {
        "name": "f",
        "description": "F.",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 9}}},
    }
    bounded_row = {
        "id": "b",
        "query": "f of 3",
        "tools": [bounded],
        "answers": [{"name": "f", "arguments": {"n": 3}}],
        "execution_result": [9],
        **VERIFIED,
    }
    rows = [results_row(), bounded_row] * 2
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = invoke(runner, "export", str(source), "--format", "openai", "--with-results")
    assert result.exit_code == 0
    records = parse_stdout(result.stdout)
    assert len(records) == 4 and len(records[0]["messages"]) == 4
    assert result.stderr == "export: 4 rows written as openai\n"  # JSON Schema can say `maximum`: nothing lost
    as_xlam = invoke(runner, "export", str(source), "--format", "xlam", "--jsonl")
    assert as_xlam.stderr == (
        "warning: not carried: `maximum` (xLAM has no way to say it) (2 times, first at tool `f`, parameter `n`)\n"
        "export: 4 rows written as xlam\n"
    )
    quiet = invoke(runner, "export", str(source), "--format", "xlam", "--jsonl", "-q")
    assert quiet.stderr == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "sharegpt", "--with-results"], "error: `--with-results` does not apply to `--format sharegpt`"),
        (["--format", "yaml"], "error: unknown export format `yaml`"),
        (["--format", "xlam", "missing.jsonl"], "error: input file `missing.jsonl` does not exist"),
    ],
)
def test_cli_errors_exit_2_with_a_hint(runner: CliRunner, arguments: list[str], message: str) -> None:
    result = invoke(runner, "export", *arguments, input="")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == message
    assert result.stderr.splitlines()[2].startswith("hint: ")


def test_cli_writes_to_a_file(tmp_path: Path, runner: CliRunner) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [results_row(), irrelevance_row()])
    result = invoke(runner, "export", str(source), "--format", "sharegpt", "-o", str(tmp_path / "out" / "train.jsonl"))
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "export: 2 rows written as sharegpt (1 irrelevance)\n"
    assert len(read_jsonl(tmp_path / "out" / "train.jsonl")) == 2


# --- training data only from checked rows (issue 23) -------------------------------------


def test_rows_that_never_passed_the_checks_are_refused_unless_unverified(tmp_path: Path, runner: CliRunner) -> None:
    raw = tmp_path / "generated.jsonl"
    made = invoke(runner, "generate", str(PROJECT / "sample_data" / "apis.jsonl"), "-m", "offline", "-n", "6", "-o", str(raw))
    assert made.exit_code == 0, made.stderr
    out = tmp_path / "train.jsonl"
    refused = invoke(runner, "export", str(raw), "--format", "openai", "-o", str(out))
    assert refused.exit_code == 2 and not out.exists()
    assert refused.stderr.splitlines()[0] == (
        f"error: row 1 of `{raw}` has not passed the checks: it has no `keep_row_after_format_check: true`, "
        "`keep_row_after_execution_check: true`, `keep_row_after_semantic_check: true`"
    )
    assert "--unverified" in refused.stderr.splitlines()[2]

    # a hand-made row calling a tool it does not offer, between two verified ones
    stray = {"id": "x", "query": "weather?", "tools": [TIME], "answers": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    source = write_jsonl(tmp_path / "rows.jsonl", [results_row(), stray, results_row()])
    refused = invoke(runner, "export", str(source), "--format", "xlam")
    assert refused.exit_code == 2 and refused.stderr.startswith(f"error: row 2 of `{source}` has not passed the checks")

    given_up = invoke(runner, "export", str(source), "--format", "xlam", "--unverified")
    assert given_up.exit_code == 0 and len(json.loads(given_up.stdout)) == 3
    assert given_up.stderr == "export: 3 rows written as xlam (1 never verified)\n"


def test_a_run_s_dataset_and_its_negatives_export_without_a_flag(tmp_path: Path, runner: CliRunner) -> None:
    dataset = tmp_path / "dataset.jsonl"
    sample = PROJECT / "sample_data"
    ran = invoke(
        runner, "run", str(sample / "apis.jsonl"), "--functions", str(sample / "functions"), "-m", "offline", "-J", "offline",
        "-n", "30", "--seed", "2", "-o", str(dataset), "-q",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    with_negatives = invoke(runner, "negatives", str(dataset), "--rate", "0.5", "--seed", "1", "-q")
    exported = invoke(runner, "export", "--format", "messages", input=with_negatives.stdout)
    assert exported.exit_code == 0, exported.stderr
    assert "never verified" not in exported.stderr and "irrelevance" in exported.stderr
