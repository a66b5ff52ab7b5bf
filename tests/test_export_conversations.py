"""`apigen export` on multi-turn conversation rows: messages, openai and sharegpt (APIGen-MT-5k's shape), per turn.

The rows are the sample store's conversations passed through the real `trajectory-check` (its
kept row carries per-call labels backed by state), the tools the environment's library that
the real `library from-python --class` writes. Each export runs through the real CLI.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.stages.export import export_rows

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl
from .doc_pages import page_with
from .test_export import VERIFIED
from .test_export_parquet import read_back, without_nulls

STORE = PROJECT / "sample_data" / "store"
TEMPLATES = PROJECT / "tests" / "fixtures" / "chat_templates"
STORE_TOOLS = 14


def apigen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "apigen_cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with `checked.jsonl` (every row, the rejected ones flagged), `verified.jsonl` and `store_tools.jsonl`."""
    folder = tmp_path_factory.mktemp("store")
    checked = apigen(
        "trajectory-check",
        str(STORE / "conversations.jsonl"),
        "--functions",
        str(STORE),
        "--keep-rejected",
        "-o",
        "checked.jsonl",
        cwd=folder,
    )
    assert checked.returncode == 0, checked.stderr
    write_jsonl(folder / "verified.jsonl", [row for row in read_jsonl(folder / "checked.jsonl") if "rejected_by" not in row])
    library = apigen("library", "from-python", str(STORE), "--class", "OnlineStore", "-o", "store_tools.jsonl", cwd=folder)
    assert library.returncode == 0, library.stderr
    return folder


def verified_row(store: Path) -> dict[str, Any]:
    [row] = read_jsonl(store / "verified.jsonl")
    return row


def export(runner: CliRunner, store: Path, *args: str, source: str = "verified.jsonl") -> Any:
    return invoke(runner, "export", str(store / source), "--tools", str(store / "store_tools.jsonl"), *args)


def test_a_verified_conversation_is_a_trl_conversation_with_object_arguments_and_the_environments_tools(
    runner: CliRunner, store: Path
) -> None:
    row = verified_row(store)
    result = export(runner, store, "--format", "messages")
    assert result.exit_code == 0, result.stderr
    [record] = parse_stdout(result.stdout)
    messages = record["messages"]
    assert [message["role"] for message in messages] == [message["role"] for message in row["messages"]]
    assert messages[0] == row["messages"][0]  # the policy, as the agent was given it
    calling = [message for message in messages if message.get("tool_calls")]
    assert [call["function"] for message in calling for call in message["tool_calls"]] == [
        {"name": "find_user_by_email", "arguments": {"email": "kenji.watanabe@example.net"}},
        {"name": "get_order_details", "arguments": {"order_id": "ORD-327821"}},
        {"name": "cancel_pending_order", "arguments": {"order_id": "ORD-327821", "reason": "no longer needed"}},
    ]
    assert all(message["content"] == "" for message in calling)
    ids = [call["id"] for message in calling for call in message["tool_calls"]]
    assert all(len(identifier) == 9 and identifier.isalnum() for identifier in ids) and len(set(ids)) == 3
    tool_messages = [message for message in messages if message["role"] == "tool"]
    assert [(message["tool_call_id"], message["name"]) for message in tool_messages] == list(
        zip(ids, ["find_user_by_email", "get_order_details", "cancel_pending_order"], strict=True)
    )
    assert tool_messages[0]["content"] == "C-11167"
    assert len(record["tools"]) == STORE_TOOLS
    assert {tool["type"] for tool in record["tools"]} == {"function"}
    assert all("class" not in tool["function"] and "category" not in tool["function"] for tool in record["tools"])
    assert record["id"] == "store-cancel-earbuds"
    assert result.stderr.splitlines()[-1] == "export: 1 row written as messages (1 conversation)"


def test_per_call_labels_travel_with_the_row_naming_the_message_that_made_each_call(runner: CliRunner, store: Path) -> None:
    row = verified_row(store)
    [record] = parse_stdout(export(runner, store, "--format", "messages").stdout)
    labels = record["call_labels"]
    assert [{key: value for key, value in label.items() if key != "turn"} for label in labels] == row["trajectory_check"]["calls"]
    for label in labels:
        message = record["messages"][label["turn"]]
        assert message["role"] == "assistant"
        assert label["name"] in [call["function"]["name"] for call in message["tool_calls"]]
    assert labels[-1]["changed_state"] is True and labels[-1]["change_kept"] is True


