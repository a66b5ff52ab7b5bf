"""A run's state and files under attack: a hand-edited state, planted links and FIFOs, one file named
twice, two writers on one file, and the exit codes that say what happened (`-v` included)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from .conftest import invoke, read_jsonl, write_jsonl
from .hostile import run_cli
from .run_helpers import APIS, run_args, saved_state

ROW = {"query": "q", "tools": [{"name": "f", "description": "d", "parameters": {}}], "answers": [{"name": "f", "arguments": {}}]}


def offline_run(tmp_path: Path, *extra: str, seed: int | None = 5, apis: str = APIS) -> list[str]:
    return run_args(
        *extra, apis=apis, count=12, seed=seed, out=tmp_path / "out.jsonl", rejects=tmp_path / "rejects.jsonl", quiet=True
    )


# --- exit codes: `-v` shows a traceback, never changes the code --------------------------------------


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
@pytest.mark.parametrize(
    ("case", "code"),
    [("usage", 2), ("bad-line", 2), ("missing-input", 2), ("strict-rejects", 1), ("clean", 0)],
)
def test_exit_codes_are_the_same_with_and_without_verbose(tmp_path: Path, case: str, code: int, verbose: bool) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [ROW])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROW) + "\n{not json\n")
    rejected = write_jsonl(tmp_path / "rejected.jsonl", [{**ROW, "answers": [{"name": "nope", "arguments": {}}]}])
    args = {
        "usage": ["format-check", "--no-such-flag", str(good)],
        "bad-line": ["format-check", str(bad)],
        "missing-input": ["format-check", str(tmp_path / "absent.jsonl")],
        "strict-rejects": ["format-check", str(rejected), "--strict"],
        "clean": ["format-check", str(good)],
    }[case]
    ran = run_cli(*args, *(["-v"] if verbose else []))
    assert ran.exit_code == code, ran.stderr
    if code == 2:
        assert "\nerror: " in "\n" + ran.stderr and "hint: " in ran.stderr
        assert ("Traceback" in ran.stderr) is (verbose and case != "usage")


# --- non-regular files where apigen needs a regular one: an error, never a hang -------------------


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_state_file_that_is_not_a_regular_file_is_an_error_not_a_hang(tmp_path: Path, kind: str) -> None:
    state = tmp_path / "out.jsonl.apigen-run.json"
    if kind == "fifo":
        os.mkfifo(state)
    else:
        state.mkdir()
    ran = run_cli(*offline_run(tmp_path), deadline=60)
    assert not ran.killed, "the run hung on the state file"
    assert ran.exit_code == 2, ran.stderr
    assert f"the run state `{state}` cannot be used" in ran.stderr and "hint: " in ran.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_fifo_as_the_rejects_of_a_resumable_run_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "rejects.jsonl")
    ran = run_cli(*offline_run(tmp_path), deadline=60)
    assert not ran.killed, "the run hung on the FIFO"
    assert ran.exit_code == 2 and "`--rejects`" in ran.stderr and "regular file" in ran.stderr, ran.stderr


# --- side files: a link planted under a name apigen makes is never written through ------------------


def _planted(link: Path, victim: Path) -> None:
    victim.write_text("the user's own file\n")
    link.symlink_to(victim)


def test_a_link_planted_at_the_state_temporary_is_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    _planted(tmp_path / "out.jsonl.apigen-run.json.tmp", victim)
    ran = run_cli(*offline_run(tmp_path))
    assert ran.exit_code == 0, ran.stderr
    assert victim.read_text() == "the user's own file\n"
    state = tmp_path / "out.jsonl.apigen-run.json"
    assert not state.is_symlink() and saved_state(state)["complete"]


def test_a_link_planted_at_the_lock_is_refused_and_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    lock = tmp_path / "out.jsonl.apigen-lock"
    _planted(lock, victim)
    ran = run_cli(*offline_run(tmp_path))
    assert ran.exit_code == 2 and f"the lock file `{lock}` cannot be used" in ran.stderr, ran.stderr
    assert "symbolic link" in ran.stderr and "hint: " in ran.stderr
    assert victim.read_text() == "the user's own file\n"


def test_a_link_planted_at_a_commands_temporary_is_not_written_through(runner: CliRunner, tmp_path: Path) -> None:
    """The stage command runs in this process, so its temporary's name (`FILE.part-PID`) is known ahead."""
    good = write_jsonl(tmp_path / "good.jsonl", [ROW])
    out, victim = tmp_path / "checked.jsonl", tmp_path / "victim.txt"
    _planted(tmp_path / f"checked.jsonl.part-{os.getpid()}", victim)
    result = invoke(runner, "format-check", str(good), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert victim.read_text() == "the user's own file\n"
    assert read_jsonl(out)[0]["query"] == "q" and not out.is_symlink()


def test_a_link_planted_at_the_library_a_piped_run_keeps_is_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    _planted(tmp_path / "out.jsonl.apis.jsonl", victim)
    library = Path(APIS).read_text()
    ran = run_cli(*offline_run(tmp_path, apis="-"), stdin=library)
    assert ran.exit_code == 0, ran.stderr
    assert victim.read_text() == "the user's own file\n"
    assert (tmp_path / "out.jsonl.apis.jsonl").read_text() == library


# --- the run state is checked against the command line and the files --------------------------------


def _finished_run(runner: CliRunner, tmp_path: Path, seed: int | None = 5) -> tuple[Path, dict[str, Any]]:
    result = invoke(runner, *offline_run(tmp_path, seed=seed))
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "out.jsonl.apigen-run.json"
    return path, saved_state(path)


def _files(tmp_path: Path) -> bytes:
    return (tmp_path / "out.jsonl").read_bytes() + (tmp_path / "rejects.jsonl").read_bytes()


def test_a_state_whose_seed_is_not_the_command_lines_is_refused_naming_both(runner: CliRunner, tmp_path: Path) -> None:
    path, state = _finished_run(runner, tmp_path, seed=5)
    path.write_text(json.dumps({**state, "seed": 6, "complete": False, "requests_done": state["requests_total"] - 1}))
    before = _files(tmp_path)
    result = invoke(runner, *offline_run(tmp_path, seed=5))
    assert result.exit_code == 2, result.stderr
    assert f"error: the run state `{path}` has seed 6, but `--seed` is 5" in result.stderr
    assert "hint: pass `--overwrite` to start afresh with seed 5" in result.stderr
    assert _files(tmp_path) == before
    again = invoke(runner, *offline_run(tmp_path, seed=5), "--overwrite")
    assert again.exit_code == 0, again.stderr
    assert all(row["request_id"].startswith("gen-5-") for row in read_jsonl(tmp_path / "out.jsonl"))


def test_a_resume_without_seed_takes_the_runs_own(runner: CliRunner, tmp_path: Path) -> None:
    path, state = _finished_run(runner, tmp_path, seed=None)
    path.write_text(json.dumps({**state, "complete": False}))  # as if stopped after its last checkpoint
    result = invoke(runner, *offline_run(tmp_path, seed=None))
    assert result.exit_code == 0, result.stderr
    assert all(row["request_id"].startswith(f"gen-{state['seed']}-") for row in read_jsonl(tmp_path / "out.jsonl"))


def _cut_after_request(path: Path, last: int) -> int:
    """The bytes of ``path`` holding the rows of requests 0..``last``."""
    size = 0
    for line in path.read_bytes().splitlines(keepends=True):
        if int(json.loads(line)["request_id"].rsplit("-", 1)[1]) > last:
            break
        size += len(line)
    return size


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda s, t: {**s, "complete": False, "requests_done": s["requests_total"] // 2}, "which a resume would make again"),
        (
            lambda s, t: {
                **s,
                "complete": False,
                "requests_done": s["requests_total"] - 1,
                "output_bytes": _cut_after_request(t / "out.jsonl", s["requests_total"] - 4),
                "rejects_bytes": _cut_after_request(t / "rejects.jsonl", s["requests_total"] - 4),
            },
            "so a resume would skip it",
        ),
        (lambda s, t: {**s, "complete": False, "requests_done": 0}, "is 0, but `output_bytes`"),
        (
            lambda s, t: {**s, "complete": False, "requests_done": s["requests_total"] - 1, "seed": s["seed"] + 1},
            "is a row of seed",
        ),
    ],
    ids=["halved-done", "raised-done", "nothing-done", "other-seed"],
)
def test_request_counts_that_disagree_with_the_files_are_refused(runner: CliRunner, tmp_path: Path, edit: Any, said: str) -> None:
    path, state = _finished_run(runner, tmp_path, seed=None)  # no --seed: a resume takes the state's own seed
    path.write_text(json.dumps(edit(state, tmp_path)))
    before = _files(tmp_path)
    result = invoke(runner, *offline_run(tmp_path, seed=None))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: the run state") and said in result.stderr and "`--overwrite`" in result.stderr
    assert _files(tmp_path) == before


