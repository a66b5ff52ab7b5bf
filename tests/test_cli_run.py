"""`apigen run`: the same rows as the shell pipe, a true report, and resuming after kill -9."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from apigen_cli.checkpoint import fingerprint, state_path

from .conftest import invoke, read_jsonl
from .llm_server import LLMServer, Reply
from .run_helpers import APIGEN, APIS, FUNCTIONS, SAMPLE, apigen_process, cli_env, kill_9_once_written, run_args, saved_state
from .scripted_model import pipeline_handler


def test_run_gives_the_same_rows_as_the_shell_pipe(tmp_path: Path) -> None:
    flags = "-n 90 --seed 21"
    run = apigen_process(
        run_args(*flags.split(), out=tmp_path / "run.jsonl", rejects=tmp_path / "run_rejects.jsonl", quiet=True),
        PYTHONHASHSEED="1",
    )
    assert run.returncode == 0, run.stderr
    apigen = " ".join(APIGEN)
    pipe = (
        f"{apigen} generate {APIS} -m offline {flags} -q --rejects {tmp_path}/r0.jsonl"
        f" | {apigen} format-check -q --rejects {tmp_path}/r1.jsonl"
        f" | {apigen} exec-check --functions {FUNCTIONS} -q --rejects {tmp_path}/r2.jsonl"
        f" | {apigen} semantic-check -J offline -q --rejects {tmp_path}/r3.jsonl > {tmp_path}/pipe.jsonl"
    )
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipe], env=cli_env(PYTHONHASHSEED="2"), capture_output=True, text=True
    )
    assert piped.returncode == 0, piped.stderr
    assert read_jsonl(tmp_path / "run.jsonl") == read_jsonl(tmp_path / "pipe.jsonl")
    run_rejects = sorted(json.dumps(row, sort_keys=True) for row in read_jsonl(tmp_path / "run_rejects.jsonl"))
    pipe_rejects = sorted(json.dumps(row, sort_keys=True) for n in range(4) for row in read_jsonl(tmp_path / f"r{n}.jsonl"))
    assert run_rejects == pipe_rejects
    assert len(read_jsonl(tmp_path / "run.jsonl")) > 20 and len(run_rejects) > 5  # both sides carry real rows


def test_the_report_matches_the_rows_written(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects, report = tmp_path / "data.jsonl", tmp_path / "rej.jsonl", tmp_path / "report.json"
    result = invoke(runner, *run_args(count=60, seed=3, out=out, rejects=rejects, report=report))
    assert result.exit_code == 0, result.stderr
    data = json.loads(report.read_text())
    kept, rejected = read_jsonl(out), read_jsonl(rejects)
    total = data["total"]
    assert total["requested"] == 60 and total["verified"] == len(kept)
    by_stage = {
        stage: sum(1 for row in rejected if row["rejected_by"] == stage)
        for stage in ("format_check", "exec_check", "semantic_check")
    }
    assert (total["failed_execution"], total["failed_semantic"]) == (by_stage["exec_check"], by_stage["semantic_check"])
    assert total["failed_format"] == 60 - len(kept) - by_stage["exec_check"] - by_stage["semantic_check"]
    assert data["top_reasons"]["exec_check"] == dict(
        __import__("collections").Counter(row["reason"] for row in rejected if row["rejected_by"] == "exec_check").most_common(5)
    )
    assert "offline" in data["models"] and data["seed"] == 3
    assert f"run: {len(kept)} verified of 60 requested" in result.stderr
    stats = invoke(runner, "stats", str(out), str(rejects), "--json")
    assert json.loads(stats.stdout)["total"] == total


def test_the_report_counts_every_row_when_rejects_are_dropped(runner: CliRunner, tmp_path: Path) -> None:
    with_file = invoke(
        runner,
        *run_args(count=45, seed=4, out=tmp_path / "a.jsonl", rejects=tmp_path / "a_rej.jsonl", report=tmp_path / "a.json"),
    )
    dropped = invoke(runner, *run_args(count=45, seed=4, out=tmp_path / "b.jsonl", report=tmp_path / "b.json"))
    assert with_file.exit_code == dropped.exit_code == 0
    first, second = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    assert second["total"]["requested"] == 45
    assert first["total"] == second["total"] and first["top_reasons"] == second["top_reasons"]
    assert "rejected rows were dropped: pass `--rejects FILE`" in dropped.stderr


def test_a_finished_run_is_not_redone_and_other_settings_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    args = run_args(count=9, seed=3, out=tmp_path / "d.jsonl")
    assert invoke(runner, *args).exit_code == 0
    before = (tmp_path / "d.jsonl").read_bytes()
    again = invoke(runner, *args)
    assert again.exit_code == 0 and "already holds this run, complete" in again.stderr
    assert (tmp_path / "d.jsonl").read_bytes() == before
    more = run_args(count=12, out=tmp_path / "d.jsonl")  # and no --seed (the seed changes too; the count is named first)
    other = invoke(runner, *more)
    assert other.exit_code == 2 and "holds a run made with other settings: `count` (was 9, now 12)" in other.stderr
    assert invoke(runner, *more, "--overwrite").exit_code == 0


def test_a_run_planned_by_an_earlier_sampler_is_refused_by_name(runner: CliRunner, tmp_path: Path) -> None:
    """Runs made before plans had a version (their settings lack it): the same seed draws other requests now."""
    out = tmp_path / "d.jsonl"
    args = run_args(count=9, seed=3, out=out)
    assert invoke(runner, *args).exit_code == 0
    state_file = Path(state_path(str(out)))
    state = saved_state(state_file)
    del state["settings"]["plan_version"]
    state["fingerprint"] = fingerprint(state["settings"], [str(APIS), str(FUNCTIONS)])  # as the earlier apigen made it
    state_file.write_text(json.dumps(state))
    before = out.read_bytes()
    refused = invoke(runner, *args)
    assert refused.exit_code == 2
    assert (
        f"error: `{out}` holds a run planned by an earlier version of apigen's sampler; this one (version 2) draws"
        " other APIs and examples for the same seed, so the run cannot be resumed"
    ) in refused.stderr
    assert "hint: pass `--overwrite` to start afresh" in refused.stderr
    assert out.read_bytes() == before
    assert invoke(runner, *args, "--overwrite").exit_code == 0


def test_a_refused_resume_names_a_changed_input_and_a_failed_start_locks_nothing(runner: CliRunner, tmp_path: Path) -> None:
    apis = tmp_path / "apis.jsonl"
    apis.write_bytes((SAMPLE / "apis.jsonl").read_bytes())
    out = tmp_path / "d.jsonl"
    args = run_args(apis=apis, count=6, seed=3, out=out)
    assert invoke(runner, *args).exit_code == 0
    apis.write_bytes(apis.read_bytes() + b"\n")  # same settings, other bytes
    changed = invoke(runner, *args)
    assert changed.exit_code == 2
    assert (
        "holds a run made with other inputs (the API library, `--examples`, `--functions` or `--prompts` changed"
        in changed.stderr
    )

    # A run that stopped before writing a row (here: its endpoint refuses everything) holds nothing to resume.
    fresh = tmp_path / "fresh.jsonl"
    with LLMServer(handler=lambda _request: Reply.error(401, "bad key")) as server:
        failed = invoke(runner, *run_args(base_url=server.url, model="m", count=3, out=fresh))
    assert failed.exit_code == 2 and (not fresh.exists() or fresh.read_bytes() == b"")
    other = invoke(runner, *run_args(count=3, out=fresh))
    assert other.exit_code == 0, other.stderr


def test_a_finished_run_whose_output_is_gone_is_not_called_complete(runner: CliRunner, tmp_path: Path) -> None:
    args = run_args(count=6, seed=3, out=tmp_path / "d.jsonl")
    assert invoke(runner, *args).exit_code == 0
    (tmp_path / "d.jsonl").unlink()
    again = invoke(runner, *args)
    assert again.exit_code == 2 and "is missing or shorter than the run state beside it says" in again.stderr
    assert "hint: pass `--overwrite`" in again.stderr


def test_output_that_is_not_a_regular_file_is_written_but_not_resumable(runner: CliRunner, tmp_path: Path) -> None:
    args = run_args(count=6, seed=3, out=os.devnull)
    for _ in range(2):
        result = invoke(runner, *args)
        assert result.exit_code == 0 and "already holds this run" not in result.stderr
    assert not os.path.exists(os.devnull + ".apigen-run.json")


def test_a_bad_report_path_fails_before_the_run(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    out = tmp_path / "d.jsonl"
    result = invoke(runner, *run_args(count=6, out=out, report=tmp_path / "taken"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: `--report` cannot write `{tmp_path / 'taken'}`")
    assert not out.exists()


def test_resume_after_kill_9_loses_and_repeats_nothing(tmp_path: Path) -> None:
    with LLMServer(latency=0.05, handler=pipeline_handler) as server:

        def command(name: str, *extra: str) -> list[str]:
            out, rejects = tmp_path / f"{name}.jsonl", tmp_path / f"{name}_rejects.jsonl"
            return run_args(*extra, server=server, count=60, seed=8, concurrency=2, out=out, rejects=rejects, quiet=True)

        reference = apigen_process(command("reference", "--report", str(tmp_path / "reference.json")))
        assert reference.returncode == 0, reference.stderr

        output = tmp_path / "resumed.jsonl"
        kill_9_once_written(command("resumed"), output, lines=8, server=server, answered=server.count * 2 // 3)
        state = saved_state(tmp_path / "resumed.jsonl.apigen-run.json")
        assert 0 < state["requests_done"] < state["requests_total"] == 20 and not state["complete"]

        log = tmp_path / "second.log.jsonl"
        second = apigen_process(command("resumed", "--log-llm", str(log), "--report", str(tmp_path / "resumed.json")))
        assert second.returncode == 0, second.stderr

    assert read_jsonl(output) == read_jsonl(tmp_path / "reference.jsonl")  # row by row: none lost, none twice
    assert read_jsonl(tmp_path / "resumed_rejects.jsonl") == read_jsonl(tmp_path / "reference_rejects.jsonl")
    exchanges = read_jsonl(log)
    generation_keys = [entry["key"] for entry in exchanges if entry["key"].count("-") == 2]  # gen-SEED-INDEX; rows add -PAIR
    assert generation_keys and min(int(key.rsplit("-", 1)[1]) for key in generation_keys) >= state["requests_done"]
    judged_again = {entry["key"] for entry in exchanges if entry["key"].count("-") == 3}
    done_before = {row["id"] for row in read_jsonl(output) if int(row["request_id"].rsplit("-", 1)[1]) < state["requests_done"]}
    assert not judged_again & done_before
    reports = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("reference", "resumed")]
    assert reports[0]["total"] == reports[1]["total"] and reports[0]["top_reasons"] == reports[1]["top_reasons"]
    assert reports[0]["total"]["requested"] == 60
    # Tokens are those spent: the killed session's, up to its last checkpoint, and the second's.
    assert reports[1]["tokens"]["test-model"]["requests"] >= reports[0]["tokens"]["test-model"]["requests"]


def test_run_with_dedup_rejects_repeats_and_reports_them(runner: CliRunner, tmp_path: Path) -> None:
    apis = tmp_path / "apis.jsonl"
    apis.write_text(
        json.dumps(
            {
                "name": "paint",
                "description": "Paint the wall in a colour.",
                "category": "home",
                "parameters": {
                    "type": "object",
                    "properties": {"colour": {"type": "string", "enum": ["red", "blue"]}},
                    "required": ["colour"],
                },
            }
        )
        + "\n"
    )
    functions = tmp_path / "home.py"
    functions.write_text("def paint(colour):\n    return {'painted': colour}\n")
    out, rejects, report = tmp_path / "d.jsonl", tmp_path / "r.jsonl", tmp_path / "report.json"
    dedup = ["--styles", "simple=1", "-O", "offline_error_rate=0", "--dedup"]
    args = run_args(*dedup, apis=apis, functions=functions, count=60, seed=1, out=out, rejects=rejects, report=report)
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.stderr
    duplicates = [row for row in read_jsonl(rejects) if row["rejected_by"] == "dedup"]
    kept = read_jsonl(out)
    assert duplicates and all(row["duplicate_of"] in {k["id"] for k in kept} for row in duplicates)
    assert json.loads(report.read_text())["total"]["duplicates"] == len(duplicates)
    assert len({(row["query"].lower(), json.dumps(row["answers"], sort_keys=True)) for row in kept}) == len(kept)


def test_ctrl_c_says_that_the_same_command_carries_on(tmp_path: Path) -> None:
    import signal

    with LLMServer(handler=pipeline_handler) as server:
        command = run_args(server=server, count=12, seed=4, out=tmp_path / "d.jsonl", rejects=tmp_path / "r.jsonl", quiet=True)
        server.hold(after=2)  # the run is held mid-way, where Ctrl-C finds it
        with subprocess.Popen([*APIGEN, *command], env=cli_env(), stderr=subprocess.PIPE, text=True) as process:
            try:
                assert server.wait_parked(1)
                process.send_signal(signal.SIGINT)
                _, stderr = process.communicate(timeout=60)
            finally:
                server.release()
        assert process.returncode == 130
        assert stderr.splitlines()[0] == "error: interrupted; every line already written is a complete row"
        assert stderr.splitlines()[2] == "hint: run the same command again: it carries on where it stopped"
        again = apigen_process(command)
        assert again.returncode == 0, again.stderr


def test_a_rerun_from_the_cache_says_its_requests_came_from_there(runner: CliRunner, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    with LLMServer(handler=pipeline_handler) as server:
        first = invoke(runner, *run_args("--cache", cache, server=server, count=9, seed=2, out=tmp_path / "a.jsonl"))
        sent = server.count
        second = invoke(runner, *run_args("--cache", cache, server=server, count=9, seed=2, out=tmp_path / "b.jsonl"))
        assert server.count == sent  # nothing was sent again
    assert first.exit_code == second.exit_code == 0
    assert "from the cache" not in first.stderr
    notes = second.stderr.replace("\n  ", " ").splitlines()  # a note too long for 80 columns goes on over indented lines
    line = next(line for line in notes if line.startswith("tokens, test-model: "))
    assert line.endswith(f"in {sent} requests ({sent} of them answered from the cache, not sent)")
