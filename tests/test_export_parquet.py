"""`export --output-format parquet`: one fixed schema per format, free-form JSON kept as JSON, nothing null-filled."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from apigen_cli.stages import export_parquet
from apigen_cli.stages.chat_template import ChatTemplate
from apigen_cli.stages.export import FORMATS

from .conftest import invoke, parse_stdout, write_jsonl
from .test_chat_template import QWEN25, rows
from .test_export import VERIFIED, WEATHER

JSON_TYPE = pa.json_(pa.string())

# Two tools whose arguments share a name but not a type: a struct inferred over both would fail.
TIMER = {
    "name": "set_timer",
    "description": "Start a timer.",
    "parameters": {
        "type": "object",
        "properties": {"time": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["time"],
    },
}
ALARM = {
    "name": "set_alarm",
    "description": "Set an alarm.",
    "parameters": {"type": "object", "properties": {"time": {"type": "string"}}, "required": ["time"]},
}


def mixed_rows() -> list[dict[str, Any]]:
    return [
        *rows(),
        {
            "id": "17",
            "query": "Timer for 90 seconds",
            "tools": [TIMER, ALARM],
            "answers": [{"name": "set_timer", "arguments": {"time": 90}}],
            **VERIFIED,
        },
        {
            "id": "a",
            "query": "Alarm at seven",
            "tools": [TIMER, ALARM],
            "answers": [{"name": "set_alarm", "arguments": {"time": "07:00"}}],
            **VERIFIED,
        },
    ]


def decoded(value: Any, kind: Any) -> Any:
    """A value read back from Parquet, with its JSON columns decoded, as a JSON-aware reader gives it."""
    if value is None:
        return None
    if isinstance(kind, pa.BaseExtensionType) and kind.extension_name == "arrow.json":
        return json.loads(value)
    if pa.types.is_struct(kind):
        return {kind.field(i).name: decoded(value[kind.field(i).name], kind.field(i).type) for i in range(kind.num_fields)}
    if pa.types.is_list(kind):
        return [decoded(item, kind.value_type) for item in value]
    return value


def read_back(path: Path) -> list[dict[str, Any]]:
    table = pq.read_table(path)
    return [{name: decoded(row[name], table.schema.field(name).type) for name in table.column_names} for row in table.to_pylist()]


def without_nulls(value: Any) -> Any:
    """Drop the keys Parquet fills with null (a message without `tool_calls`, a tool without a description)."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def export_both(tmp_path: Path, runner: CliRunner, fmt: str) -> tuple[list[dict[str, Any]], Path]:
    source = write_jsonl(tmp_path / "rows.jsonl", mixed_rows())
    extra = ["--with-results"] if fmt in ("openai", "messages") else []
    as_json = (
        invoke(runner, "export", str(source), "--format", fmt, "--jsonl", *extra)
        if fmt == "xlam"
        else invoke(runner, "export", str(source), "--format", fmt, *extra)
    )
    assert as_json.exit_code == 0, as_json.stderr
    target = tmp_path / "out" / f"{fmt}.parquet"
    result = invoke(runner, "export", str(source), "--format", fmt, *extra, "--output-format", "parquet", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == as_json.stderr
    return parse_stdout(as_json.stdout), target


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_comes_back_from_parquet_as_its_json_export(tmp_path: Path, runner: CliRunner, fmt: str) -> None:
    records, target = export_both(tmp_path, runner, fmt)
    back = read_back(target)
    if fmt == "xlam":  # ids are a string column; the JSON export writes digits as numbers
        records = [{**record, "id": str(record["id"])} for record in records]
    assert [without_nulls(row) for row in back] == records


def test_arguments_and_parameters_are_json_columns_and_are_never_null_filled(tmp_path: Path, runner: CliRunner) -> None:
    records, target = export_both(tmp_path, runner, "messages")
    schema = pq.read_schema(target)
    message = schema.field("messages").type.value_type
    function = message.field("tool_calls").type.value_type.field("function").type
    assert function.field("arguments").type == JSON_TYPE
    assert schema.field("tools").type.value_type.field("function").type.field("parameters").type == JSON_TYPE
    raw = pq.read_table(target).to_pylist()
    timer = raw[3]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    alarm = raw[4]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert (json.loads(timer), json.loads(alarm)) == ({"time": 90}, {"time": "07:00"})  # no `label: null` merged in
    with pytest.raises(pa.ArrowInvalid):  # what inferring a struct over these rows would do
        pa.Table.from_pylist([records[3]["messages"][1], records[4]["messages"][1]])


def test_rows_read_back_from_parquet_still_render_with_their_calls(tmp_path: Path, runner: CliRunner) -> None:
    _records, target = export_both(tmp_path, runner, "messages")
    chat = ChatTemplate.from_file(str(QWEN25))
    back = read_back(target)  # `tool_calls: None` on plain messages, as a Parquet reader gives them
    assert back[1]["messages"][0]["tool_calls"] is None
    assert [chat.check(row) for row in back] == [None] * len(back)


def test_rows_are_written_a_row_group_at_a_time(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_parquet, "ROW_GROUP", 2)
    source = write_jsonl(tmp_path / "rows.jsonl", [{**row, "id": f"r{n}"} for n, row in enumerate(mixed_rows())])
    target = tmp_path / "train.parquet"
    result = invoke(runner, "export", str(source), "--format", "messages", "--output-format", "parquet", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert pq.ParquetFile(target).metadata.num_row_groups == 3
    assert pq.ParquetFile(target).metadata.num_rows == 5


def test_an_empty_input_gives_a_parquet_file_with_the_schema_and_no_rows(tmp_path: Path, runner: CliRunner) -> None:
    target = tmp_path / "empty.parquet"
    result = invoke(runner, "export", "-", "--format", "sharegpt", "--output-format", "parquet", "-o", str(target), input="")
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(target)
    assert (table.num_rows, table.column_names) == (0, ["conversations", "tools"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--output-format", "parquet"],
            "error: Parquet is not written to standard output (it is binary, and its index comes last)",
        ),
        (
            ["--output-format", "parquet", "--jsonl", "-o", "x.parquet"],
            "error: `--jsonl` does not apply to `--output-format parquet`",
        ),
        (["--output-format", "csv"], "error: unknown output format `csv`"),
    ],
)
def test_cli_parquet_errors(runner: CliRunner, arguments: list[str], message: str) -> None:
    result = invoke(runner, "export", "--format", "xlam", *arguments, input="")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[0] == message
    assert result.stderr.splitlines()[2].startswith("hint: ")


def test_without_pyarrow_the_error_says_how_to_install_it(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    source = write_jsonl(
        tmp_path / "rows.jsonl",
        [{"id": "w", "query": "q", "tools": [WEATHER], "answers": [{"name": "get_weather", "arguments": {"city": "x"}}]}],
    )
    result = invoke(
        runner, "export", str(source), "--format", "xlam", "--output-format", "parquet", "-o", str(tmp_path / "x.parquet")
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: `--output-format parquet` needs pyarrow, which is not installed",
        "",
        "hint: install it with `pip install -e '.[parquet]'`, or leave out `--output-format parquet`",
    ]
    assert not (tmp_path / "x.parquet").exists()


def test_string_arguments_go_to_a_text_column(tmp_path: Path, runner: CliRunner) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", mixed_rows())
    target = tmp_path / "strings.parquet"
    arguments = ["export", str(source), "--format", "messages", "--string-arguments"]
    result = invoke(runner, *arguments, "--output-format", "parquet", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    function = pq.read_schema(target).field("messages").type.value_type.field("tool_calls").type.value_type.field("function").type
    assert function.field("arguments").type == pa.string()
    assert [without_nulls(row) for row in read_back(target)] == parse_stdout(invoke(runner, *arguments).stdout)
