"""`apigen format-check` as a user runs it: CliRunner in-process, and a real shell pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl
from .run_helpers import APIGEN, cli_env

TOOL = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]},
}


def good(n: int) -> dict[str, object]:
    return {
        "id": f"g{n}",
        "query": f"What is {n} plus 1?",
        "tools": [TOOL],
        "answers": [{"name": "add", "arguments": {"a": n, "b": 1}}],
    }


def bad(n: int) -> dict[str, object]:
    return {
        "id": f"b{n}",
        "query": f"What is {n} plus 1?",
        "tools": [TOOL],
        "answers": [{"name": "add", "arguments": {"a": str(n), "b": 1}}],
    }


def test_kept_rows_on_stdout_rejects_in_their_file(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [good(1), bad(2), good(3)])
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(runner, "format-check", str(source), "--rejects", str(rejects))
    assert result.exit_code == 0, result.stderr
    assert [row["id"] for row in parse_stdout(result.stdout)] == ["g1", "g3"]
    [rejected] = read_jsonl(rejects)
    assert rejected["id"] == "b2" and rejected["rejected_by"] == "format_check" and rejected["reason"] == "wrong_type"
    assert result.stderr.strip().splitlines()[-1] == "format-check: 2 passed, 1 rejected (wrong_type 1)"


def test_output_file_and_stdin(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "checked.jsonl"
    text = "".join(json.dumps(row) + "\n" for row in [good(1), good(2)])
    result = invoke(runner, "format-check", "-", "-o", str(out), input=text)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert [row["id"] for row in read_jsonl(out)] == ["g1", "g2"]


def test_dropped_rejects_are_counted_and_the_flag_named(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [bad(1), good(2)])
    result = invoke(runner, "format-check", str(source))
    assert result.exit_code == 0
    assert "1 rejected row was dropped: pass `--rejects FILE`" in result.stderr


def test_keep_rejected_flags_rows_in_the_output(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [bad(1), good(2)])
    result = invoke(runner, "format-check", str(source), "--keep-rejected")
    rows = parse_stdout(result.stdout)
    assert [(row["id"], row["keep_row_after_format_check"]) for row in rows] == [("b1", False), ("g2", True)]


def test_rejects_and_keep_rejected_together_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [good(1)])
    result = invoke(runner, "format-check", str(source), "--keep-rejected", "--rejects", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `--rejects` and `--keep-rejected` both say where rejected rows go\n\nhint: ")


def test_strict_exits_1_on_rejection_and_0_without(runner: CliRunner, tmp_path: Path) -> None:
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [good(1), bad(2)])
    clean = write_jsonl(tmp_path / "clean.jsonl", [good(1)])
    assert invoke(runner, "format-check", str(mixed), "--strict").exit_code == 1
    assert invoke(runner, "format-check", str(clean), "--strict").exit_code == 0


def test_malformed_line_names_file_and_line_and_hints(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps(good(1)) + "\n\n" + '{"id": "x", "query": }\n' + json.dumps(good(4)) + "\n")
    result = invoke(runner, "format-check", str(source))
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[0]
        == f"error: line 3 of `{source}` is not valid JSON: unexpected character, expected a JSON value at column 22 (`}}`) (1 row was written before it)"
    )
    assert "hint: fix the line, or pass `--skip-bad-lines`" in result.stderr
    assert "Traceback" not in result.stderr
    assert [row["id"] for row in parse_stdout(result.stdout)] == ["g1"]  # written before the error, complete


def test_skip_bad_lines_sends_them_to_the_rejects_with_their_line(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps(good(1)) + "\n[1, 2]\nnot json\n" + json.dumps(good(4)) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(runner, "format-check", str(source), "--skip-bad-lines", "--rejects", str(rejects))
    assert result.exit_code == 0
    assert [row["id"] for row in parse_stdout(result.stdout)] == ["g1", "g4"]
    assert [(row["line"], row["reason"], row["raw"]) for row in read_jsonl(rejects)] == [
        (2, "invalid_json", "[1, 2]"),
        (3, "invalid_json", "not json"),
    ]
    assert "format-check: 2 passed, 2 rejected (invalid_json (input) 2)" in result.stderr


def test_missing_input_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = invoke(runner, "format-check", str(missing), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"error: input file `{missing}` does not exist"
    assert not (tmp_path / "out.jsonl").exists()


def test_output_onto_the_input_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [good(1)])
    result = invoke(runner, "format-check", str(source), "-o", str(source))
    assert result.exit_code == 2
    assert "would be overwritten while it is read" in result.stderr
    assert read_jsonl(source) == [good(1)]


def test_quiet_prints_nothing_on_success(runner: CliRunner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [good(1), bad(2)])
    result = invoke(runner, "format-check", str(source), "-q")
    assert result.exit_code == 0 and result.stderr == ""


def test_help_and_version(runner: CliRunner) -> None:
    assert "Examples:" in invoke(runner, "format-check", "-h").stdout
    assert invoke(runner, "--version").stdout.startswith("apigen ")


# --- real processes -------------------------------------------------------------------


def _apigen(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*APIGEN, *args], env=cli_env(), capture_output=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def test_shell_pipe_over_sample_data(tmp_path: Path) -> None:
    """cat rows | apigen format-check | apigen format-check: stages compose on the shell."""
    rejects = tmp_path / "rejects.jsonl"
    pipeline = (
        f"cat {PROJECT / 'sample_data' / 'rows.jsonl'} | {sys.executable} -m apigen_cli format-check --rejects {rejects} "
        f"| {sys.executable} -m apigen_cli format-check --strict"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}
    )
    assert result.returncode == 0, result.stderr
    kept = parse_stdout(result.stdout)
    rejected = read_jsonl(rejects)
    assert len(kept) == 5 and len(rejected) == 7
    assert all(row["keep_row_after_format_check"] is True for row in kept)
    assert result.stderr.splitlines()[-1] == "format-check: 5 passed, 0 rejected"


def test_reader_closing_early_is_quiet(tmp_path: Path) -> None:
    """`apigen format-check big.jsonl | head -1` ends without a BrokenPipe traceback."""
    source = write_jsonl(tmp_path / "rows.jsonl", [good(n) for n in range(20_000)])
    pipeline = f"{sys.executable} -m apigen_cli format-check {source} | head -n 1"
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True)
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_python_dash_m_runs_the_cli() -> None:
    result = _apigen("--help")
    assert result.returncode == 0 and b"format-check" in result.stdout


def test_nan_is_not_json_and_a_lone_surrogate_is_read_as_u_fffd(runner: CliRunner, tmp_path: Path) -> None:
    """A lone surrogate escape is how older tools wrote a file name that is not UTF-8: the row is read, made valid."""
    source = tmp_path / "rows.jsonl"
    lone = json.dumps({**good(2), "query": "What is 2 plus 1 in \udcff.txt?"})
    assert "\\udcff" in lone
    source.write_text(
        json.dumps(good(1))
        + "\n"
        + lone
        + "\n"
        + '{"id": "y", "query": "q", "tools": [], "answers": [{"name": "add", "arguments": {"a": NaN}}]}\n'
    )
    result = invoke(runner, "format-check", str(source), "--skip-bad-lines", "--keep-rejected")
    assert result.exit_code == 0, result.stderr
    rows = parse_stdout(result.stdout)
    assert [(row.get("line"), row.get("reason")) for row in rows] == [(None, None), (None, None), (3, "invalid_json")]
    assert rows[1]["query"] == "What is 2 plus 1 in \ufffd.txt?"
    strict = invoke(runner, "format-check", str(source))
    assert strict.exit_code == 2 and strict.stderr.startswith(f"error: line 3 of `{source}` is not valid JSON")