def test_the_openai_layout_writes_arguments_as_strings_and_call_ids_per_row(runner: CliRunner, store: Path) -> None:
    [record] = parse_stdout(export(runner, store, "--format", "openai").stdout)
    calls = [call for message in record["messages"] for call in message.get("tool_calls", [])]
    assert [call["id"] for call in calls] == ["call_0_0", "call_0_1", "call_0_2"]
    assert json.loads(calls[2]["function"]["arguments"]) == {"order_id": "ORD-327821", "reason": "no longer needed"}
    assert [message["tool_call_id"] for message in record["messages"] if message["role"] == "tool"] == [
        "call_0_0",
        "call_0_1",
        "call_0_2",
    ]
    assert all("weight" not in message for message in record["messages"])


def test_sharegpt_is_apigen_mt_5ks_shape_with_the_policy_as_system_and_tools_as_a_json_string(
    runner: CliRunner, store: Path
) -> None:
    row = verified_row(store)
    result = export(runner, store, "--format", "sharegpt")
    assert result.exit_code == 0, result.stderr
    [record] = parse_stdout(result.stdout)
    assert set(record) == {"id", "conversations", "tools", "system", "call_labels"}
    assert record["system"] == row["messages"][0]["content"]
    turns = record["conversations"]
    assert [turn["from"] for turn in turns] == [
        "human", "gpt", "human", "function_call", "observation", "gpt", "human", "function_call", "observation",
        "gpt", "human", "function_call", "observation", "gpt",
    ]  # fmt: skip
    assert json.loads(turns[3]["value"]) == {"name": "find_user_by_email", "arguments": {"email": "kenji.watanabe@example.net"}}
    assert turns[4]["value"] == "C-11167"
    assert turns[-1]["value"].startswith("Done: order ORD-327821 is cancelled")
    tools = json.loads(record["tools"])
    assert len(tools) == STORE_TOOLS and set(tools[0]) == {"name", "description", "parameters"}
    assert [turns[label["turn"]]["from"] for label in record["call_labels"]] == ["function_call"] * 3


def test_a_conversation_row_is_verified_by_trajectory_check_and_nothing_else(runner: CliRunner, store: Path) -> None:
    raw = invoke(
        runner, "export", str(STORE / "conversations.jsonl"), "--tools", str(store / "store_tools.jsonl"), "--format", "messages"
    )
    assert raw.exit_code == 2 and raw.stdout == ""
    lines = raw.stderr.splitlines()
    assert lines[0] == (
        f"error: row 1 of `{STORE / 'conversations.jsonl'}` has not passed the checks: "
        "it has no `keep_row_after_trajectory_check: true`"
    )
    assert lines[2].startswith("hint: export the conversations `apigen trajectory-check` kept")
    unverified = invoke(
        runner,
        "export",
        str(STORE / "conversations.jsonl"),
        "--tools",
        str(store / "store_tools.jsonl"),
        "--format",
        "messages",
        "--unverified",
    )
    assert unverified.exit_code == 0, unverified.stderr
    assert len(parse_stdout(unverified.stdout)) == 4
    assert all("call_labels" not in record for record in parse_stdout(unverified.stdout))  # no labels without the check
    assert "(4 conversations, 4 never verified)" in unverified.stderr.splitlines()[-1]
    flagged = export(runner, store, "--format", "sharegpt", source="checked.jsonl")
    assert flagged.exit_code == 0, flagged.stderr
    assert [record["id"] for record in parse_stdout(flagged.stdout)] == ["store-cancel-earbuds"]
    assert flagged.stderr.splitlines()[-1].endswith(", 3 rejected rows left out")


