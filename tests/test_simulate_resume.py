"""`apigen simulate -o FILE` resumable: a checkpoint per blueprint, kill -9 and the same command carries on.

A real process held by the scripted conversation server's gate (tests/llm_server.py) and killed
with SIGKILL; the rerun's `--log-llm` shows what it asked again. The offline backend for the rest.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from .conftest import invoke, read_jsonl
from .llm_server import LLMServer
from .run_helpers import apigen_process, kill_9_at_checkpoint, saved_state
from .scripted_conversation import SLIPPED, conversation_handler, conversations_asked
from .test_simulate import POLICY, STORE, blueprints  # noqa: F401 (a fixture)
from .test_simulate_llm import writes


def simulate_command(source: Path, output: Path, *flags: str) -> list[str]:
    rejects = output.with_name(output.stem + "_rejects.jsonl")
    return [
        "simulate", str(source), "--functions", str(STORE), "--policy", str(POLICY),
        "-o", str(output), "--rejects", str(rejects), *flags,
    ]  # fmt: skip


def without_wall_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as a rerun must make them again: all but the seconds each conversation took."""
    for row in rows:
        if isinstance(row.get("simulation"), dict):
            row["simulation"].pop("seconds")
    return rows


def written(output: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rejects = output.with_name(output.stem + "_rejects.jsonl")
    return without_wall_time(read_jsonl(output)), without_wall_time(read_jsonl(rejects))


def test_a_simulate_run_killed_mid_way_asks_again_for_no_finished_blueprint(
    blueprints: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """kill -9 with the server holding a request of the sixth blueprint: the rerun asks only from the fifth on.

    One conversation at a time (`--concurrency 1`), so the requests go blueprint by blueprint. Once
    the sixth blueprint's request is held, the fifth's rows have come out and the fourth's checkpoint
    is saved (a blueprint's checkpoint comes with the next one's first row): 4 blueprints done. The scripted
    server acts the blueprints out: most conversations are verified, a seeded few slip and are rejected.
    """
    rows = read_jsonl(blueprints)
    assert len(rows) >= 7
    handler = conversation_handler(rows, writes(), error_rate=0.3)

    def command(name: str, server: LLMServer, *extra: str) -> list[str]:
        model = ["--base-url", server.url, "-m", "agent-model", "--user-model", "user-model"]
        return [*simulate_command(blueprints, tmp_path / f"{name}.jsonl", *model, "--seed", "5", "--concurrency", "1"), *extra]

    with LLMServer(handler=handler) as server:
        reference_log = tmp_path / "reference.log.jsonl"
        reference = apigen_process(command("reference", server, "--log-llm", str(reference_log)))
        assert reference.returncode == 0, reference.stderr
        reference_asked = conversations_asked(server.chat_requests(), rows)
        keys = [entry["key"].split(":")[0] for entry in read_jsonl(reference_log)]
        before_sixth = keys.index(rows[5]["id"])  # the requests of the first five blueprints
        state = kill_9_at_checkpoint(
            command("resumed", server), tmp_path / "resumed.jsonl.apigen-run.json", 4, server, answered=before_sixth + 1
        )
        assert state["requests_done"] == 4 and not state["complete"]
        asked_before = len(server.chat_requests())
        second = apigen_process(command("resumed", server))
        assert second.returncode == 0, second.stderr
        asked_again = conversations_asked(server.chat_requests()[asked_before:], rows)

    verified, failed = written(tmp_path / "reference.jsonl")
    assert len({row["blueprint_id"] for row in verified}) >= 4, failed  # most blueprints' conversations verified
    assert failed and {row["reason"] for row in failed} == SLIPPED, failed  # and a few slipped, for a named reason
    assert written(tmp_path / "resumed.jsonl") == (verified, failed)  # none lost, none twice
    # request for request at the server, the conversations the checkpoint did not hold: each once, as in the whole run
    unfinished = {row["id"] for row in rows[4:]}
    assert Counter(asked_again) == Counter(whose for whose in reference_asked if whose in unfinished)
    assert f"resumed: 4 of {len(rows)} blueprints were already simulated" in second.stderr
    for prefix in ("simulate:", "blueprints verified:", "conversations ended by:"):  # the whole run's figures
        line = next(line for line in reference.stderr.splitlines() if line.startswith(prefix))
        assert line in second.stderr


def test_rows_come_out_in_blueprint_order_and_a_finished_run_is_kept(blueprints: Path, tmp_path: Path) -> None:  # noqa: F811
    runner = CliRunner()
    output = tmp_path / "conversations.jsonl"
    flags = ("-m", "offline", "--seed", "2", "-O", "offline_error_rate=0.4", "--concurrency", "4")
    first = invoke(runner, *simulate_command(blueprints, output, *flags))
    assert first.exit_code == 0, first.stderr
    kept, failed = written(output)
    order = [row["id"] for row in read_jsonl(blueprints)]
    # every blueprint's attempts come together, in input order: the kept file's and the rejects' alike
    for rows in (kept, failed):
        positions = [order.index(row["blueprint_id"]) for row in rows]
        assert positions == sorted(positions)
        assert [row["simulate_request"] for row in rows] == [f"sim-2-{position}" for position in positions]
    assert failed, "the error rate makes some attempts fail"
    before = output.read_bytes()
    again = invoke(runner, *simulate_command(blueprints, output, *flags))
    assert again.exit_code == 0, again.stderr
    assert f"`{output}` already holds this run, complete; pass `--overwrite` to run it again" in again.stderr
    assert output.read_bytes() == before
    summary = [line for line in first.stderr.splitlines() if line.startswith(("simulate:", "blueprints verified:"))]
    assert summary and all(line in again.stderr for line in summary)
    other = invoke(runner, *simulate_command(blueprints, output, *flags, "--attempts", "2"))
    assert other.exit_code == 2
    assert other.stderr.startswith(f"error: `{output}` holds a run made with other settings: `attempts` (was 3, now 2)")


@pytest.mark.parametrize("command", ["simulate", "blueprint"])
def test_a_run_without_seed_resumes_with_the_seed_it_drew(command: str, blueprints: Path, tmp_path: Path) -> None:  # noqa: F811
    """Without `--seed`, the rerun of a finished (or killed) run takes the seed of its state, not a new one."""
    runner = CliRunner()
    output = tmp_path / "out.jsonl"
    if command == "simulate":
        args = simulate_command(blueprints, output, "-m", "offline")
    else:
        tools = blueprints.parent / "store_tools.jsonl"
        args = ["blueprint", str(tools), "--functions", str(STORE), "-m", "offline", "-n", "3", "-o", str(output)]
    first = invoke(runner, *args)
    assert first.exit_code == 0, first.stderr
    seed = saved_state(tmp_path / "out.jsonl.apigen-run.json")["seed"]
    again = invoke(runner, *args)
    assert again.exit_code == 0, again.stderr
    assert "already holds this run, complete" in again.stderr
    assert f"seed {seed}: pass `--seed {seed}`" in again.stderr


def test_standard_input_is_simulated_as_before_with_no_run_state(blueprints: Path, tmp_path: Path) -> None:  # noqa: F811
    output = tmp_path / "piped.jsonl"
    result = invoke(
        CliRunner(),
        "simulate", "-", "--functions", str(STORE), "-m", "offline", "--seed", "1", "-o", str(output),
        input=blueprints.read_text(),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert read_jsonl(output) and not (tmp_path / "piped.jsonl.apigen-run.json").exists()
    assert orjson.loads(output.read_bytes().splitlines()[0])["simulate_request"] == "sim-1-0"


def test_an_api_library_given_for_the_blueprints_is_refused_before_any_request(
    blueprints: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    tools = blueprints.parent / "store_tools.jsonl"
    output = tmp_path / "out.jsonl"
    result = invoke(CliRunner(), *simulate_command(tools, output, "-m", "offline", "--seed", "1"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: row 1 of `{tools}` is an API definition, not a row")
    assert not output.exists()
