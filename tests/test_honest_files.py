"""Files tell the truth (issue 11): bytes that are not UTF-8 are named, a dataset without its rejects is called so."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from .conftest import PROJECT, invoke
from .run_helpers import SAMPLE, generate_args, run_args


def test_an_api_library_that_is_not_utf8_is_an_error_naming_line_and_byte(runner: CliRunner, tmp_path: Path) -> None:
    library = tmp_path / "apis.jsonl"
    good = (SAMPLE / "apis.jsonl").read_bytes().splitlines()[0]
    library.write_bytes(good + b'\n{"name": "caf\xe9", "description": "x", "parameters": {}}\n')
    result = invoke(runner, "generate", str(library), "-m", "offline", "-n", "1")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: line 2 of `{library}` is not UTF-8: byte 0xe9 at column 14")


def test_a_row_that_is_not_utf8_is_called_so(runner: CliRunner, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b'{"query": "caf\xe9"}\n')
    result = invoke(runner, "format-check", str(rows))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: line 1 of `{rows}` is not UTF-8: byte 0xe9 at column 15")
    assert "surrogates" not in result.stderr


def test_stats_of_a_dataset_without_its_rejects_says_they_are_missing(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects = tmp_path / "d.jsonl", tmp_path / "r.jsonl"
    args = ["run", str(SAMPLE / "apis.jsonl"), "--functions", str(SAMPLE / "functions"), "-m", "offline", "-J", "offline"]
    assert invoke(runner, *args, "-n", "30", "--seed", "4", "-o", str(out), "--rejects", str(rejects)).exit_code == 0
    alone = invoke(runner, "stats", str(out))
    assert alone.exit_code == 0
    assert "warning: the files hold no rejected row" in alone.stderr and "(`apigen stats DATASET REJECTS`)" in alone.stderr
    both = invoke(runner, "stats", str(out), str(rejects))
    assert both.exit_code == 0 and "warning" not in both.stderr


def test_an_export_stopped_by_a_bad_line_leaves_the_earlier_file_intact(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "xlam.json"
    out.write_text("[earlier export]\n")
    rows = tmp_path / "rows.jsonl"
    good = '{"id": "1", "query": "q", "tools": [{"name": "f", "description": "d", "parameters": {}}], "answers": [{"name": "f", "arguments": {}}], '
    good += '"keep_row_after_format_check": true, "keep_row_after_execution_check": true, "keep_row_after_semantic_check": true}'
    rows.write_text(good + "\n" + "{not json\n" + good + "\n")
    result = invoke(runner, "export", str(rows), "--format", "xlam", "-o", str(out))
    assert result.exit_code == 2 and "line 2 of" in result.stderr
    assert out.read_text() == "[earlier export]\n"  # never a partial array closed with `]`
    assert [path.name for path in tmp_path.iterdir() if ".part-" in path.name] == []


def test_a_stopped_run_still_writes_its_report(runner: CliRunner, tmp_path: Path) -> None:
    from .llm_server import LLMServer, Reply
    from .scripted_model import pipeline_handler

    healthy = {"left": 16}

    def failing_later(received: object) -> object:
        if healthy["left"] > 0:
            healthy["left"] -= 1
            return pipeline_handler(received)  # type: ignore[arg-type]
        return Reply.error(500, "upstream down")

    report = tmp_path / "report.json"
    with LLMServer() as server:
        server.handler = failing_later  # type: ignore[assignment]
        stops = ["--max-attempts", "1", "--stop-after-failures", "2"]
        args = run_args(
            *stops, server=server, model="gen", count=30, seed=2, concurrency=1, out=tmp_path / "d.jsonl", report=report
        )
        result = invoke(runner, *args)
    assert result.exit_code == 2
    written = json.loads(report.read_text())
    assert written["complete"] is False and written["seed"] == 2
    assert 0 < written["total"]["requested"] < 30


def test_generate_names_only_its_own_flags_when_rows_are_dropped(runner: CliRunner) -> None:
    from .llm_server import LLMServer, Reply
    from .scripted_model import pipeline_handler

    answered = {"count": 0}

    def first_only(received: object) -> object:
        answered["count"] += 1
        return pipeline_handler(received) if answered["count"] == 1 else Reply.error(400, "this request is refused")  # type: ignore[arg-type]

    with LLMServer() as server:
        server.handler = first_only  # type: ignore[assignment]
        args = generate_args("--max-attempts", "1", server=server, model="m", count=9, concurrency=1)
        result = invoke(runner, *args)  # the hint check in `invoke` fails the test if a line names a flag generate lacks
    assert result.exit_code == 0, result.stderr
    assert "rejected rows were dropped: pass `--rejects FILE` to keep them apart" in result.stderr
    assert "--keep-rejected" not in result.stderr


def test_an_importer_pipes_into_run_and_the_same_pipe_resumes(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "sample_data").symlink_to(SAMPLE)
    apigen = f"{sys.executable} -m apigen_cli"
    pipe = (
        f"{apigen} library from-python sample_data/functions -q | "
        f"{apigen} run - --functions sample_data/functions -m offline -J offline -n 30 --seed 2 -o piped.jsonl"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT / "src")}
    first = subprocess.run(["bash", "-c", pipe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "piped.jsonl.apis.jsonl").is_file() and (tmp_path / "piped.jsonl").read_text()
    again = subprocess.run(["bash", "-c", pipe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already holds this run, complete" in again.stderr
