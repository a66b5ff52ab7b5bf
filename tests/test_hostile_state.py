"""Issue 12: the run state cannot lie. One run per output; a state is checked against its files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from apigen_cli.rows.lock import OutputLock
from apigen_cli.rows.state_slots import BLOCK, is_slotted

from .conftest import PROJECT, invoke, read_jsonl
from .llm_server import LLMServer
from .run_helpers import APIGEN, run_args, saved_state
from .scripted_model import pipeline_handler


def offline_run(tmp_path: Path, name: str = "out") -> list[str]:
    out, rejects = tmp_path / f"{name}.jsonl", tmp_path / f"{name}_rejects.jsonl"
    return run_args(count=30, seed=5, out=out, rejects=rejects, quiet=True)


def served_run(server: LLMServer, tmp_path: Path, name: str) -> list[str]:
    """A real `apigen` process against ``server``, one request and one worker at a time."""
    out, rejects = tmp_path / f"{name}.jsonl", tmp_path / f"{name}_rejects.jsonl"
    args = run_args("--workers", "1", server=server, count=30, seed=8, concurrency=1, out=out, rejects=rejects, quiet=True)
    return [*APIGEN, *args]


def env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(PROJECT / "src")}


@contextmanager
def reference_made(tmp_path: Path, latency: float) -> Iterator[LLMServer]:
    """The scripted server, once a whole run `reference` (the rows to compare with) has been made against it."""
    with LLMServer(latency=latency, handler=pipeline_handler) as server:
        reference = subprocess.run(served_run(server, tmp_path, "reference"), env=env(), capture_output=True, timeout=120)
        assert reference.returncode == 0, reference.stderr
        yield server


def test_a_second_run_on_the_same_output_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    lock_file = tmp_path / "shared.jsonl.apigen-lock"
    with reference_made(tmp_path, latency=0.0) as server:
        server.hold(after=3)  # the first run is held mid-way, its lock taken, until the second has been tried
        with subprocess.Popen(
            served_run(server, tmp_path, "shared"), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as first:
            try:
                assert server.wait_parked(1)
                assert lock_file.read_text().strip() == str(first.pid)
                second = subprocess.run(served_run(server, tmp_path, "shared"), env=env(), capture_output=True, timeout=60)
                assert first.poll() is None and server.parked == 1  # the second run sent nothing
            finally:
                server.release()
                first.wait(timeout=120)
            assert first.returncode == 0
    assert second.returncode == 2
    stderr = second.stderr.decode()
    assert stderr.startswith("error: ") and f"process {first.pid}" in stderr and "hint: " in stderr
    assert read_jsonl(tmp_path / "shared.jsonl") == read_jsonl(tmp_path / "reference.jsonl")  # untouched by the second
    assert read_jsonl(tmp_path / "shared_rejects.jsonl") == read_jsonl(tmp_path / "reference_rejects.jsonl")
    state = saved_state(tmp_path / "shared.jsonl.apigen-run.json")
    assert state["complete"] and state["requests_done"] == state["requests_total"] == 10


def test_a_lock_held_by_another_process_is_named(runner: CliRunner, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from apigen_cli.rows.lock import OutputLock; "
         "OutputLock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(tmp_path / "out.jsonl")],
        env=env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = invoke(runner, *offline_run(tmp_path))
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert refused.exit_code == 2 and f"process {holder.pid}" in refused.stderr
    assert not (tmp_path / "out.jsonl").exists()
    assert invoke(runner, *offline_run(tmp_path)).exit_code == 0  # the holder died: its lock went with it
    with OutputLock.acquire(str(tmp_path / "out.jsonl")):  # and the run let go of it when it ended
        pass


def test_kill_9_before_the_first_checkpoint_is_resumed(tmp_path: Path) -> None:
    state_file = tmp_path / "killed.jsonl.apigen-run.json"
    with reference_made(tmp_path, latency=0.0) as server:
        server.hold()  # no request is answered before the kill: no checkpoint is reached
        with subprocess.Popen(served_run(server, tmp_path, "killed"), env=env(), stdout=subprocess.DEVNULL) as process:
            assert server.wait_parked(1) and state_file.exists()
            process.kill()
            process.wait(timeout=10)
        server.release()
        state = saved_state(state_file)
        assert state["requests_done"] == 0 and not state["complete"]
        (tmp_path / "killed.jsonl").write_text('{"id": "half-written row of the killed run"}\n')  # rows past the state
        again = subprocess.run(served_run(server, tmp_path, "killed"), env=env(), capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert read_jsonl(tmp_path / "killed.jsonl") == read_jsonl(tmp_path / "reference.jsonl")


_KILLED_MID_SAVE = """
import os, runpy, signal, sys
save, real_pwrite, writes = int(sys.argv.pop(1)), os.pwrite, [0]
def torn(descriptor, data, offset):
    if os.readlink(f"/proc/self/fd/{descriptor}").endswith(".apigen-run.json"):
        writes[0] += 1
        if writes[0] == save:  # half of this save's slot is written, then kill -9
            real_pwrite(descriptor, data[: len(data) // 2], offset)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_pwrite(descriptor, data, offset)
os.pwrite = torn
sys.argv[0] = "apigen"
runpy.run_module("apigen_cli", run_name="__main__", alter_sys=True)
"""


def _killed_mid_save(tmp_path: Path, save: int) -> Path:
    """A whole run `reference`, and the same run `killed` by kill -9 half-way through its ``save``-th save; its state file."""
    reference = subprocess.run([*APIGEN, *offline_run(tmp_path, "reference")], env=env(), capture_output=True, timeout=120)
    assert reference.returncode == 0, reference.stderr
    command = [sys.executable, "-c", _KILLED_MID_SAVE, str(save), *offline_run(tmp_path, "killed")]
    killed = subprocess.run(command, env=env(), capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    return tmp_path / "killed.jsonl.apigen-run.json"


def _resumed_as_the_reference(tmp_path: Path) -> None:
    again = subprocess.run([*APIGEN, *offline_run(tmp_path, "killed")], env=env(), capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert read_jsonl(tmp_path / "killed.jsonl") == read_jsonl(tmp_path / "reference.jsonl")
    assert read_jsonl(tmp_path / "killed_rejects.jsonl") == read_jsonl(tmp_path / "reference_rejects.jsonl")


def test_kill_9_in_the_middle_of_a_save_resumes_from_the_save_before(tmp_path: Path) -> None:
    """The 7th checkpoint is half written when the process is killed: the 6th is read, and the run ends as if whole."""
    state = saved_state(_killed_mid_save(tmp_path, 7))
    assert state["requests_done"] == 6 and not state["complete"]
    assert os.path.getsize(tmp_path / "killed.jsonl") >= state["output_bytes"]  # the 7th request's rows are past it
    _resumed_as_the_reference(tmp_path)


def test_a_run_state_of_the_earlier_format_is_resumed_and_converted(tmp_path: Path) -> None:
    """A run stopped by the apigen before the two-slot state (plain JSON) is carried on by this one."""
    path = _killed_mid_save(tmp_path, 9)
    path.write_bytes(orjson.dumps(saved_state(path), option=orjson.OPT_INDENT_2))  # as the earlier apigen wrote it
    _resumed_as_the_reference(tmp_path)
    assert is_slotted(path.read_bytes()) and saved_state(path)["complete"]


def _finished(runner: CliRunner, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    assert invoke(runner, *offline_run(tmp_path)).exit_code == 0
    path = tmp_path / "out.jsonl.apigen-run.json"
    state = saved_state(path)
    assert state["complete"] and state["output_bytes"] > 100
    return path, state


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: {**s, "complete": False, "requests_done": s["requests_total"] + 5}, "requests_done"),
        (lambda s: {**s, "complete": False, "requests_done": s["requests_total"] - 1, "output_bytes": s["output_bytes"] - 3}, "output_bytes"),
        (lambda s: {**s, "complete": False, "requests_done": "3"}, "requests_done"),
        (lambda s: {**s, "output_bytes": -1}, "output_bytes"),
        (lambda s: {**s, "seed": 1.5}, "seed"),
        (lambda s: {**s, "complete": "yes"}, "complete"),
        (lambda s: {**s, "requests_done": 1}, "complete"),
        (lambda s: {**s, "requests_total": 7, "requests_done": 7}, "requests_total"),
        (lambda s: {**s, "usage": {"offline": {"requests": "many"}}}, "usage"),
        (lambda s: {**s, "report": {"models": {"offline": {"requested": "x"}}}}, "report"),
        (lambda s: {**s, "extra": 1}, "extra"),
        (lambda s: [s], None),
    ],
    ids=["done>total", "mid-line", "string-done", "negative", "float-seed", "string-complete", "complete-but-short",
         "other-total", "usage", "report", "unknown-field", "not-an-object"],
)  # fmt: skip
def test_a_hand_edited_state_is_a_clear_error_naming_the_field(
    runner: CliRunner, tmp_path: Path, edit: Any, field: str | None
) -> None:
    path, state = _finished(runner, tmp_path)
    path.write_text(json.dumps(edit(state)))
    before = (tmp_path / "out.jsonl").read_bytes()
    result = invoke(runner, *offline_run(tmp_path))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: the run state") and "`--overwrite`" in result.stderr
    assert field is None or f"`{field}`" in result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == before  # nothing was cut or appended


def test_a_state_with_neither_slot_whole_is_an_error_naming_the_file(runner: CliRunner, tmp_path: Path) -> None:
    path, _ = _finished(runner, tmp_path)
    path.write_bytes(path.read_bytes()[: BLOCK + 40])  # the header and the start of the first slot: no whole state
    before = (tmp_path / "out.jsonl").read_bytes()
    result = invoke(runner, *offline_run(tmp_path))
    assert result.exit_code == 2, result.stderr
    assert f"error: the run state `{path}` is unreadable (neither of its two slots holds a whole state" in result.stderr
    assert "hint: pass `--overwrite` to start the run afresh" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == before


def test_damaged_lines_in_the_part_a_resume_keeps_are_an_error(runner: CliRunner, tmp_path: Path) -> None:
    path, state = _finished(runner, tmp_path)
    path.write_text(json.dumps({**state, "complete": False, "requests_done": state["requests_total"] - 1}))
    output = tmp_path / "out.jsonl"
    data = bytearray(output.read_bytes())
    second_line = data.index(b"\n") + 1
    data[second_line + 5 : second_line + 25] = b"\0" * 20  # a crash's zero-filled block, in the middle
    output.write_bytes(bytes(data))
    result = invoke(runner, *offline_run(tmp_path))
    assert result.exit_code == 2
    assert "`output_bytes`" in result.stderr and "line 2 is not a complete JSON object" in result.stderr
    assert invoke(runner, *offline_run(tmp_path), "--overwrite").exit_code == 0
    assert all(isinstance(row, dict) for row in read_jsonl(output))


# --- every writer of a file takes its lock: a stage command on a file a run (or another command) is writing ---


def _checked_rows(tmp_path: Path) -> Path:
    rows = tmp_path / "rows.jsonl"
    row = {
        "query": "q",
        "tools": [{"name": "f", "description": "d", "parameters": {}}],
        "answers": [{"name": "f", "arguments": {}}],
    }
    rows.write_text(json.dumps(row) + "\n")
    return rows


@pytest.mark.parametrize("target", ["shared.jsonl", "shared_rejects.jsonl"])
def test_a_stage_command_on_a_file_a_run_is_writing_is_refused_naming_the_run(tmp_path: Path, target: str) -> None:
    with reference_made(tmp_path, latency=0.0) as server:
        server.hold(after=3)  # the run is held mid-way, its files half written, until the stage command has been tried
        with subprocess.Popen(
            served_run(server, tmp_path, "shared"), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as run:
            try:
                assert server.wait_parked(1)
                clash = subprocess.run(
                    [*APIGEN, "format-check", str(_checked_rows(tmp_path)), "-o", str(tmp_path / target)],
                    env=env(), capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                assert run.poll() is None
            finally:
                server.release()
                run.wait(timeout=120)
            assert run.returncode == 0
    assert clash.returncode == 2, clash.stderr
    assert clash.stderr.startswith(f"error: `--output` names `{tmp_path / target}`, which another apigen command is writing")
    assert f"process {run.pid}" in clash.stderr and "hint: " in clash.stderr
    assert read_jsonl(tmp_path / "shared.jsonl") == read_jsonl(tmp_path / "reference.jsonl")  # the run's rows, whole
    assert read_jsonl(tmp_path / "shared_rejects.jsonl") == read_jsonl(tmp_path / "reference_rejects.jsonl")
    assert not (tmp_path / f"{target}.apigen-lock").exists()  # released, and removed, when the run ended


def test_two_stage_commands_on_one_output_do_not_mix_rows(tmp_path: Path) -> None:
    out = tmp_path / "generated.jsonl"
    generate = [*APIGEN, "generate", str(PROJECT / "sample_data" / "apis.jsonl"), "-n", "6", "--seed", "3", "-q"]
    with LLMServer(handler=pipeline_handler) as server:
        alone = subprocess.run(
            [*generate, "--base-url", server.url, "-m", "test-model", "--concurrency", "1", "-o", str(tmp_path / "alone.jsonl")],
            env=env(), capture_output=True, timeout=120,
        )  # fmt: skip
        assert alone.returncode == 0, alone.stderr
        server.hold(after=1)
        first_args = [*generate, "--base-url", server.url, "-m", "test-model", "--concurrency", "1", "-o", str(out)]
        with subprocess.Popen(first_args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as first:
            try:
                assert server.wait_parked(1)
                second = subprocess.run(
                    [*APIGEN, "format-check", str(_checked_rows(tmp_path)), "-o", str(out)],
                    env=env(), capture_output=True, text=True, timeout=60,
                )  # fmt: skip
            finally:
                server.release()
                first.wait(timeout=120)
        assert first.returncode == 0
    assert second.returncode == 2 and f"process {first.pid}" in second.stderr, second.stderr
    assert read_jsonl(out) == read_jsonl(tmp_path / "alone.jsonl")  # the first command's rows only, whole lines
