"""`run --multi-turn`'s progress on stderr: on a terminal, a line per phase (blueprints requested, verified, rejected;
the blueprints acted out, their conversations attempted, verified and rejected; each with its models' live
counters), starting from the counts a resumed run carried over; off a terminal none of it, and with `-q` nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import read_jsonl
from .doc_pages import page_with
from .llm_server import LLMServer
from .run_helpers import APIGEN, apigen_process, cli_env, kill_9_at_checkpoint
from .scripted_conversation import multi_turn_handler
from .test_blueprint import store_tools  # noqa: F401 (a fixture)
from .test_console import on_a_terminal_held
from .test_run_multi_turn import OFFLINE, multi_turn
from .test_simulate_llm import writes

#: the closing line: blueprints verified, conversations attempted, conversations verified
SUMMARY = re.compile(
    r"run --multi-turn: 8 blueprints requested, (\d+) verified .*?; (\d+) conversations attempted, (\d+) verified"
)


def drawn(line: str) -> bool:
    """A line of the progress display (the messages name files in a long temporary folder, and may be wider)."""
    return line.startswith(("blueprints  ", "conversations  "))


def scripted_run(tools: Path, folder: Path, server: LLMServer, *extra: str) -> list[str]:
    """8 blueprints, then their conversations, one request at a time, against the scripted server."""
    folder.mkdir(exist_ok=True)
    model = ["--base-url", server.url, "-m", "agent-model", "--user-model", "user-model", "--concurrency", "1"]
    return [*APIGEN, *multi_turn(tools, folder / "conversations.jsonl", *model, "-n", "8", "--seed", "5", *extra)]


def scripted_handler(folder: Path) -> Any:
    """Writes blueprints, then plays the user and the agent of each blueprint the run under test has written."""
    return multi_turn_handler(folder, writes())


def test_in_a_terminal_a_line_per_phase_counts_blueprints_then_conversations(
    store_tools: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Held at the first conversation's third request: the blueprints' line is full, the conversations' under way."""
    folder = tmp_path / "run"
    with LLMServer(handler=scripted_handler(folder)) as server:
        server.hold(after=10)  # the 8 blueprints' requests, then 2 of the first conversation's
        command = scripted_run(store_tools, folder, server)
        held = rb"  0%  0/\d+ blueprints  0 attempts  0 verified  0 rejected  1 in flight"
        lines = on_a_terminal_held(server, command, held, rb"simulate: \d+ passed", columns=140, measured=drawn)
    said = SUMMARY.search(" ".join(lines))
    assert said, lines
    blueprints, attempts, verified = map(int, said.groups())
    assert "conversations  waiting for the blueprints" in [line.rstrip() for line in lines]  # before its phase
    requests = [line for line in lines if "/8 requests" in line]
    assert requests and all(line.startswith("blueprints  ") for line in requests), requests
    done = rf"100%  8/8 requests  {blueprints} verified  {8 - blueprints} rejected  0 in flight  [\d,]+ tokens"
    assert re.search(done, requests[-1]), requests[-1]
    acted = [line for line in lines if f"/{blueprints} blueprints" in line]
    assert all(line.startswith("conversations  ") for line in acted), acted
    ended = (
        rf"100%  {blueprints}/{blueprints} blueprints  {attempts} attempts  {verified} verified  {attempts - verified} rejected"
    )
    assert re.search(ended + r"  0 in flight  [\d,]+ tokens", acted[-1]), acted[-1]
    table = next(index for index, line in enumerate(lines) if line.startswith("blueprints requested"))
    assert not any("/8 requests" in line or " blueprints  " in line for line in lines[table:])  # gone before the table