def test_tools_come_from_the_row_or_from_the_library_and_are_never_missing(
    runner: CliRunner, store: Path, tmp_path: Path
) -> None:
    row = verified_row(store)
    bare = write_jsonl(tmp_path / "bare.jsonl", [row])
    missing = invoke(runner, "export", str(bare), "--format", "messages")
    assert missing.exit_code == 2 and missing.stdout == ""
    assert missing.stderr.splitlines()[0] == (
        f"error: row 1 of `{bare}` is a conversation without `tools`, and no `--tools` names the environment's library"
    )
    assert "`--tools FILE`" in missing.stderr.splitlines()[2]
    own_tools = [{"name": "find_user_by_email", "description": "Find a user.", "parameters": {"email": {"type": "str"}}}]
    with_tools = write_jsonl(tmp_path / "with_tools.jsonl", [{**row, "tools": own_tools}])
    result = invoke(runner, "export", str(with_tools), "--format", "messages")
    assert result.exit_code == 0, result.stderr  # the row's tools win; calling a tool it does not offer is not training data
    assert parse_stdout(result.stdout) == []
    assert result.stderr.splitlines()[-1].endswith("1 row could not be exported (unknown_tool 1)")


def test_xlam_holds_single_turn_rows_only(runner: CliRunner, store: Path) -> None:
    result = export(runner, store, "--format", "xlam")
    assert result.exit_code == 2 and result.stdout == ""
    assert (
        result.stderr.splitlines()[0]
        == f"error: row 1 of `{store / 'verified.jsonl'}` is a conversation, which `--format xlam` cannot hold"
    )
    assert result.stderr.splitlines()[2] == "hint: pass `--format messages`, `--format openai` or `--format sharegpt`"


def conversation(*messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "conv",
        "environment": {"OnlineStore": {}},
        "messages": list(messages),
        "actions": [],
        "keep_row_after_trajectory_check": True,
    }


def calling(call_id: str, name: str, content: str | None = None, **arguments: Any) -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return {"role": "assistant", "content": content, "tool_calls": [call]}


def test_sharegpt_ends_on_the_agents_turn_and_says_what_it_left_out(runner: CliRunner, store: Path, tmp_path: Path) -> None:
    row = conversation(
        {"role": "user", "content": "I want a human."},
        calling("t1", "transfer_to_human_agents", "Let me transfer you.", summary="wants a human"),
        {"role": "tool", "tool_call_id": "t1", "content": "Transfer successful"},
        {"role": "user", "content": "###STOP###"},
    )
    source = write_jsonl(tmp_path / "transfer.jsonl", [row])
    result = invoke(runner, "export", str(source), "--tools", str(store / "store_tools.jsonl"), "--format", "sharegpt")
    assert result.exit_code == 0, result.stderr
    [record] = parse_stdout(result.stdout)
    assert [turn["from"] for turn in record["conversations"]] == ["human", "function_call"]
    assert "system" not in record
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("the text of an assistant turn that calls" in line for line in warnings)
    assert any("turns after the agent's last" in line for line in warnings)


def test_sharegpt_refuses_a_conversation_whose_turns_do_not_alternate(runner: CliRunner, store: Path, tmp_path: Path) -> None:
    row = conversation(
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi."},
        {"role": "assistant", "content": "How can I help?"},
    )
    source = write_jsonl(tmp_path / "twice.jsonl", [row])
    result = invoke(runner, "export", str(source), "--tools", str(store / "store_tools.jsonl"), "--format", "sharegpt")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith("1 row could not be exported (not_alternating 1)")
    messages = invoke(runner, "export", str(source), "--tools", str(store / "store_tools.jsonl"), "--format", "messages")
    assert len(parse_stdout(messages.stdout)) == 1  # a chat template takes two replies in a row


@pytest.mark.parametrize("template", ["Qwen2.5-7B-Instruct.jinja", "Qwen3-0.6B.jinja", "Mistral-Nemo-Instruct-2407.jinja"])
def test_a_conversation_renders_with_published_templates_and_its_calls_read_back(
    runner: CliRunner, store: Path, template: str
) -> None:
    result = export(runner, store, "--format", "messages", "--render-check", str(TEMPLATES / template))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"render check: 1 rows render with `{template}` and their calls read back"