# --- one file, one role: a file written is named by no other flag -----------------------------------


def _names(tmp_path: Path, how: str) -> Path:
    """A second name of `out.jsonl` (made by the first run): the same path, a hard link or a symbolic link."""
    out = tmp_path / "out.jsonl"
    if how == "same":
        return out
    other = tmp_path / f"other-{how}.jsonl"
    if how == "hardlink":
        os.link(out, other)
    else:
        other.symlink_to(out)
    return other


@pytest.mark.parametrize("how", ["same", "hardlink", "symlink"])
@pytest.mark.parametrize(
    ("flag", "against"),
    [("--report", "--output"), ("--log-llm", "--output"), ("--report", "--rejects"), ("--examples", "--output")],
)
def test_a_run_file_named_by_two_flags_is_refused_before_any_work(
    runner: CliRunner, tmp_path: Path, flag: str, against: str, how: str
) -> None:
    _finished_run(runner, tmp_path)
    target = tmp_path / ("out.jsonl" if against == "--output" else "rejects.jsonl")
    if against == "--rejects":
        os.replace(target, tmp_path / "out.jsonl.tmp")  # `_names` links to out.jsonl: put the rejects there
        os.replace(tmp_path / "out.jsonl", tmp_path / "rows.jsonl")
        os.replace(tmp_path / "out.jsonl.tmp", tmp_path / "out.jsonl")
    other = _names(tmp_path, how)
    before = _files(tmp_path) if against == "--output" else (tmp_path / "out.jsonl").read_bytes()
    args = offline_run(tmp_path, flag, str(other), "--overwrite")
    if against == "--rejects":
        args = [*args[: args.index("--rejects") + 1], str(tmp_path / "out.jsonl"), *args[args.index("--rejects") + 2 :]]
        args[args.index("-o") + 1] = str(tmp_path / "rows.jsonl")
    result = invoke(runner, *args)
    assert result.exit_code == 2, result.stderr
    first = result.stderr.splitlines()[0]
    assert f"`{flag}`" in first and f"`{against}`" in first and "both name" in first, first
    assert "hint: " in result.stderr
    now = _files(tmp_path) if against == "--output" else (tmp_path / "out.jsonl").read_bytes()
    assert now == before  # nothing written, nothing replaced


