"""`apigen run --engine ray`: the same rows as the local engine, on a local Ray (2 CPUs, no dashboard).

Few and small on purpose: starting Ray takes seconds, and the machine is shared.
Select them with `pytest -m ray`, leave them out with `-m 'not ray'`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apigen_cli.config import LLMSettings
from apigen_cli.execution.calls import ExecutorOptions
from apigen_cli.pipeline import STAGE_NAMES, RunTarget, open_run
from apigen_cli.ray_engine import RayOptions
from apigen_cli.run_settings import ExecutionSettings, RunSettings
from apigen_cli.stages.sampling import GenerationSettings
from apigen_cli.stages.semantic_check import JudgeSettings

from .conftest import PROJECT, invoke, read_jsonl
from .doc_pages import page_with
from .llm_server import LLMServer
from .run_helpers import saved_state
from .test_shards import APIGEN, mixed_handler, run_args

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray", reason="the `ray` extra is not installed (make test installs it)")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module, stopped at its end whatever happens."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throw-away local cluster needs no token
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer(latency=0.02) as running:
        running.handler = mixed_handler
        yield running


def test_the_ray_engine_writes_the_local_engines_rows(
    local_ray: None, runner: CliRunner, server: LLMServer, tmp_path: Path
) -> None:
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert invoke(runner, *run_args(server, local, "--report", str(tmp_path / "local.json"))).exit_code == 0
    result = invoke(
        runner, *run_args(server, remote, "--engine", "ray", "--workers", "1", "--report", str(tmp_path / "ray.json"))
    )
    assert result.exit_code == 0, result.stderr
    assert remote.read_bytes() == local.read_bytes()  # row for row, in plan order
    assert (tmp_path / "ray_rejects.jsonl").read_bytes() == (tmp_path / "local_rejects.jsonl").read_bytes()
    reports = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("local", "ray")]
    assert reports[1]["total"] == reports[0]["total"] and reports[1]["top_reasons"] == reports[0]["top_reasons"]
    assert reports[1]["tokens"]["test-model"] == reports[0]["tokens"]["test-model"]  # the actors' usage reached the driver
    assert {row["reason"] for row in read_jsonl(tmp_path / "ray_rejects.jsonl")} >= {"llm_error", "semantic_mismatch"}
    state = saved_state(Path(f"{remote}.apigen-run.json"))
    assert state["complete"] and state["requests_done"] == 20
    assert ray.is_initialized()  # the engine used the Ray it found, and left it running for its owner


def test_a_run_killed_on_the_local_engine_resumes_on_ray_as_a_shard(
    local_ray: None, runner: CliRunner, server: LLMServer, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.jsonl"
    assert invoke(runner, *run_args(server, whole, count=90)).exit_code == 0
    first, second = tmp_path / "s0.jsonl", tmp_path / "s1.jsonl"
    assert invoke(runner, *run_args(server, first, "--shard", "0/2", count=90)).exit_code == 0
    command = [*APIGEN, *run_args(server, second, "--shard", "1/2", "--concurrency", "1", count=90)]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not second.exists() or second.read_bytes().count(b"\n") < 6):
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    done_before = saved_state(Path(f"{second}.apigen-run.json"))["requests_done"]
    assert 0 < done_before < 15
    log = tmp_path / "ray.log.jsonl"
    resumed = invoke(runner, *run_args(server, second, "--shard", "1/2", "--engine", "ray", "--log-llm", str(log), count=90))
    assert resumed.exit_code == 0, resumed.stderr
    generated = [entry["key"] for entry in read_jsonl(log) if entry["key"].count("-") == 2]
    assert generated and min(int(key.rsplit("-", 1)[1]) for key in generated) >= 15 + done_before  # only what was left
    merged = invoke(runner, "merge", str(tmp_path / "m.jsonl"), str(first), str(second), "--rejects", str(tmp_path / "mr.jsonl"))
    assert merged.exit_code == 0, merged.stderr
    assert (tmp_path / "m.jsonl").read_bytes() == whole.read_bytes()
    assert (tmp_path / "mr.jsonl").read_bytes() == (tmp_path / "whole_rejects.jsonl").read_bytes()


def test_engine_flags_are_checked_before_any_work(runner: CliRunner, tmp_path: Path) -> None:
    common = ["run", "apis.jsonl", "-m", "offline", "-J", "offline", "-o", str(tmp_path / "o.jsonl")]
    wrong = invoke(runner, *common, "--engine", "spark")
    assert wrong.exit_code == 2 and wrong.stderr.splitlines()[0] == "error: `--engine` is `spark`, not one of: local, ray"
    lonely = invoke(runner, *common, "--ray-address", "ray://head:10001")
    assert lonely.exit_code == 2 and lonely.stderr.splitlines()[0] == "error: `--ray-address` needs `--engine ray`"
    assert not (tmp_path / "o.jsonl").exists()


def test_without_the_extra_the_ray_engine_says_how_to_install_it(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "ray").mkdir()
    (blocker / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    apis = Path(__file__).resolve().parent.parent / "sample_data" / "apis.jsonl"
    done = subprocess.run(
        [*APIGEN, "run", str(apis), "-m", "offline", "-J", "offline", "--engine", "ray", "-o", str(tmp_path / "o.jsonl")],
        env={**os.environ, "PYTHONPATH": str(blocker)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == "error: `--engine ray` needs Ray, which is not installed"
    assert done.stderr.splitlines()[2] == "hint: install it with `pip install 'apigen-cli[ray]'`"
    assert sys.executable  # the subprocess ran this very interpreter


def test_the_readme_ray_examples_run_as_written(local_ray: None, server: LLMServer, tmp_path: Path) -> None:
    from .test_shards import _workspace

    section = (
        page_with("## On a Ray cluster: `--engine ray`").split("## On a Ray cluster: `--engine ray`", 1)[1].split("\n## ", 1)[0]
    )
    [block] = [part.split("```", 1)[0] for part in section.split("```sh\n")[1:]]
    environment = _workspace(tmp_path)
    # RAY_ADDRESS is the test's own local Ray: the commands join it as a cluster's drivers do.
    environment |= {"RAY_ADDRESS": ray.get_runtime_context().gcs_address, "LLM_URL": server.url, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(["sh", "-c", block], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(read_jsonl(tmp_path / "out" / "ray.jsonl")) > 20
    local = subprocess.run(
        [*APIGEN, "run", "sample_data/apis.jsonl", "--functions", "sample_data/functions", "--base-url", server.url]
        + ["-m", "my-model", "-J", "my-model", "-n", "240", "--seed", "7", "-o", "local.jsonl", "-q"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert local.returncode == 0, local.stderr
    assert (tmp_path / "out" / "ray-cluster.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()


# --- the execution check's actors: one worker pool each, for the actor's life, gone after the run ---

PID_RECORDER = """
import os
from pathlib import Path

