"""`--shard K/N` and `apigen merge`: N shards write, together, exactly the rows of one unsharded run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from apigen_cli.config import resolve
from apigen_cli.stages.sampling import shard_requests

from . import run_helpers
from .conftest import invoke, read_jsonl
from .doc_pages import page_with
from .llm_server import LLMServer, Received, Reply
from .run_helpers import APIGEN as APIGEN  # test_ray_engine.py takes it from here
from .run_helpers import APIS, SAMPLE, apigen_process, kill_9_once_written, saved_state
from .scripted_model import generation_reply, is_judge


def _hash(request: Received) -> int:
    return int.from_bytes(hashlib.blake2b(request.raw, digest_size=4).digest(), "big")


def mixed_handler(request: Received) -> Reply:
    """The scripted model, with some requests refused for good and some rows judged out: every kind of row."""
    if is_judge(request):
        if _hash(request) % 6 == 0:
            return Reply.chat('{"thought": "the calls do not answer the query", "pass": "no"}')
        return Reply.chat('{"thought": "", "pass": "yes"}')
    if _hash(request) % 7 == 0:
        return Reply.error(400, "this prompt is refused")
    return generation_reply(request)


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer(handler=mixed_handler) as running:
        yield running


def run_args(server: LLMServer, out: Path, *extra: str, count: int = 60, seed: int = 5) -> list[str]:
    """This file's run: one attempt a request (a refused one is a row at once), the rejects beside ``out``."""
    rejects = out.with_name(out.stem + "_rejects.jsonl")
    return run_helpers.run_args(
        "--max-attempts", "1", *extra, server=server, count=count, seed=seed, out=out, rejects=rejects, quiet=True
    )