def test_the_render_check_catches_a_conversation_quoted_twice(runner: CliRunner, store: Path) -> None:
    result = export(runner, store, "--format", "openai", "--render-check", str(TEMPLATES / "Qwen2.5-7B-Instruct.jinja"))
    assert result.exit_code == 2
    assert "arguments_as_string 1" in result.stderr.splitlines()[0]


# --- one sample per assistant turn ---------------------------------------------------------------


def test_per_turn_writes_trls_prompt_and_completion_for_each_assistant_turn(runner: CliRunner, store: Path) -> None:
    [whole] = parse_stdout(export(runner, store, "--format", "messages").stdout)
    result = export(runner, store, "--format", "messages", "--per-turn")
    assert result.exit_code == 0, result.stderr
    samples = parse_stdout(result.stdout)
    replies = [turn for turn, message in enumerate(whole["messages"]) if message["role"] == "assistant"]
    assert [sample["turn"] for sample in samples] == replies and len(replies) == 7
    for sample in samples:
        assert sample["id"] == "store-cancel-earbuds" and sample["tools"] == whole["tools"]
        assert sample["prompt"] == whole["messages"][: sample["turn"]]
        assert sample["completion"] == [whole["messages"][sample["turn"]]]
        assert sample["call_labels"] == [label for label in whole["call_labels"] if label["turn"] == sample["turn"]]
    assert [len(sample["call_labels"]) for sample in samples] == [0, 1, 0, 1, 0, 1, 0]
    assert result.stderr.splitlines()[-1] == (
        "export: 1 row written as messages (1 conversation, 7 samples, one per assistant turn)"
    )


def test_per_turn_in_the_openai_layout_weighs_only_the_last_reply(runner: CliRunner, store: Path) -> None:
    samples = parse_stdout(export(runner, store, "--format", "openai", "--per-turn").stdout)
    last = samples[-1]["messages"]
    assert [message.get("weight") for message in last if message["role"] == "assistant"] == [0] * 6 + [1]
    assert all("weight" not in message for message in last if message["role"] != "assistant")


def test_per_turn_in_sharegpt_cuts_the_turns_after_each_agent_turn(runner: CliRunner, store: Path) -> None:
    [whole] = parse_stdout(export(runner, store, "--format", "sharegpt").stdout)
    samples = parse_stdout(export(runner, store, "--format", "sharegpt", "--per-turn").stdout)
    assert [sample["turn"] for sample in samples] == list(range(1, len(whole["conversations"]), 2))
    assert all(sample["conversations"] == whole["conversations"][: sample["turn"] + 1] for sample in samples)
    assert all(sample["system"] == whole["system"] for sample in samples)


def test_per_turn_samples_pass_the_render_check(runner: CliRunner, store: Path) -> None:
    template = TEMPLATES / "Qwen2.5-7B-Instruct.jinja"
    result = export(runner, store, "--format", "messages", "--per-turn", "--render-check", str(template))
    assert result.exit_code == 0, result.stderr
    assert (
        result.stderr.splitlines()[-1] == "render check: 7 rows render with `Qwen2.5-7B-Instruct.jinja` and their calls read back"
    )


def test_per_turn_does_not_apply_to_xlam(runner: CliRunner, store: Path) -> None:
    result = export(runner, store, "--format", "xlam", "--per-turn")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: `--per-turn` does not apply to `--format xlam`"


def test_a_conversations_own_system_message_is_kept_over_system_and_said(runner: CliRunner, store: Path) -> None:
    row = verified_row(store)
    result = export(runner, store, "--format", "messages", "--system", "You are terse.")
    [record] = parse_stdout(result.stdout)
    assert record["messages"][0] == row["messages"][0]
    assert [message["role"] for message in record["messages"]].count("system") == 1
    assert "warning: not carried: `--system` for conversations that open with their own system message" in result.stderr


def test_deepseeks_template_takes_a_conversation_with_string_arguments(runner: CliRunner, store: Path) -> None:
    template = str(TEMPLATES / "DeepSeek-V3.1.jinja")
    objects = export(runner, store, "--format", "messages", "--render-check", template)
    assert objects.exit_code == 2 and "wants_string_arguments" in objects.stderr
    strings = export(runner, store, "--format", "messages", "--string-arguments", "--render-check", template)
    assert strings.exit_code == 0, strings.stderr