# Each worker process imports the library once, when it starts: one line per worker.
with open(Path(__file__).with_name("worker-pids.txt"), "a") as pids:
    pids.write(f"{os.getpid()} {os.getppid()}\\n")
"""


def _recording_functions(tmp_path: Path) -> Path:
    """The sample functions, plus a module whose import records the worker's pid (and its parent's)."""
    functions = tmp_path / "functions"
    shutil.copytree(PROJECT / "sample_data" / "functions", functions)
    (functions / "zz_record_pid.py").write_text(PID_RECORDER)
    return functions


def _workers_started(functions: Path) -> list[tuple[int, int]]:
    lines = (functions / "worker-pids.txt").read_text().split()
    return [(int(pid), int(parent)) for pid, parent in zip(lines[::2], lines[1::2], strict=True)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its parent has not read its status yet


def _wait_until_gone(pids: list[int], seconds: float = 60) -> list[int]:
    """The pids still alive after ``seconds`` (an actor ends a moment after the run lets go of it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _offline_settings(functions: Path, count: int) -> RunSettings:
    return RunSettings(
        apis=str(PROJECT / "sample_data" / "apis.jsonl"),
        llm=LLMSettings(models=("offline",), seed=4, concurrency=2),
        judge=JudgeSettings(judges=("offline",)),
        generation=GenerationSettings(count=count),
        execution=ExecutionSettings(functions=str(functions), options=ExecutorOptions(workers=1)),
    )


class _Counting:
    """An ``observe`` that counts, per stage, the rows that left it and the ones it rejected."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    def __call__(self, name: str, rows: Iterator[dict[str, object]]) -> Iterator[dict[str, object]]:
        mine = self.counts.setdefault(name, [0, 0])
        for row in rows:
            mine[0] += 1
            mine[1] += row.get("rejected_by") == name.replace("-", "_")
            yield row


def test_each_execution_actor_keeps_one_worker_pool_for_all_its_batches_and_closes_it(local_ray: None, tmp_path: Path) -> None:
    functions = _recording_functions(tmp_path)
    settings = _offline_settings(functions, count=60)
    out = tmp_path / "ray.jsonl"
    with open_run(settings, RunTarget(str(out), str(tmp_path / "rejects.jsonl")), ray=RayOptions(batch_requests=2)) as session:
        outcome = session.execute()
    assert outcome.report.total().requested == 60
    started = _workers_started(functions)
    on_ray = [pid for pid, parent in started if parent != os.getpid()]  # not the driver's own check that the library loads
    assert len(on_ray) == 1  # one actor, one worker (`--workers 1`), for the 10 batches of the run
    assert _wait_until_gone([pid for pid, _parent in started]) == []
    with open_run(settings, RunTarget(str(tmp_path / "local.jsonl"), str(tmp_path / "local_rejects.jsonl"))) as session:
        session.execute()
    assert out.read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_a_run_that_starts_its_own_ray_leaves_no_worker_process_behind(tmp_path: Path) -> None:
    functions = _recording_functions(tmp_path)
    environment = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    apis = str(PROJECT / "sample_data" / "apis.jsonl")
    command = [*APIGEN, "run", apis, "--functions", str(functions), "-m", "offline", "-J", "offline", "-n", "30"]
    done = subprocess.run(
        [*command, "--workers", "1", "--seed", "2", "--engine", "ray", "-o", str(tmp_path / "o.jsonl")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # nothing of Ray's own logs in a run that went well: not its token note, not the error-level line
    # about actor restarts (ray-project/ray#57733); every line is apigen's
    ray_logs = [line for line in done.stderr.splitlines() if re.match(r"^\[?\d{4}-\d\d-\d\d[ T]", line)]
    assert ray_logs == [], ray_logs
    assert done.stderr.splitlines()[0] == (
        "ray: starting a local Ray (no `--ray-address`, no RAY_ADDRESS); "
        "the actors take seconds to start, then rows come back a batch at a time"
    )
    assert "Progress bars" not in done.stderr and "Traceback" not in done.stderr  # Ray Data's own bars' note is gone
    assert "run: " in done.stderr.splitlines()[-1]  # then the summary, as on the local engine
    started = _workers_started(functions)
    assert len(started) == 2  # the driver's check that the library loads, and the one execution actor's worker
    assert _wait_until_gone([pid for pid, _parent in started]) == []
    assert len(read_jsonl(tmp_path / "o.jsonl")) > 10


def test_the_progress_bars_count_the_rows_of_a_ray_run_as_the_local_engines(local_ray: None, tmp_path: Path) -> None:
    settings = _offline_settings(_recording_functions(tmp_path), count=45)
    seen = {}
    for name, ray_options in (("local", None), ("ray", RayOptions(batch_requests=3))):
        counting = _Counting()
        with open_run(settings, RunTarget(str(tmp_path / f"{name}.jsonl")), ray=ray_options) as session:
            session.execute(observe=counting)
        seen[name] = counting.counts
    assert set(seen["ray"]) == set(STAGE_NAMES)
    assert seen["ray"] == seen["local"]
    assert seen["ray"]["generate"][0] == 45 and seen["ray"]["exec-check"][1] > 0  # every row, and the rejects where they fell