def by_id(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(rows, key=lambda row: str(row["id"]))


@pytest.mark.parametrize(("total", "count"), [(20, 3), (20, 1), (7, 7), (3, 5), (100, 8)])
def test_shards_cut_the_plan_into_contiguous_blocks_that_cover_it_once(total: int, count: int) -> None:
    blocks = [shard_requests(total, (index, count)) for index in range(count)]
    assert [index for block in blocks for index in block] == list(range(total))
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_the_shards_together_are_the_unsharded_run_row_for_row(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    assert invoke(runner, *run_args(server, whole, "--report", str(tmp_path / "whole.json"))).exit_code == 0
    shards = [tmp_path / f"shard-{index}.jsonl" for index in range(3)]
    for index, out in enumerate(shards):
        result = invoke(runner, *run_args(server, out, "--shard", f"{index}/3"))
        assert result.exit_code == 0, result.stderr
        state = saved_state(Path(f"{out}.apigen-run.json"))
        assert (
            state["shard"] == [index, 3] and state["complete"] and state["requests_total"] == len(shard_requests(20, (index, 3)))
        )

    kept, rejected = read_jsonl(whole), read_jsonl(tmp_path / "whole_rejects.jsonl")
    union = [row for out in shards for row in read_jsonl(out)]
    union_rejects = [row for out in shards for row in read_jsonl(out.with_name(out.stem + "_rejects.jsonl"))]
    assert by_id(union) == by_id(kept) and by_id(union_rejects) == by_id(rejected)
    reasons = {row["reason"] for row in rejected}
    assert {"llm_error", "semantic_mismatch"} <= reasons and len(kept) > 10  # every kind of row is there

    merged = invoke(
        runner,
        "merge",
        str(tmp_path / "merged.jsonl"),
        *map(str, reversed(shards)),  # any order: the states say which shard is which
        "--rejects",
        str(tmp_path / "merged_rejects.jsonl"),
        "--report",
        str(tmp_path / "merged.json"),
    )
    assert merged.exit_code == 0, merged.stderr
    assert merged.stdout == ""
    assert (tmp_path / "merged.jsonl").read_bytes() == whole.read_bytes()  # plan order, byte for byte
    assert (tmp_path / "merged_rejects.jsonl").read_bytes() == (tmp_path / "whole_rejects.jsonl").read_bytes()
    reports = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("whole", "merged")]
    assert reports[1]["total"] == reports[0]["total"] and reports[1]["top_reasons"] == reports[0]["top_reasons"]
    assert reports[1]["seed"] == 5 and reports[1]["tokens"]["test-model"]["requests"] >= 20
    assert merged.stderr.splitlines()[-1] == (
        f"merge: 3 shards, 20 requests, seed 5: {len(kept)} verified of 60 requested into `{tmp_path / 'merged.jsonl'}`"
    )
    # The merged files are a finished unsharded run: the same command without --shard finds nothing to do.
    again = invoke(runner, *[arg for arg in run_args(server, tmp_path / "merged.jsonl") if arg != "-q"])
    assert again.exit_code == 0 and "already holds this run, complete" in again.stderr


def test_generate_shards_in_shard_order_are_the_unsharded_output(runner: CliRunner, tmp_path: Path) -> None:
    common = ["generate", APIS, "-m", "offline", "-n", "50", "--seed", "9", "-q"]
    whole = invoke(runner, *common)
    parts = [invoke(runner, *common, "--shard", f"{index}/4") for index in range(4)]
    assert whole.exit_code == 0 and all(part.exit_code == 0 for part in parts)
    assert "".join(part.stdout for part in parts) == whole.stdout  # `cat` of the shards is the run
    ids = [json.loads(line)["request_id"] for line in parts[2].stdout.splitlines()]
    block = shard_requests(17, (2, 4))
    assert sorted(set(ids)) == [f"gen-9-{index:05d}" for index in block]  # ids keep the plan's numbering


def test_a_killed_shard_resumes_on_its_own_and_an_incomplete_shard_is_not_merged(runner: CliRunner, tmp_path: Path) -> None:
    with LLMServer(latency=0.05, handler=mixed_handler) as server:
        whole = tmp_path / "whole.jsonl"
        assert invoke(runner, *run_args(server, whole, count=90)).exit_code == 0
        first, second = tmp_path / "shard-0.jsonl", tmp_path / "shard-1.jsonl"
        before_the_first_shard = server.count
        assert invoke(runner, *run_args(server, first, "--shard", "0/2", count=90)).exit_code == 0
        command = run_args(server, second, "--shard", "1/2", "--concurrency", "2", count=90)
        requests_of_the_first_shard = server.count - before_the_first_shard
        kill_9_once_written(command, second, lines=6, server=server, answered=requests_of_the_first_shard * 2 // 3)
        state = saved_state(Path(f"{second}.apigen-run.json"))
        assert state["shard"] == [1, 2] and 0 < state["requests_done"] < state["requests_total"] == 15

        early = invoke(runner, "merge", str(tmp_path / "merged.jsonl"), str(first), str(second))
        assert early.exit_code == 2 and not (tmp_path / "merged.jsonl").exists()
        assert early.stderr.splitlines()[0] == (
            f"error: shard 1/2 (`{second}`) is incomplete: {state['requests_done']} of 15 requests are done"
        )
        assert early.stderr.splitlines()[2] == "hint: rerun that shard's own `apigen run` command: it resumes where it stopped"

        other_shard = invoke(runner, *run_args(server, second, "--shard", "0/2", count=90))
        assert other_shard.exit_code == 2
        assert f"error: `{second}` holds shard 1/2 of this run, not shard 0/2" in other_shard.stderr
        unsharded = invoke(runner, *run_args(server, second, count=90))
        assert unsharded.exit_code == 2 and "holds shard 1/2 of this run, not the whole run (no shard)" in unsharded.stderr

        resumed = apigen_process(command)
        assert resumed.returncode == 0, resumed.stderr
    merged = invoke(
        runner, "merge", str(tmp_path / "merged.jsonl"), str(first), str(second), "--rejects", str(tmp_path / "r.jsonl")
    )
    assert merged.exit_code == 0, merged.stderr
    assert read_jsonl(tmp_path / "merged.jsonl") == read_jsonl(whole)  # none lost, none twice
    assert read_jsonl(tmp_path / "r.jsonl") == read_jsonl(tmp_path / "whole_rejects.jsonl")


@pytest.fixture
def offline_shards(runner: CliRunner, tmp_path: Path) -> list[Path]:
    """Three complete shards of a small offline run, with rejects."""
    outs = []
    for index in range(3):
        out = tmp_path / f"s{index}.jsonl"
        common = run_helpers.run_args(count=18, seed=2)
        result = invoke(runner, *common, "--shard", f"{index}/3", "-o", str(out), "--rejects", str(tmp_path / f"r{index}.jsonl"))
        assert result.exit_code == 0, result.stderr
        outs.append(out)
    return outs


def _error(result: object) -> tuple[str, str]:
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert result.exit_code == 2 and result.stdout == "", lines  # type: ignore[attr-defined]
    return lines[0], lines[2]


def test_merge_names_the_missing_the_doubled_and_the_foreign_shard(
    runner: CliRunner, tmp_path: Path, offline_shards: list[Path]
) -> None:
    out = str(tmp_path / "m.jsonl")
    first, second, third = map(str, offline_shards)
    assert _error(invoke(runner, "merge", out, first, third)) == (
        "error: shard 1/3 of the run is missing: 2 of 3 shards are given",
        "hint: run the missing shards with the same command, and give their outputs too",
    )
    assert _error(invoke(runner, "merge", out, first, second, first))[0] == (
        f"error: shard 0/3 (`{first}`) and `{first}` are both shard 0/3"
    )
    foreign = tmp_path / "foreign.jsonl"
    made = invoke(
        runner,
        *run_helpers.run_args(count=18, seed=3),
        *["--shard", "1/3", "-o", str(foreign)],
    )
    assert made.exit_code == 0
    assert _error(invoke(runner, "merge", out, first, str(foreign), third)) == (
        f"error: shard 1/3 (`{foreign}`) is a shard of another run than shard 0/3 (`{first}`)",
        "hint: give the shards of one run: the same command, inputs and seed, the shard number aside",
    )
    assert _error(invoke(runner, "merge", out, first, second, third, "--rejects", str(tmp_path / "mr.jsonl"), str(foreign)))[
        0
    ].startswith("error: shard 1/3 (")
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"id": "x"}\n')
    assert _error(invoke(runner, "merge", out, first, str(plain)))[0] == (
        f"error: `{plain}` has no run state beside it (`{plain}.apigen-run.json`), so it is not the output of a sharded `apigen run`"
    )
    assert _error(invoke(runner, "merge", out, first, str(tmp_path / "nowhere.jsonl")))[0] == (
        f"error: `{tmp_path / 'nowhere.jsonl'}` does not exist or is not a file"
    )
    assert not Path(out).exists()


def test_merge_refuses_cut_shards_clobbering_and_rejects_it_cannot_give(
    runner: CliRunner, tmp_path: Path, offline_shards: list[Path]
) -> None:
    shards = list(map(str, offline_shards))
    out = tmp_path / "m.jsonl"
    third = offline_shards[2]
    data = third.read_bytes()
    third.write_bytes(data[:-10])
    error, hint = _error(invoke(runner, "merge", str(out), *shards))
    assert (
        error
        == f"error: `{third}` of shard 2/3 (`{third}`) holds {len(data) - 10} bytes, but the shard's run state says it finished with {len(data)}"
    )
    third.write_bytes(data)

    assert invoke(runner, "merge", str(out), *shards).exit_code == 0
    assert (
        "the rejects of 3 shards were not merged: pass `--rejects FILE` to merge them"
        in invoke(runner, "merge", str(out), *shards, "--overwrite").stderr
    )
    assert _error(invoke(runner, "merge", str(out), *shards)) == (
        f"error: `{out}` already exists",
        "hint: pass `--overwrite` to replace it, or merge into a new file",
    )
    assert _error(invoke(runner, "merge", shards[0], *shards))[0] == (
        f"error: `OUT` and `SHARD_OUTPUTS` both name `{shards[0]}`: it would be overwritten while it is read"
    )
    assert _error(invoke(runner, "merge", "-", *shards))[0] == "error: `merge` writes a file, not standard output"

    no_rejects = tmp_path / "n1.jsonl"
    common = run_helpers.run_args(count=18, seed=2)
    assert invoke(runner, *common, "--shard", "1/3", "-o", str(no_rejects)).exit_code == 0
    assert _error(
        invoke(
            runner,
            "merge",
            str(tmp_path / "m2.jsonl"),
            shards[0],
            str(no_rejects),
            shards[2],
            "--rejects",
            str(tmp_path / "x.jsonl"),
        )
    ) == (
        f"error: shard 1/3 (`{no_rejects}`) kept no rejects file, so merged rejects would lack its rejected rows",
        "hint: leave out `--rejects`, or run that shard again with a rejects file",
    )


def test_the_shard_setting_is_k_of_n_counted_from_zero_and_needs_a_seed(runner: CliRunner, tmp_path: Path) -> None:
    assert resolve({"shard": "3/4"}).values["shard"] == (3, 4)
    assert resolve(environ={"APIGEN_SHARD": "0/2"}).values["shard"] == (0, 2)
    common = run_helpers.run_args(count=6, out=tmp_path / "o.jsonl")
    for bad in ("4/4", "1", "a/b", "-1/3", "0/0"):
        assert _error(invoke(runner, *common, "--seed", "1", "--shard", bad)) == (
            f"error: `--shard` takes K/N with 0 <= K < N (shards are counted from 0), not `{bad}`",
            "hint: for 4 shards give `--shard 0/4` ... `--shard 3/4`",
        )
    assert _error(invoke(runner, *common, "--shard", "1/2")) == (
        "error: `--shard 1/2` needs `--seed`: every shard must cut the same plan",
        "hint: pass the same `--seed N` to every shard",
    )
    assert _error(invoke(runner, "generate", APIS, "-m", "offline", "--shard", "0/2"))[0].startswith("error: `--shard 0/2` needs")
    assert _error(invoke(runner, *common, "--seed", "1", "--shard", "1/2", "--dedup"))[1] == (
        "hint: leave out `--dedup`, and run `apigen dedup` over the merged dataset"
    )
    assert not (tmp_path / "o.jsonl").exists()
    shown = json.loads(
        next(
            line for line in invoke(runner, "config", "show", "--json", "--shard", "2/8").stdout.splitlines() if '"shard"' in line
        )
    )
    assert shown == {"name": "shard", "value": "2/8", "source": "flag --shard"}


# --- the README's Slurm job array and Kubernetes Indexed Job, run as written ---------------

README_SECTION = (
    page_with("## Past one machine: shards and merge").split("## Past one machine: shards and merge", 1)[1].split("\n## ", 1)[0]
)


def _blocks(language: str) -> list[str]:
    return [block.split("```", 1)[0] for block in README_SECTION.split(f"```{language}\n")[1:]]


def _workspace(tmp_path: Path) -> dict[str, str]:
    """A folder like the shared volume (sample_data/ in it) and a PATH whose `apigen` is this checkout's."""
    (tmp_path / "sample_data").symlink_to(SAMPLE)
    shim = tmp_path / "bin" / "apigen"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m apigen_cli \"$@\"\n")
    shim.chmod(0o755)
    return {**os.environ, "NO_COLOR": "1", "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}


def _run_shards(commands: list[tuple[str, dict[str, str]]], cwd: Path) -> None:
    """Start every shard at once, as the scheduler would, and wait for all."""
    processes = [
        subprocess.Popen(["sh", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for script, env in commands
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr


def _unsharded(server: LLMServer, cwd: Path, environment: dict[str, str]) -> bytes:
    command = (
        f"apigen run sample_data/apis.jsonl --functions sample_data/functions --base-url {server.url} -m my-model -J my-model"
        " -n 240 --seed 7 -o whole.jsonl -q"
    )
    done = subprocess.run(["sh", "-c", command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return (cwd / "whole.jsonl").read_bytes()


def test_the_readme_slurm_array_and_merge_run_as_written(server: LLMServer, tmp_path: Path) -> None:
    [script, merge] = _blocks("sh")
    assert script.startswith("#!/bin/sh\n#SBATCH") and "#SBATCH --array=0-3" in script and "\nN=4\n" in script
    environment = _workspace(tmp_path)
    _run_shards([(script, {**environment, "SLURM_ARRAY_TASK_ID": str(k), "LLM_URL": server.url}) for k in range(4)], tmp_path)
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == [f"shard-{k}" for k in range(4)]
    done = subprocess.run(["sh", "-c", merge], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1].startswith("merge: 4 shards, 80 requests, seed 7: ")
    assert (tmp_path / "out" / "dataset.jsonl").read_bytes() == _unsharded(server, tmp_path, environment)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["total"]["requested"] == 240
    assert read_jsonl(tmp_path / "out" / "rejects.jsonl")


def test_the_readme_kubernetes_indexed_job_runs_as_written(server: LLMServer, tmp_path: Path) -> None:
    [manifest] = _blocks("yaml")
    job = yaml.safe_load(manifest)
    spec = job["spec"]
    assert (job["kind"], spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Job", "Indexed", 4, 4)
    [container] = spec["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"] and container["workingDir"] == "/data"
    [script] = container["args"]
    assert '--shard "$JOB_COMPLETION_INDEX/4"' in script
    assert [variable["name"] for variable in container["env"]] == ["LLM_URL"]
    environment = _workspace(tmp_path)  # the volume: the pods' working folder
    # What the Job controller does: one pod per index, JOB_COMPLETION_INDEX set, the manifest's env (our server's URL).
    _run_shards([(script, {**environment, "JOB_COMPLETION_INDEX": str(k), "LLM_URL": server.url}) for k in range(4)], tmp_path)
    [_, merge] = _blocks("sh")
    done = subprocess.run(["sh", "-c", merge], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "dataset.jsonl").read_bytes() == _unsharded(server, tmp_path, environment)


def test_more_shards_than_requests_leaves_some_empty_and_still_merges(runner: CliRunner, tmp_path: Path) -> None:
    common = run_helpers.run_args(count=9, seed=3, quiet=True)
    outs = []
    for index in range(5):  # 3 requests, 5 shards: two shards have one request, three have none
        out = tmp_path / f"s{index}.jsonl"
        assert (
            invoke(
                runner, *common, "--shard", f"{index}/5", "-o", str(out), "--rejects", str(tmp_path / f"r{index}.jsonl")
            ).exit_code
            == 0
        )
        outs.append(out)
    assert [saved_state(Path(f"{out}.apigen-run.json"))["requests_total"] for out in outs] == [0, 1, 0, 1, 1]
    merged = invoke(runner, "merge", str(tmp_path / "m.jsonl"), *map(str, outs), "--rejects", str(tmp_path / "mr.jsonl"))
    assert merged.exit_code == 0, merged.stderr
    assert invoke(runner, *common, "-o", str(tmp_path / "w.jsonl"), "--rejects", str(tmp_path / "wr.jsonl")).exit_code == 0
    assert (tmp_path / "m.jsonl").read_bytes() == (tmp_path / "w.jsonl").read_bytes()
    assert (tmp_path / "mr.jsonl").read_bytes() == (tmp_path / "wr.jsonl").read_bytes()