@pytest.mark.parametrize(
    ("fmt", "flags"),
    [
        ("messages", ()),
        ("messages", ("--per-turn",)),
        ("openai", ("--per-turn",)),
        ("sharegpt", ()),
        ("messages", ("--string-arguments",)),
    ],
)
def test_a_conversation_comes_back_from_parquet_as_its_json_export(
    runner: CliRunner, store: Path, tmp_path: Path, fmt: str, flags: tuple[str, ...]
) -> None:
    as_json = export(runner, store, "--format", fmt, *flags)
    out = tmp_path / "train.parquet"
    result = export(runner, store, "--format", fmt, *flags, "--output-format", "parquet", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == as_json.stderr
    back = read_back(out)  # its JSON columns decoded
    assert [without_nulls(row) for row in back] == parse_stdout(as_json.stdout)


def test_parquet_refuses_a_conversation_after_single_turn_rows(runner: CliRunner, store: Path, tmp_path: Path) -> None:
    single = {
        "id": "w1",
        "query": "Find the user kenji.watanabe@example.net",
        "answers": [{"name": "find_user_by_email", "arguments": {"email": "kenji.watanabe@example.net"}}],
        "tools": [{"name": "find_user_by_email", "description": "Find a user.", "parameters": {"email": {"type": "str"}}}],
        **VERIFIED,
    }
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [single, verified_row(store)])
    out = tmp_path / "train.parquet"
    result = invoke(
        runner, "export", str(mixed), "--tools", str(store / "store_tools.jsonl"), "--format", "messages",
        "--output-format", "parquet", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.splitlines()[0].startswith(
        "error: exported record 2 does not fit the Parquet columns of the records before it: "
        "the record has keys the Parquet schema does not hold: ['call_labels', 'id']"
    )
    assert result.stderr.splitlines()[2] == "hint: export single-turn rows and conversations to separate files"


# --- the manual's example, run as written ----------------------------------------------------------

HEADING = "### Conversations: multi-turn rows"


def test_the_manuals_conversation_examples_run_as_written_and_say_what_they_show(tmp_path: Path) -> None:
    section = page_with(HEADING).split(HEADING, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    (tmp_path / "sample_data").symlink_to(PROJECT / "sample_data")
    shutil.copy(TEMPLATES / "Qwen2.5-7B-Instruct.jinja", tmp_path)
    shim = tmp_path / "bin" / "apigen"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m apigen_cli \"$@\"\n")
    shim.chmod(0o755)
    environment = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    lines = block.splitlines()
    commands = [number for number, line in enumerate(lines) if line.startswith("apigen ")]
    assert len(commands) == 6
    for number in commands:
        done = subprocess.run(
            lines[number], shell=True, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=environment
        )
        assert done.returncode == 0, (lines[number], done.stderr)
        shown = [line[2:] for line in itertools.takewhile(lambda line: line.startswith("# "), lines[number + 1 :])]
        if shown:
            assert done.stderr.splitlines()[-len(shown) :] == shown, lines[number]
    [record] = read_jsonl(tmp_path / "conversations.jsonl")
    labels = page_with(HEADING).split('"call_labels": ', 1)[1].split("\n```", 1)[0]
    assert record["call_labels"] == json.loads(labels)
    [apigen_mt] = read_jsonl(tmp_path / "apigen_mt.jsonl")
    assert set(apigen_mt) >= {"conversations", "system", "tools"}
    assert len(read_jsonl(tmp_path / "turns.jsonl")) == 7
    pairs = read_jsonl(tmp_path / "pairs.jsonl")
    shown = json.loads(page_with(HEADING).split("**`--format preference`**", 1)[1].split("```json\n", 1)[1].split("\n```", 1)[0])
    assert {key: pairs[0][key] for key in ("blueprint_id", "chosen_id", "rejected_id", "rejected_reason")} == {
        key: shown[key] for key in ("blueprint_id", "chosen_id", "rejected_id", "rejected_reason")
    }
    assert pairs[0]["chosen"][0]["tool_calls"] == shown["chosen"][0]["tool_calls"]
    assert pairs[0]["rejected"][0]["tool_calls"] == shown["rejected"][0]["tool_calls"]
    assert pairs[0]["prompt"][1]["content"].startswith(shown["prompt"][1]["content"].removesuffix(" ..."))
    assert len(pairs) == 3


def test_per_turn_samples_are_made_one_at_a_time_so_a_long_chat_stays_small_in_memory() -> None:
    """A chat of n replies gives n samples of up to n messages: held together they grow as n squared."""
    replies = 3000
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Hello"}]
    for number in range(replies):
        messages += [{"role": "assistant", "content": f"Reply {number}"}, {"role": "user", "content": "And then?"}]
    row = {**conversation(*messages), "tools": []}
    samples = export_rows([row], "messages", per_turn=True)
    tracemalloc.start()
    try:
        count = sum(1 for _sample in samples)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == replies
    assert peak < 8_000_000, peak  # all samples held at once: over 70 MB of list slots alone


def test_a_simulated_row_brings_its_own_openai_tools_and_its_users_stop_line(
    runner: CliRunner, store: Path, tmp_path: Path
) -> None:
    """As `simulate` writes a row: the agent's tools in OpenAI's layout, the user's closing `###STOP###`."""
    library = [json.loads(line) for line in (store / "store_tools.jsonl").read_text().splitlines()]
    offered: list[dict[str, Any]] = [
        {"type": "function", "function": {key: tool[key] for key in ("name", "description", "parameters")}} for tool in library
    ]
    row = verified_row(store)
    simulated = {**row, "tools": offered, "messages": [*row["messages"], {"role": "user", "content": "###STOP###"}]}
    source = write_jsonl(tmp_path / "simulated.jsonl", [simulated])
    messages = invoke(runner, "export", str(source), "--format", "messages")
    assert messages.exit_code == 0, messages.stderr
    [record] = parse_stdout(messages.stdout)
    assert record["tools"] == offered
    assert record["messages"][-1] == {"role": "user", "content": "###STOP###"}  # a template takes it; TRL learns no user turn
    sharegpt = invoke(runner, "export", str(source), "--format", "sharegpt")
    [turns] = parse_stdout(sharegpt.stdout)
    assert turns["conversations"][-1]["from"] == "gpt"
    assert [tool["name"] for tool in json.loads(turns["tools"])] == [tool["function"]["name"] for tool in offered]


def _with_first_call_arguments(row: dict[str, Any], arguments: str) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(row))
    call = next(call for message in changed["messages"] for call in message.get("tool_calls") or ())
    call["function"]["arguments"] = arguments
    return changed