@pytest.mark.parametrize(
    ("args", "flags"),
    [
        (lambda t: ["format-check", str(t / "good.jsonl"), "-o", str(t / "good.jsonl")], ("--output", "INPUT")),
        (lambda t: ["format-check", str(t / "good.jsonl"), "--rejects", str(t / "link.jsonl")], ("--rejects", "INPUT")),
        (lambda t: ["export", str(t / "link.jsonl"), "--format", "openai", "-o", str(t / "good.jsonl")], ("--output", "INPUT")),
        (lambda t: ["library", "merge", str(t / "good.jsonl"), "-o", str(t / "link.jsonl")], ("--output", "LIB")),
        (
            lambda t: [
                "export",
                "-",
                "--format",
                "preference",
                "--rejects-in",
                str(t / "good.jsonl"),
                "-o",
                str(t / "link.jsonl"),
            ],
            ("--output", "--rejects-in"),
        ),
        (
            lambda t: ["export", "-", "--format", "messages", "--tools", str(t / "good.jsonl"), "-o", str(t / "link.jsonl")],
            ("--output", "--tools"),
        ),
        (lambda t: ["report", str(t / "good.jsonl"), "--html", str(t / "link.jsonl")], ("--html", "DATASET")),
        (lambda t: ["merge", str(t / "link.jsonl"), str(t / "good.jsonl")], ("OUT", "SHARD_OUTPUTS")),
        (
            lambda t: run_args(
                "--examples", str(t / "good.jsonl"), "--overwrite", count=4, rejects=t / "link.jsonl", out=t / "o"
            ),
            ("--rejects", "--examples"),
        ),
        (
            lambda t: run_args("--report", str(t / "link.jsonl"), apis=t / "good.jsonl", count=4, out=t / "o"),
            ("--report", "APIS"),
        ),
    ],
    ids=[
        "format-check-o",
        "format-check-rejects",
        "export",
        "library-merge",
        "export-rejects-in",
        "export-tools",
        "report-html",
        "merge",
        "run-examples",
        "run-apis",
    ],  # fmt: skip
)
def test_every_command_refuses_a_file_it_writes_and_reads(tmp_path: Path, args: Any, flags: tuple[str, str]) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [ROW])
    os.link(good, tmp_path / "link.jsonl")
    before = good.read_bytes()
    ran = run_cli(*args(tmp_path))
    assert ran.exit_code == 2, ran.stderr
    first = ran.stderr.splitlines()[0]
    assert all(f"`{flag}`" in first for flag in flags) and "both name" in first, first
    assert good.read_bytes() == before


