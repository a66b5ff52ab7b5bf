"""`export --format messages`: conversations as transformers and TRL read them, arguments as objects."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from apigen_cli.stages.export import IRRELEVANCE_REPLY, export_rows
from apigen_cli.stages.export_shared import call_id

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl
from .doc_pages import page_with
from .test_export import TIME_AS_JSON_SCHEMA, WEATHER, bfcl_exported, checked, irrelevance_row, results_row


def messages_to_row(record: dict[str, Any]) -> dict[str, Any]:
    """Read an exported conversation back into a row, as a trainer would see it."""
    user = next(message for message in record["messages"] if message["role"] == "user")
    assistant = next(message for message in record["messages"] if message["role"] == "assistant")
    calls = [
        {"name": call["function"]["name"], "arguments": call["function"]["arguments"]} for call in assistant.get("tool_calls", [])
    ]
    return {"query": user["content"], "answers": calls, "tools": record["tools"]}


def test_a_row_with_results_becomes_a_conversation_with_objects_ids_and_a_closing_reply() -> None:
    row = {**results_row(), "final_answer": "Paris is clear at 21; Oslo has snow at 3 degrees."}
    [record] = export_rows([row], "messages", with_results=True, system="You call tools.")
    assert record["messages"] == [
        {"role": "system", "content": "You call tools."},
        {"role": "user", "content": "Weather in Paris and Oslo, please"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c00000000", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {
                    "id": "c00000001",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"unit": "c", "city": "Oslo"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c00000000", "name": "get_weather", "content": '{"temp": 21, "sky": "clear"}'},
        {"role": "tool", "tool_call_id": "c00000001", "name": "get_weather", "content": "3 degrees, snow"},
        {"role": "assistant", "content": "Paris is clear at 21; Oslo has snow at 3 degrees."},
    ]
    assert [tool["function"]["name"] for tool in record["tools"]] == ["get_weather", "get_time"]
    assert record["tools"][1] == {"type": "function", "function": TIME_AS_JSON_SCHEMA}


def test_the_openai_layout_takes_a_system_message_too() -> None:
    [record] = export_rows([results_row()], "openai", system="You call tools.")
    assert record["messages"][:2] == [
        {"role": "system", "content": "You call tools."},
        {"role": "user", "content": "Weather in Paris and Oslo, please"},
    ]
    assert isinstance(record["messages"][2]["tool_calls"][0]["function"]["arguments"], str)


def test_without_results_there_are_no_tool_messages_and_no_closing_reply() -> None:
    row = {**results_row(), "final_answer": "It is sunny."}
    [record] = export_rows([row], "messages")
    assert [message["role"] for message in record["messages"]] == ["user", "assistant"]
    missing = {**row, "execution_result": [row["execution_result"][0]]}  # one result for two calls
    [partial] = export_rows([missing], "messages", with_results=True)
    assert [message["role"] for message in partial["messages"]] == ["user", "assistant"]


def test_irrelevance_rows_are_a_reply_without_calls_and_keep_their_tools() -> None:
    [record] = export_rows([irrelevance_row()], "messages", with_results=True)
    assert record["messages"] == [
        {"role": "user", "content": "What time is it in Lima?"},
        {"role": "assistant", "content": IRRELEVANCE_REPLY},
    ]
    assert [tool["function"]["name"] for tool in record["tools"]] == [WEATHER["name"]]


def test_call_ids_are_nine_letters_and_digits_unique_in_a_conversation() -> None:
    assert [call_id(0, 0), call_id(0, 1), call_id(35, 0), call_id(36, 2), call_id(36**5 - 1, 36**3 - 1)] == [
        "c00000000",
        "c00000001",
        "c0000z000",
        "c00010002",
        "czzzzzzzz",
    ]
    rows = [{**results_row(), "id": f"r{n}"} for n in range(40)]
    for record in export_rows(rows, "messages", with_results=True):
        ids = [call["id"] for call in record["messages"][1]["tool_calls"]]
        assert all(re.fullmatch(r"[0-9a-z]{9}", identifier) for identifier in ids) and len(set(ids)) == len(ids)
        assert [message["tool_call_id"] for message in record["messages"][2:]] == ids


@pytest.mark.corpus
def test_bfcl_rows_round_trip_through_messages_with_their_arguments_as_objects() -> None:
    for row, record in bfcl_exported("messages"):
        assert set(record) == {"messages", "tools"}
        calls = record["messages"][1]["tool_calls"]
        assert [call["function"]["arguments"] for call in calls] == [answer["arguments"] for answer in row["answers"]]
        assert all(isinstance(call["function"]["arguments"], dict) for call in calls)
        assert checked(messages_to_row(record))["answers"] == row["answers"]


def test_cli_writes_conversations_and_refuses_a_system_message_where_there_is_no_chat(tmp_path: Path, runner: CliRunner) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [results_row(), irrelevance_row()])
    result = invoke(runner, "export", str(source), "--format", "messages", "--with-results", "--system", "Be brief.")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "export: 2 rows written as messages (1 irrelevance)\n"
    first, second = parse_stdout(result.stdout)
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert json.loads(first["messages"][3]["content"]) == {"temp": 21, "sky": "clear"}
    assert second["messages"][-1]["content"] == IRRELEVANCE_REPLY
    refused = invoke(runner, "export", str(source), "--format", "xlam", "--system", "Be brief.")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.splitlines()[0] == "error: `--system` does not apply to `--format xlam`"
    assert refused.stderr.splitlines()[2] == "hint: use it with `--format messages` or `--format openai`"


# --- the README's examples, run as written ------------------------------------------------


def _readme_export_commands() -> list[str]:
    section = page_with("### `apigen export`").split("### `apigen export`", 1)[1].split("\n### ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("apigen ")]


def test_the_readme_export_examples_run_as_written(tmp_path: Path) -> None:
    commands = _readme_export_commands()
    assert any("--render-check" in command for command in commands) and any("parquet" in command for command in commands)
    shim = tmp_path / "bin" / "apigen"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m apigen_cli \"$@\"\n")
    shim.chmod(0o755)
    cities = ["Paris", "Oslo", "Lima", "Quito", "Perth", "Accra"]
    dataset = [
        {**results_row(), "id": f"w{n}", "query": f"Weather in {city} and Oslo, please", "final_answer": f"{city}: clear."}
        for n, city in enumerate(cities)
    ]
    write_jsonl(tmp_path / "dataset.jsonl", dataset)
    shutil.copy(PROJECT / "tests" / "fixtures" / "chat_templates" / "Qwen2.5-7B-Instruct.jinja", tmp_path)
    environment = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=environment)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stderr.splitlines()[-1].startswith(("export: ", "render check: ")), (command, done.stderr)
    assert len(json.loads((tmp_path / "xlam_dataset.json").read_text())) == len(cities)
    assert [record["messages"][-1]["content"] for record in read_jsonl(tmp_path / "train.jsonl")] == [
        f"{city}: clear." for city in cities
    ]
    assert pq.read_table(tmp_path / "data" / "train-00000-of-00001.parquet").num_rows == len(cities)
    assert len(read_jsonl(tmp_path / "sharegpt.jsonl")) >= len(cities)
