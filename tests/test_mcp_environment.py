"""An MCP server as the multi-turn environment: a fresh server process per replay, the state read by a
state tool or, without one, the gold's outputs compared. A real stateful server (tests/mcp_todo_server.py,
written with the SDK, its todos kept in memory), the real CLI."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.execution.mcp import McpOptions, McpServer
from apigen_cli.execution.mcp_environment import McpEnvironment, McpEnvironmentOptions
from apigen_cli.execution.sessions import SessionOutcome, SessionRequest

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl
from .doc_pages import page_with
from .test_hostile_processes import gone_soon

TODO_SERVER = f"todo={sys.executable} {Path(__file__).with_name('mcp_todo_server.py')}"


def exchange(call_id: str, name: str, result: Any, **arguments: Any) -> list[dict[str, Any]]:
    """An assistant's call and the tool message answering it."""
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)},
    ]


def todo_row(
    row_id: str, *calls: tuple[str, dict[str, Any], Any], told: str = "Done: milk is on the list, and done."
) -> dict[str, Any]:
    """A conversation that should add `milk` and mark it done, making ``calls`` (name, arguments, what the tool said)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Put milk on my list and tick it off."}]
    for number, (name, arguments, result) in enumerate(calls):
        messages += exchange(f"{row_id}-{number}", name, result, **arguments)
    messages.append({"role": "assistant", "content": told})
    return {
        "id": row_id,
        "messages": messages,
        "actions": [{"name": "add_todo", "arguments": {"title": "milk"}}, {"name": "complete_todo", "arguments": {"todo_id": 1}}],
        "outputs": ["milk"],
    }


MILK = {"id": 1, "title": "milk", "done": False}
MILK_DONE = {"id": 1, "title": "milk", "done": True}
RIGHT = (("add_todo", {"title": "milk"}, MILK), ("complete_todo", {"todo_id": 1}, MILK_DONE))


def check(runner: CliRunner, tmp_path: Path, rows: list[dict[str, Any]], *flags: str) -> tuple[Any, list[dict[str, Any]]]:
    conversations, rejects = tmp_path / "conversations.jsonl", tmp_path / "failed.jsonl"
    write_jsonl(conversations, rows)
    result = invoke(
        runner, "trajectory-check", str(conversations), "--mcp", TODO_SERVER, "--rejects", str(rejects), "--workers", "2", *flags
    )
    return result, read_jsonl(rejects) if rejects.exists() else []


def test_each_conversation_gets_a_fresh_server_so_none_sees_another_s_writes(runner: CliRunner, tmp_path: Path) -> None:
    # Three conversations each add milk and were told id 1; on a server shared with the gold's replay or with
    # another conversation, the second add would get id 2 and its tool message would no longer be what the server says.
    rows = [todo_row(f"milk-{n}", *RIGHT) for n in range(3)]
    result, rejects = check(runner, tmp_path, rows)
    assert result.exit_code == 0, result.stderr
    kept = parse_stdout(result.stdout)
    assert [row["id"] for row in kept] == ["milk-0", "milk-1", "milk-2"] and rejects == []
    assert kept[0]["trajectory_check"]["checks"] == {
        "state": "not_readable",
        "gold_outputs": "passed",
        "told": "passed",
        "tool_messages": "passed",
    }
    assert "trajectory-check: 3 passed, 0 rejected" in result.stderr


def test_without_a_state_tool_the_gold_s_outputs_decide(runner: CliRunner, tmp_path: Path) -> None:
    rows = [
        todo_row("right", *RIGHT),
        todo_row("never-ticked", RIGHT[0]),
        # eggs first: milk gets id 2, so the gold's `add_todo(milk)` answers otherwise than on the gold's replay
        todo_row(
            "other-state",
            ("add_todo", {"title": "eggs"}, {**MILK, "title": "eggs"}),
            ("add_todo", {"title": "milk"}, {**MILK, "id": 2}),
            ("complete_todo", {"todo_id": 1}, {**MILK_DONE, "title": "eggs"}),
        ),
        todo_row("untold", *RIGHT, told="All set."),
    ]
    result, rejects = check(runner, tmp_path, rows)
    assert result.exit_code == 0, result.stderr
    assert [row["id"] for row in parse_stdout(result.stdout)] == ["right"]
    reasons = {row["id"]: (row["reason"], row["trajectory_check"]["checks"]) for row in rejects}
    assert reasons["never-ticked"] == ("gold_call_missing", {"state": "not_readable", "gold_outputs": "failed"})
    assert reasons["other-state"][0] == "gold_output_mismatch"
    assert reasons["untold"] == (
        "missing_output",
        {"state": "not_readable", "gold_outputs": "passed", "told": "failed"},
    )
    other = next(row for row in rejects if row["id"] == "other-state")
    assert "gold action 1 `add_todo`" in other["reason_detail"] and "as call 2 of the conversation's" in other["reason_detail"]


def test_a_state_tool_reads_the_state_and_labels_the_calls(runner: CliRunner, tmp_path: Path) -> None:
    rows = [
        todo_row("right", *RIGHT),
        todo_row("never-ticked", RIGHT[0]),
        # a detour the gold's outputs would refuse, and the state accepts: the same todo list in the end
        todo_row("looked-first", ("list_todos", {}, {"todos": []}), *RIGHT),
    ]
    result, rejects = check(runner, tmp_path, rows, "--state-tool", "todo_state")
    assert result.exit_code == 0, result.stderr
    kept = {row["id"]: row for row in parse_stdout(result.stdout)}
    assert sorted(kept) == ["looked-first", "right"]
    verdict = kept["right"]["trajectory_check"]
    assert verdict["checks"] == {"state": "passed", "gold_outputs": "not_needed", "told": "passed", "tool_messages": "passed"}
    assert [(call["name"], call["changed_state"]) for call in verdict["calls"]] == [("add_todo", True), ("complete_todo", True)]
    assert [(call["name"], call["changed_state"]) for call in kept["looked-first"]["trajectory_check"]["calls"]][0] == (
        "list_todos",
        False,
    )
    (failed,) = rejects
    assert failed["reason"] == "state_mismatch"
    assert 'todo.todos["1"]["done"]: true -> false' in failed["reason_detail"]


def test_rows_need_no_environment_and_one_given_is_not_loaded(runner: CliRunner, tmp_path: Path) -> None:
    result, rejects = check(runner, tmp_path, [{**todo_row("named", *RIGHT), "environment": {"Todo": {"todos": []}}}])
    assert result.exit_code == 0 and rejects == [], result.stderr
    assert parse_stdout(result.stdout)[0]["id"] == "named"


def test_servers_are_torn_down_after_every_session_even_one_that_hangs(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    hanging = todo_row("hangs", ("hang", {"seconds": 600}, "awake"), *RIGHT)
    conversations = tmp_path / "conversations.jsonl"
    write_jsonl(conversations, [todo_row("right", *RIGHT), hanging])
    command = [sys.executable, "-m", "apigen_cli", "trajectory-check", str(conversations), "--keep-rejected"]
    command += ["--mcp", f"{TODO_SERVER} --pids {pids}", "--exec-timeout", "1", "--state-tool", "todo_state"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert done.returncode == 0, done.stderr
    verdicts = {row["id"]: row.get("reason") for row in map(json.loads, done.stdout.splitlines())}
    assert verdicts == {"right": None, "hangs": "timeout"}
    started = [int(pid) for path in pids.iterdir() for pid in path.read_text().split()]
    assert len(started) == 2 * 5  # the check's look at the tools, and two replays per row: a server and its child each
    assert [pid for pid in started if _alive(pid)] == []


def _alive(pid: int) -> bool:
    """Running, or stopped: a zombie or a pid no longer there is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_an_environment_that_cannot_be_one_is_refused_before_any_row(runner: CliRunner, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    write_jsonl(rows, [todo_row("right", *RIGHT)])
    both = invoke(
        runner, "trajectory-check", str(rows), "--mcp", TODO_SERVER, "--functions", str(PROJECT / "sample_data" / "store")
    )
    assert both.exit_code == 2
    assert "error: the environment is given twice" in both.stderr
    http = invoke(runner, "trajectory-check", str(rows), "--mcp-url", "todo=http://127.0.0.1:9/mcp")
    assert http.exit_code == 2 and "a server reached over HTTP is shared" in http.stderr
    unknown = invoke(runner, "trajectory-check", str(rows), "--mcp", TODO_SERVER, "--state-tool", "dump")
    assert unknown.exit_code == 2
    assert "error: the MCP server `todo` has no tool `dump` to read its state" in unknown.stderr
    neither = invoke(runner, "trajectory-check", str(rows))
    assert neither.exit_code == 2
    assert "neither `--functions` nor `--mcp` names one" in neither.stderr
    broken = invoke(
        runner,
        "trajectory-check",
        str(rows),
        "--mcp",
        f"{sys.executable} {PROJECT / 'tests' / 'mcp_test_server.py'} --fail-start",
    )
    assert broken.exit_code == 2 and "could not start" in broken.stderr and "cannot start: no configuration" in broken.stderr
    assert os.environ.get("APIGEN_FUNCTIONS") is None


BLUEPRINTS = [
    {
        "id": "milk",
        "instruction": "You want milk on your todo list, ticked off as done.",
        "actions": [{"name": "add_todo", "arguments": {"title": "milk"}}, {"name": "complete_todo", "arguments": {"todo_id": 1}}],
        "outputs": ["milk"],
    },
    # the first blueprint's conversations added milk as todo 1: a server kept from them would give bread id 2
    {
        "id": "bread",
        "instruction": "You want bread on your todo list.",
        "actions": [{"name": "add_todo", "arguments": {"title": "bread"}}],
        "outputs": ["bread"],
    },
]


def simulate(runner: CliRunner, tmp_path: Path, *flags: str) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    blueprints, out, rejects = tmp_path / "blueprints.jsonl", tmp_path / "conversations.jsonl", tmp_path / "failed.jsonl"
    write_jsonl(blueprints, BLUEPRINTS)
    result = invoke(
        runner, "simulate", str(blueprints), "--mcp", TODO_SERVER, "-m", "offline", "--seed", "4", "-o", str(out),
        "--rejects", str(rejects), "--concurrency", "2", *flags,
    )  # fmt: skip
    return result, read_jsonl(out) if out.exists() else [], read_jsonl(rejects) if rejects.exists() else []


def test_simulate_acts_out_blueprints_on_a_fresh_server_per_conversation(runner: CliRunner, tmp_path: Path) -> None:
    result, kept, rejects = simulate(runner, tmp_path, "--state-tool", "todo_state", "-O", "offline_error_rate=0")
    assert result.exit_code == 0, result.stderr
    assert [row["id"] for row in kept] == ["milk-1", "bread-1"] and rejects == []
    # the state tool is the check's: the agent is never offered it
    offered = {tool["function"]["name"] for tool in kept[0]["tools"]}
    assert {"add_todo", "complete_todo", "list_todos", "hang"} <= offered and "todo_state" not in offered
    bread_said = [message["content"] for message in kept[1]["messages"] if message["role"] == "tool"]
    assert bread_said == [json.dumps({"id": 1, "title": "bread", "done": False}, separators=(",", ":"))]
    assert kept[1]["trajectory_check"]["checks"]["state"] == "passed"
    assert [call["changed_state"] for call in kept[0]["trajectory_check"]["calls"]] == [True, True]


def test_simulate_without_a_state_tool_checks_the_gold_s_outputs(runner: CliRunner, tmp_path: Path) -> None:
    result, kept, rejects = simulate(runner, tmp_path, "-O", "offline_error_rate=0")
    assert result.exit_code == 0, result.stderr
    assert [row["trajectory_check"]["checks"] for row in kept] == [
        {"state": "not_readable", "gold_outputs": "passed", "told": "passed", "tool_messages": "passed"}
    ] * 2
    assert "todo_state" in {tool["function"]["name"] for tool in kept[0]["tools"]}  # not named the state tool: a tool
    assert rejects == []


def test_judges_read_what_the_replay_kept_and_catch_a_guess(runner: CliRunner, tmp_path: Path) -> None:
    guessed = todo_row("guessed", *RIGHT)
    guessed["messages"][0]["content"] = "Put the usual on my list and tick it off."  # milk: the agent's guess
    result, rejects = check(runner, tmp_path, [todo_row("right", *RIGHT), guessed], "-J", "offline")
    assert result.exit_code == 0, result.stderr
    (kept,) = parse_stdout(result.stdout)
    assert kept["trajectory_check"]["checks"]["judge"] == "passed"
    assert [vote["model"] for vote in kept["trajectory_check"]["judge"]["judges"]] == ["offline"]
    (turned_down,) = rejects
    assert (turned_down["id"], turned_down["rejected_by"], turned_down["reason"]) == (
        "guessed",
        "trajectory_check",
        "review_rejected",
    )
    assert "uses title 'milk', which the user never gave" in turned_down["reason_detail"]
    assert turned_down["trajectory_check"]["checks"] == {
        "state": "not_readable",
        "gold_outputs": "passed",
        "told": "passed",
        "tool_messages": "passed",
        "judge": "failed",
    }


def test_simulate_s_judges_turn_down_a_guess_and_the_blueprint_is_tried_again(runner: CliRunner, tmp_path: Path) -> None:
    blueprints = [BLUEPRINTS[0], {**BLUEPRINTS[1], "instruction": "You want the usual on your todo list."}]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(row) + "\n" for row in blueprints))
    out, rejects = tmp_path / "kept.jsonl", tmp_path / "failed.jsonl"
    result = invoke(
        runner, "simulate", str(tmp_path / "b.jsonl"), "--mcp", TODO_SERVER, "--state-tool", "todo_state", "-m", "offline",
        "--seed", "4", "-O", "offline_error_rate=0", "-J", "offline", "-o", str(out), "--rejects", str(rejects),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [(row["id"], row["trajectory_check"]["checks"]["judge"]) for row in read_jsonl(out)] == [("milk-1", "passed")]
    failed = read_jsonl(rejects)
    assert [(row["id"], row["reason"]) for row in failed] == [(f"bread-{n}", "review_rejected") for n in (1, 2, 3)]
    assert "uses title 'bread', which the user never gave" in failed[0]["reason_detail"]


def test_the_guide_s_mcp_example_runs_as_shown(tmp_path: Path) -> None:
    """Each `apigen` line of the section, run in turn; the `# ` lines after it are what it says last on stderr."""
    heading = "### An MCP server as the environment"
    block = page_with(heading).split(heading, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    (tmp_path / "sample_data").symlink_to(PROJECT / "sample_data")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # `python` has the SDK
    runs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("apigen "):
            runs.append((line, []))
        elif line.startswith("# "):
            runs[-1][1].append(line[2:])
    assert len(runs) == 3
    for command, shown in runs:
        words = [str(Path(sys.executable).parent / "apigen"), *shlex.split(command)[1:]]
        done = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert done.stderr.splitlines()[-len(shown) :] == shown, command
    notes = {row["id"]: row["note"] for row in read_jsonl(PROJECT / "sample_data" / "todo" / "conversations.jsonl")}
    assert sorted(row["id"] for row in read_jsonl(tmp_path / "failed_checks.jsonl")) == sorted(
        name for name, note in notes.items() if not note.startswith("right")
    )


def _sessions(*calls: tuple[str, dict[str, Any]], state_tool: str | None = None) -> SessionOutcome:
    server = McpServer("todo", (sys.executable, str(Path(__file__).with_name("mcp_todo_server.py"))))
    options = McpEnvironmentOptions(McpOptions(servers=(server,), timeout=20, max_result_chars=100), state_tool, 1)
    environment = McpEnvironment(options)
    try:
        return environment.run(SessionRequest("s", {}, [{"name": name, "arguments": arguments} for name, arguments in calls]))
    finally:
        environment.close()


def test_a_replay_holds_to_its_bounds_whatever_the_server_answers() -> None:
    outcome = _sessions(("big", {"chars": 3_000_000}), ("deep", {"levels": 150}), ("add_todo", {"title": "milk"}))
    assert outcome.ok, outcome.problem
    big, deep, added = outcome.calls
    assert big.outcome.ok and big.outcome.truncated and len(big.outcome.result) < 200  # cut to --max-result-chars
    assert (deep.ok, deep.outcome.code) == (False, "too_deep")
    assert added.outcome.result == MILK  # the session goes on after both
    crashed = _sessions(("add_todo", {"title": "milk"}), ("crash", {}), ("list_todos", {}))
    assert crashed.problem is not None and crashed.problem.code == "mcp_server_exited"
    assert [call.name for call in crashed.calls] == ["add_todo", "crash"]  # the replay ends at the call that killed it
    failing_state_tool = _sessions(("add_todo", {"title": "milk"}), state_tool="big")  # it needs `chars`
    assert failing_state_tool.problem is not None and failing_state_tool.problem.code == "state_read_error"


def test_ctrl_c_during_a_hung_call_ends_it_and_every_server(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    conversations = tmp_path / "conversations.jsonl"
    write_jsonl(conversations, [todo_row("hangs", ("hang", {"seconds": 600}, "awake"), *RIGHT)])
    command = [sys.executable, "-m", "apigen_cli", "trajectory-check", str(conversations)]
    command += ["--mcp", f"{TODO_SERVER} --pids {pids}", "--exec-timeout", "600"]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(pids.glob("*.hanging")):  # held there: the server is in the call that would last 600 s
            assert time.monotonic() < deadline and process.poll() is None, "the hanging call never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)  # before the fix, the run waited for the call's 600 s
    finally:
        process.kill()
    assert process.returncode == 130, err
    started = [int(pid) for path in pids.glob("*.pids") for pid in path.read_text().split()]
    assert started and [pid for pid in started if _alive(pid)] == []


def test_simulate_offers_the_tools_of_a_library_from_mcp_wrote(runner: CliRunner, tmp_path: Path) -> None:
    library = tmp_path / "todo_tools.jsonl"
    made = invoke(runner, "library", "from-mcp", "--name", "todo", "-o", str(library), "-q", "--", *TODO_SERVER[5:].split())
    assert made.exit_code == 0, made.stderr
    entries = read_jsonl(library)
    write_jsonl(library, [entry | {"description": "Yours: " + entry.get("description", "")} for entry in entries])
    result, kept, _rejects = simulate(runner, tmp_path, "--tools", str(library), "--state-tool", "todo_state")
    assert result.exit_code == 0, result.stderr
    tools = {tool["function"]["name"]: tool["function"]["description"] for tool in kept[0]["tools"]}
    assert tools["add_todo"].startswith("Yours: ") and "todo_state" not in tools


def test_a_replay_s_server_gets_only_the_allowed_variables_and_passed_values_are_cut(monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-seen-by-a-server")
    monkeypatch.setenv("TODO_TOKEN", "todo-token-passed-on-purpose")
    server = McpServer("todo", (sys.executable, str(Path(__file__).with_name("mcp_todo_server.py"))))
    options = McpEnvironmentOptions(McpOptions(servers=(server,), timeout=20, pass_env=("TODO_TOKEN",)), None, 1)
    environment = McpEnvironment(options)
    try:
        calls = [{"name": "environment", "arguments": {"name": name}} for name in ("OPENAI_API_KEY", "TODO_TOKEN")]
        outcome = environment.run(SessionRequest("keys", {}, calls))
    finally:
        environment.close()
    key, passed = (call.outcome.result["result"] for call in outcome.calls)  # a str result, structured
    assert key == "unset"  # the allowlist: a key is not among the variables a server gets
    assert "todo-token-passed-on-purpose" not in passed and passed != "unset"  # given, and cut from what comes back


def test_simulate_keeps_one_server_for_a_whole_conversation_and_one_for_the_gold(runner: CliRunner, tmp_path: Path) -> None:
    """Three steps of the agent, each with its call: one server for the conversation, one for the gold's replay (and the
    look at the tools), none left after. Replaying the calls so far at each step started one server per step."""
    pids = tmp_path / "pids"
    pids.mkdir()
    actions = [
        {"name": "add_todo", "arguments": {"title": "milk"}},
        {"name": "add_todo", "arguments": {"title": "eggs"}},
        {"name": "complete_todo", "arguments": {"todo_id": 1}},
    ]
    blueprint = {"id": "shop", "instruction": "You want milk and eggs on your list, milk ticked off.", "actions": actions}
    write_jsonl(tmp_path / "blueprints.jsonl", [{**blueprint, "outputs": ["milk"]}])
    out = tmp_path / "conversations.jsonl"
    result = invoke(
        runner, "simulate", str(tmp_path / "blueprints.jsonl"), "--mcp", f"{TODO_SERVER} --pids {pids}",
        "--state-tool", "todo_state", "-m", "offline", "--seed", "4", "-O", "offline_error_rate=0", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (kept,) = read_jsonl(out)
    steps = [message for message in kept["messages"] if message["role"] == "assistant" and message.get("tool_calls")]
    assert len(steps) == 3 and kept["trajectory_check"]["checks"]["state"] == "passed"
    started = [path.read_text().split() for path in pids.glob("*.pids")]
    assert len(started) == 3  # the tools listed, the conversation, the gold
    assert [pid for pair in started for pid in map(int, pair) if _alive(pid)] == []


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_simulate_stopped_mid_conversation_leaves_no_server_behind(tmp_path: Path, how: signal.Signals) -> None:
    """The conversation's server and the gold's, each held in a call that would last 600 s: Ctrl-C ends the run
    (130) and both, a kill -9 of apigen takes them down with it."""
    pids = tmp_path / "pids"
    pids.mkdir()
    hang = {"name": "hang", "arguments": {"seconds": 600}}
    write_jsonl(tmp_path / "blueprints.jsonl", [{**BLUEPRINTS[0], "actions": [hang, *BLUEPRINTS[0]["actions"]]}])
    command = [sys.executable, "-m", "apigen_cli", "simulate", str(tmp_path / "blueprints.jsonl"), "-m", "offline"]
    command += ["--mcp", f"{TODO_SERVER} --pids {pids}", "--exec-timeout", "600", "-O", "offline_error_rate=0"]
    command += ["-o", str(tmp_path / "out.jsonl")]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.glob("*.hanging"))) < 2:  # held there: the conversation's server and the gold's
            assert time.monotonic() < deadline and process.poll() is None, "the hanging calls never started"
            time.sleep(0.05)
        process.send_signal(how)
        _out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL), err
    started = [int(pid) for path in pids.glob("*.pids") for pid in path.read_text().split()]
    assert len(started) == 2 * 3  # the tools listed, the conversation, the gold: a server and its child each
    assert [pid for pid in started if not gone_soon(pid, 30)] == []
