"""`apigen run --multi-turn`: blueprints, then conversations, in one process; kill -9 in either phase and the same
command carries on. The offline backend, and a scripted server that writes blueprints and plays user and agent.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from .conftest import invoke, read_jsonl
from .doc_pages import run_section_example
from .llm_server import LLMServer
from .run_helpers import APIGEN, apigen_process, cli_env, kill_9_at_checkpoint
from .scripted_conversation import SLIPPED, conversations_asked, multi_turn_handler
from .scripted_model import blueprint_reply
from .test_blueprint import store_tools  # noqa: F401 (a fixture)
from .test_simulate import POLICY, STORE
from .test_simulate_llm import writes
from .test_simulate_resume import without_wall_time

INITIAL_STATE = STORE / "initial_state.json"


def multi_turn(tools: Path, output: Path, *flags: str) -> list[str]:
    return [
        "run", "--multi-turn", str(tools), "--functions", str(STORE), "--initial-state", str(INITIAL_STATE),
        "--policy", str(POLICY), "-o", str(output), "--rejects", str(output.with_name("failed.jsonl")), *flags,
    ]  # fmt: skip


def files_of(folder: Path) -> dict[str, list[dict[str, Any]]]:
    names = ("conversations.jsonl", "failed.jsonl", "conversations.blueprints.jsonl", "failed.blueprints.jsonl")
    return {name: without_wall_time(read_jsonl(folder / name)) for name in names}


OFFLINE = ("-m", "offline", "-J", "offline", "-n", "12", "--seed", "23", "-O", "offline_error_rate=0.3")


def test_offline_blueprints_then_conversations_in_one_run_each_row_in_one_file(store_tools: Path, tmp_path: Path) -> None:  # noqa: F811
    runner = CliRunner()
    output = tmp_path / "conversations.jsonl"
    result = invoke(runner, *multi_turn(store_tools, output, *OFFLINE, "--attempts", "2", "--max-revisions", "1"))
    assert result.exit_code == 0, result.stderr
    made = files_of(tmp_path)
    blueprints, blueprint_rejects = made["conversations.blueprints.jsonl"], made["failed.blueprints.jsonl"]
    assert len({row["id"] for row in blueprints + blueprint_rejects}) == 12  # every blueprint requested is in one file
    kept, failed = made["conversations.jsonl"], made["failed.jsonl"]
    assert kept and all(row["keep_row_after_trajectory_check"] is True for row in kept)
    # every verified blueprint was acted out: up to --attempts each, in the blueprints' order
    assert [row["id"] for row in blueprints] == list(dict.fromkeys(row["blueprint_id"] for row in sorted(
        kept + failed, key=lambda row: int(row["simulate_request"].rsplit("-", 1)[1])
    )))  # fmt: skip
    assert all(row["attempt"] <= 2 for row in kept + failed)
    summary = (
        f"run --multi-turn: 12 blueprints requested, {len(blueprints)} verified (`{tmp_path / 'conversations.blueprints.jsonl'}`); "
        f"{len(kept) + len(failed)} conversations attempted, {len(kept)} verified, "
    )
    assert summary in result.stderr.replace("\n", " ").replace("  ", " ") or summary in result.stderr
    assert f"simulate: {len(kept)} passed, {len(failed)} rejected" in result.stderr
    # APIGen-MT's table over the four files closes the run, as `apigen stats` gives it
    table = invoke(runner, "stats", *(str(tmp_path / name) for name in made))
    assert table.exit_code == 0, table.stderr
    assert "tokens per verified conversation" in table.stdout and "blueprints requested" in table.stdout
    assert table.stdout in result.stderr
    # the same command again: both phases are found complete, nothing is asked or written again
    before = {name: (tmp_path / name).read_bytes() for name in made}
    again = invoke(runner, *multi_turn(store_tools, output, *OFFLINE, "--attempts", "2", "--max-revisions", "1"))
    assert again.exit_code == 0, again.stderr
    assert again.stderr.count("already holds this run, complete") == 2
    assert {name: (tmp_path / name).read_bytes() for name in made} == before
    assert table.stdout in again.stderr  # the whole run's table, whichever session finished it
    quiet = invoke(runner, *multi_turn(store_tools, output, *OFFLINE, "--attempts", "2", "--max-revisions", "1", "-q"))
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    # `--report`: the same table as JSON, `apigen stats --json`'s, with the run's seed
    report = tmp_path / "report.json"
    flags = ("--attempts", "2", "--max-revisions", "1", "-q", "--report", str(report))
    reported = invoke(runner, *multi_turn(store_tools, output, *OFFLINE, *flags))
    assert reported.exit_code == 0, reported.stderr
    as_json = invoke(runner, "stats", "--json", *(str(tmp_path / name) for name in made))
    assert json.loads(report.read_text()) == json.loads(as_json.stdout) | {"seed": 23, "complete": True}


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (
            ("--multi-turn", "--dedup"),
            "error: `--dedup` is a flag of the single-turn pipeline, and `run --multi-turn` does not use it",
        ),
        (("--multi-turn", "--apis-per-prompt", "2"), "error: `--apis-per-prompt` is a flag of the single-turn pipeline"),
        (
            ("--attempts", "2"),
            "error: `--attempts` is a flag of the multi-turn run, and `run` without `--multi-turn` does not use it",
        ),
        (("--policy", str(POLICY)), "error: `--policy` is a flag of the multi-turn run"),
    ],
)
def test_a_flag_of_the_other_kind_of_run_is_an_error_naming_it(
    store_tools: Path,  # noqa: F811
    tmp_path: Path,
    flags: tuple[str, ...],
    named: str,  # noqa: F811
) -> None:
    output = tmp_path / "out.jsonl"
    result = invoke(CliRunner(), "run", str(store_tools), "--functions", str(STORE), "-m", "offline", "-o", str(output), *flags)
    assert result.exit_code == 2
    assert result.stderr.startswith(named)
    assert not output.exists()


def test_a_multi_turn_run_needs_a_file_to_write(store_tools: Path) -> None:  # noqa: F811
    result = invoke(CliRunner(), "run", "--multi-turn", str(store_tools), "--functions", str(STORE), "-m", "offline")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `run --multi-turn` writes its blueprints beside `--output`")
    assert "hint: pass `-o FILE`" in result.stderr


@pytest.mark.parametrize("phase", ["blueprint", "simulate"])
def test_a_run_killed_in_either_phase_carries_on_asking_again_for_nothing_finished(
    phase: str,
    store_tools: Path,  # noqa: F811
    tmp_path: Path,  # noqa: F811
) -> None:
    """kill -9 with the server holding a request: of the 6th blueprint, or of the 6th blueprint's conversation.

    One request at a time (`--concurrency 1`). Blueprints are checked in windows of 64, so a run held in the
    blueprint phase has written none (0 done); one held at the 6th conversation has checkpointed 4 (the 5th's
    rows are held back until the 6th's first comes). The scripted server acts the blueprints out: most
    conversations are verified, a seeded few slip and are rejected, so a row lost or written twice shows.
    """

    def command(name: str, server: LLMServer, *extra: str) -> list[str]:
        model = ["--base-url", server.url, "-m", "agent-model", "--user-model", "user-model"]
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        return [
            *multi_turn(store_tools, folder / "conversations.jsonl", *model, "-n", "8", "--seed", "5"),
            "--concurrency",
            "1",
            *extra,
        ]

    with LLMServer(handler=multi_turn_handler(tmp_path / "reference", writes())) as server:
        log = tmp_path / "reference.log.jsonl"
        reference = apigen_process(command("reference", server, "--log-llm", str(log)))
        assert reference.returncode == 0, reference.stderr
        reference_requests = server.chat_requests()
    asked = [entry["key"] for entry in read_jsonl(log)]
    made = files_of(tmp_path / "reference")
    blueprints = made["conversations.blueprints.jsonl"]
    assert len(blueprints) >= 7
    verified, failed = made["conversations.jsonl"], made["failed.jsonl"]
    assert len({row["blueprint_id"] for row in verified}) >= 4, failed  # most blueprints' conversations verified
    assert failed and {row["reason"] for row in failed} == SLIPPED, failed  # and a few slipped, for a named reason
    reference_asked = conversations_asked(reference_requests, blueprints)
    if phase == "blueprint":
        answered, state_file, done = 5, tmp_path / "resumed" / "conversations.blueprints.jsonl.apigen-run.json", 0
    else:
        answered = asked.index(f"{blueprints[5]['id']}:1") + 1
        state_file, done = tmp_path / "resumed" / "conversations.jsonl.apigen-run.json", 4
    with LLMServer(handler=multi_turn_handler(tmp_path / "resumed", writes())) as server:
        state = kill_9_at_checkpoint(command("resumed", server), state_file, done, server, answered)
        assert state["requests_done"] == done and not state["complete"]
        asked_before = len(server.chat_requests())
        second = apigen_process(command("resumed", server))
        assert second.returncode == 0, second.stderr
        asked_again = conversations_asked(server.chat_requests()[asked_before:], blueprints)

    assert files_of(tmp_path / "resumed") == files_of(tmp_path / "reference")  # none lost, none twice
    if phase == "simulate":  # the blueprint phase was complete; no finished blueprint's conversation is asked again
        assert "already holds this run, complete" in second.stderr
        unfinished = {row["id"] for row in blueprints[4:]}
        # request for request, the conversations the checkpoint did not hold: each once, as in the whole run
        assert Counter(asked_again) == Counter(whose for whose in reference_asked if whose in unfinished)
    else:
        assert asked_again == reference_asked  # nothing was written: the whole run, once
    summary = next(line for line in reference.stderr.splitlines() if line.startswith("run --multi-turn:"))
    assert summary.replace(f"{tmp_path / 'reference'}", f"{tmp_path / 'resumed'}") in second.stderr  # the whole run's


def test_the_guide_s_example_runs_as_written_and_says_what_the_page_shows(tmp_path: Path) -> None:
    shown, said, _printed = run_section_example("### `apigen run --multi-turn`", tmp_path)
    assert [line for line in said if line in shown] == shown, said


def test_the_guide_s_whole_path_runs_as_written_and_exports_what_it_verified(tmp_path: Path) -> None:
    """From the environment's classes to training files: library, library check, run --multi-turn, stats, export."""
    shown, said, _printed = run_section_example("## From your environment to a dataset", tmp_path)
    assert said[-len(shown) :] == shown
    verified = read_jsonl(tmp_path / "out" / "conversations.jsonl")
    assert len(read_jsonl(tmp_path / "train.jsonl")) == len(verified) > 0
    assert {tool["effect"] for tool in read_jsonl(tmp_path / "store_checked.jsonl")} == {"read", "write"}


def test_a_second_run_on_the_same_output_is_refused_while_the_first_makes_its_blueprints(
    store_tools: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The first run is held at its first blueprint request; the second, in-process, is refused naming `-o`."""
    output = tmp_path / "conversations.jsonl"
    with LLMServer(handler=blueprint_reply) as server:
        args = multi_turn(store_tools, output, "--base-url", server.url, "-m", "agent-model", "-n", "2", "--seed", "1")
        server.hold(after=0)
        try:
            with subprocess.Popen([*APIGEN, *args], env=cli_env(), stderr=subprocess.DEVNULL) as first:
                try:
                    assert server.wait_parked(1)
                    second = invoke(CliRunner(), *args)
                finally:
                    first.kill()
                    first.wait()
        finally:
            server.release()
    assert second.exit_code == 2
    assert second.stderr.startswith(f"error: `--output` names `{output}`, which another apigen command is writing")


def test_a_flag_the_simulate_phase_refuses_stops_the_run_before_any_blueprint(
    store_tools: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    output = tmp_path / "conversations.jsonl"
    result = invoke(CliRunner(), *multi_turn(store_tools, output, "-m", "offline", "-m", "offline", "-n", "2"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: simulate takes one agent model, and 2 are given")
    assert not list(tmp_path.glob("*.jsonl"))