def test_in_a_terminal_the_lines_end_with_the_whole_run_s_counts_and_revisions(
    store_tools: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Offline, with revisions: the last lines drawn (as the display closes) hold each phase's final counts."""
    output = tmp_path / "conversations.jsonl"
    command = [*APIGEN, *multi_turn(store_tools, output, *OFFLINE, "--attempts", "2", "--max-revisions", "1")]
    lines = on_a_terminal_held(None, command, rb"simulate: \d+ passed", rb"simulate: \d+ passed", columns=120, measured=drawn)
    blueprints, failed = read_jsonl(output.with_name("conversations.blueprints.jsonl")), read_jsonl(tmp_path / "failed.jsonl")
    kept = read_jsonl(output)
    revisions = sum(len(row.get("blueprint_attempts", [])) for row in blueprints)
    revisions += sum(len(row.get("blueprint_attempts", [])) for row in read_jsonl(tmp_path / "failed.blueprints.jsonl"))
    assert revisions and kept and failed
    requests = [line.rstrip() for line in lines if "/12 requests" in line]
    assert requests[-1].startswith("blueprints  ")
    assert (
        f"100%  12/12 requests  {len(blueprints)} verified  {12 - len(blueprints)} rejected  {revisions} revisions"
        in (requests[-1])
    )
    acted = [line.rstrip() for line in lines if f"/{len(blueprints)} blueprints" in line]
    attempts = len(kept) + len(failed)  # the LLM counters, of the highest rank, give way first on a narrow terminal
    assert acted[-1].startswith("conversations  ")
    total = len(blueprints)
    assert f"100%  {total}/{total} blueprints  {attempts} attempts  {len(kept)} verified  {len(failed)} rejected" in acted[-1]
    pictured = page_with("standard error shows one line per phase").split("```text\n", 1)[1].split("```", 1)[0]
    for picture in pictured.splitlines():  # the guide's picture has the words of the real lines, whatever the figures
        phase, figures = picture.split()[0], picture.split("%", 1)[1].strip()
        shape = re.sub(r"\d+", r"\\d+", re.escape(figures))
        assert any(line.startswith(phase) and re.search(shape, line) for line in lines), picture


def test_a_resumed_run_starts_its_lines_from_the_counts_its_state_carried_over(
    store_tools: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """kill -9 with 4 blueprints' conversations checkpointed; the rerun's lines start at 8/8 and at 4 blueprints done,
    with the attempts and verdicts of those 4 (drawn as its rows begin, before it asks anything)."""
    reference = tmp_path / "reference"
    with LLMServer(handler=scripted_handler(reference)) as server:
        log = tmp_path / "reference.log.jsonl"
        made = apigen_process(scripted_run(store_tools, reference, server, "--log-llm", str(log), "-q")[len(APIGEN) :])
        assert made.returncode == 0, made.stderr
    asked = [entry["key"] for entry in read_jsonl(log)]
    blueprints = read_jsonl(reference / "conversations.blueprints.jsonl")
    first_four = {row["id"] for row in blueprints[:4]}
    rows = [
        row
        for name in ("conversations.jsonl", "failed.jsonl")
        for row in read_jsonl(reference / name)
        if row["blueprint_id"] in first_four
    ]
    kept = sum(1 for row in rows if row["keep_row_after_trajectory_check"] is True)
    assert 0 < kept < len(rows)  # the carried-over counts hold verified conversations and rejected ones

    resumed = tmp_path / "resumed"
    with LLMServer(handler=scripted_handler(resumed)) as server:
        command = scripted_run(store_tools, resumed, server)
        answered = asked.index(f"{blueprints[5]['id']}:1") + 1
        state = kill_9_at_checkpoint(command[len(APIGEN) :], resumed / "conversations.jsonl.apigen-run.json", 4, server, answered)
        assert state["requests_done"] == 4
        # the line is drawn as the phase's rows begin, before its first request: no need to hold the rerun
        lines = on_a_terminal_held(None, command, rb"simulate: \d+ passed", rb"simulate: \d+ passed", columns=140, measured=drawn)
    rejected = 8 - len(blueprints)
    assert any(re.search(rf"100%  8/8 requests  {len(blueprints)} verified  {rejected} rejected", line) for line in lines)
    start = rf"  4/{len(blueprints)} blueprints  {len(rows)} attempts  {kept} verified  {len(rows) - kept} rejected"
    assert any(re.search(start, line) for line in lines), [line for line in lines if "blueprints  " in line]


@pytest.mark.parametrize("quiet", [False, True])
def test_off_a_terminal_no_line_is_drawn_and_with_quiet_nothing_is_said(
    quiet: bool,
    store_tools: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """stderr a pipe, with colour allowed: no control sequence; stdout untouched (the rows go to `-o`)."""
    env = {name: value for name, value in cli_env(TERM="xterm-256color").items() if name != "NO_COLOR"}
    args = multi_turn(store_tools, tmp_path / "conversations.jsonl", *OFFLINE, *(["-q"] if quiet else []))
    ran = subprocess.run([*APIGEN, *args], env=env, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == b""
    if quiet:
        assert ran.stderr == b""
    else:
        assert b"\x1b" not in ran.stderr and b"\r" not in ran.stderr
        assert b"run --multi-turn: 12 blueprints requested" in ran.stderr
        assert not re.search(rb"\d+/\d+ (requests|blueprints)", ran.stderr)
    assert os.path.getsize(tmp_path / "conversations.jsonl") > 0