@pytest.mark.parametrize("fmt", ["messages", "openai", "sharegpt"])
def test_arguments_nested_too_deep_in_a_json_string_are_refused_not_exported(runner: CliRunner, store: Path, fmt: str) -> None:
    """A string hides its depth from the row's check as it is read: read as the object it holds, it is held to the same limit.

    Exported as an object, it made a line apigen itself refused to read back (`too_deep`).
    """
    nested = '{"email": "x@example.org", "a": ' + '{"a": ' * 300 + "1" + "}" * 300 + "}"
    source = write_jsonl(store / f"deep-{fmt}.jsonl", [_with_first_call_arguments(verified_row(store), nested)])
    result = export(runner, store, "--format", fmt, source=source.name)
    assert result.exit_code == 0, result.stderr
    assert parse_stdout(result.stdout) == []
    assert "1 row could not be exported (too_deep 1)" in result.stderr.splitlines()[-1]


def test_trajectory_check_refuses_arguments_nested_too_deep_in_a_json_string(store: Path) -> None:
    nested = '{"email": "x@example.org", "a": ' + '{"a": ' * 300 + "1" + "}" * 300 + "}"
    source = write_jsonl(store / "deep-check.jsonl", [_with_first_call_arguments(verified_row(store), nested)])
    checked = apigen("trajectory-check", str(source), "--functions", str(STORE), "--rejects", "deep-rejects.jsonl", cwd=store)
    assert checked.returncode == 0, checked.stderr
    [rejected] = read_jsonl(store / "deep-rejects.jsonl")
    assert rejected["reason"] == "too_deep", rejected["reason_detail"]
    assert "tool call 1 `find_user_by_email`" in rejected["reason_detail"]