def test_a_fifo_where_a_piped_run_keeps_its_library_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "out.jsonl.apis.jsonl")
    ran = run_cli(*offline_run(tmp_path, apis="-"), stdin=Path(APIS).read_text(), deadline=60)
    assert not ran.killed, "the run hung on the FIFO"
    assert ran.exit_code == 2 and "is not a regular file" in ran.stderr and "hint: " in ran.stderr, ran.stderr


# --- the folders apigen fills (`--cache`, `--batch-dir`) hold nothing else --------------------------------

_GENERATE = ["generate", APIS, "-m", "offline", "-n", "2", "--seed", "1", "-q"]


@pytest.mark.parametrize(
    ("args", "first_line", "hint"),
    [
        (
            lambda t: [*_GENERATE, "-o", str(t / "cache" / "data.jsonl"), "--cache", str(t / "cache")],
            "error: `--output` names `{t}/cache/data.jsonl`, inside `{t}/cache`, the `--cache` folder, "
            "which apigen fills with its own files",
            "hint: give `--output` a file outside `{t}/cache`, or `--cache` another folder",
        ),
        (
            lambda t: offline_run(t, "--cache", str(t)),  # the run's state, lock and rejects sit beside -o: in the cache
            "error: `--output` names `{t}/out.jsonl`, inside `{t}`, the `--cache` folder, which apigen fills with its own files",
            "hint: give `--output` a file outside `{t}`, or `--cache` another folder",
        ),
        (
            lambda t: [*_GENERATE, "-o", str(t / "batch"), "--batch-dir", str(t / "batch")],
            "error: `--output` and `--batch-dir` both name `{t}/batch`, the folder apigen fills with its own files",
            "hint: give `--output` a file outside `{t}/batch`, or `--batch-dir` another folder",
        ),
        (
            lambda t: [*_GENERATE, "-o", str(t / "o.jsonl"), "--cache", str(t / "shared"), "--batch-dir", str(t / "shared")],
            "error: `--cache` and `--batch-dir` both name `{t}/shared`, the folder apigen fills with its own files",
            "hint: give `--cache` and `--batch-dir` a folder each",
        ),
        (
            lambda t: [*_GENERATE, "-o", str(t / "o.jsonl"), "--cache", str(t / "b" / "c"), "--batch-dir", str(t / "b")],
            "error: `--cache` names `{t}/b/c`, inside `{t}/b`, the `--batch-dir` folder, which apigen fills with its own files",
            "hint: give `--cache` a folder outside `{t}/b`, or `--batch-dir` another folder",
        ),
        (
            lambda t: [
                *_GENERATE,
                "-o",
                str(t / "o.jsonl"),
                "--log-llm",
                str(t / "b" / "llm.jsonl"),
                "--batch-dir",
                str(t / "b"),
            ],
            "error: `--log-llm` names `{t}/b/llm.jsonl`, inside `{t}/b`, the `--batch-dir` folder, "
            "which apigen fills with its own files",
            "hint: give `--log-llm` a file outside `{t}/b`, or `--batch-dir` another folder",
        ),
    ],
    ids=[
        "output-in-cache",
        "run-state-in-cache",
        "output-is-batch-dir",
        "cache-is-batch-dir",
        "cache-in-batch-dir",
        "log-in-batch-dir",
    ],
)
def test_the_folders_apigen_fills_are_apart_from_every_file_it_writes(
    runner: CliRunner, tmp_path: Path, args: Any, first_line: str, hint: str
) -> None:
    before = sorted(tmp_path.rglob("*"))
    result = invoke(runner, *args(tmp_path))
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == first_line.format(t=tmp_path), lines
    assert hint.format(t=tmp_path) in lines, lines
    assert sorted(tmp_path.rglob("*")) == before  # refused before any work


def test_a_cache_beside_the_output_is_fine(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, *_GENERATE, "-o", str(tmp_path / "data.jsonl"), "--cache", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.stderr
    assert len(read_jsonl(tmp_path / "data.jsonl")) == 2
