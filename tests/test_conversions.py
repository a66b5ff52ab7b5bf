"""Conversations from elsewhere: BFCL's multi-turn entries and tau-bench's results become trajectory-check rows.

The guide's and the README's snippets run here as written: the guide's in a folder holding
files in BFCL's and tau-bench's shapes (BFCL's own classes stand in for by a BFCL-style file
system, tests/fixtures/environments/env_files.py; tau-bench's database by the sample store),
and the rows they write are then checked by the real `apigen trajectory-check`. The corpora in
../shared hold BFCL's single-turn categories only, so no test here reads them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apigen_cli.conversations.convert import bfcl_multi_turn_row, parse_call

from .conftest import PROJECT, invoke, read_jsonl
from .doc_pages import page_with

FILES = PROJECT / "tests" / "fixtures" / "environments" / "env_files.py"
STORE = PROJECT / "sample_data" / "store"

ENTRY = {
    "id": "multi_turn_base_0",
    "question": [
        [{"role": "user", "content": "Go into work and make a folder reports."}],
        [{"role": "user", "content": "Now put an empty q1.txt in it."}],
    ],
    "initial_config": {"TinyFileSystem": {"root": "/", "contents": {"work": {"notes.txt": "hello"}}}},
    "path": ["TinyFileSystem.cd", "TinyFileSystem.mkdir", "TinyFileSystem.touch"],
    "involved_classes": ["TinyFileSystem"],
}
TRUTH = [["cd(folder='work')", "mkdir(dir_name='reports')"], ["cd(folder='reports')", "touch(file_name='q1.txt')"]]


def snippet(page: str, after: str) -> str:
    found: list[str] = re.findall(r"```python\n(.*?)```", page.split(after, 1)[1], re.DOTALL)
    return found[0]


def test_the_guide_s_conversions_write_rows_that_trajectory_check_keeps(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "possible_answer").mkdir()
    (tmp_path / "BFCL_v3_multi_turn_base.json").write_text(json.dumps(ENTRY) + "\n")
    (tmp_path / "possible_answer" / "BFCL_v3_multi_turn_base.json").write_text(
        json.dumps({"id": ENTRY["id"], "ground_truth": TRUTH}) + "\n"
    )
    [store_row] = [row for row in read_jsonl(STORE / "conversations.jsonl") if row["id"] == "store-cancel-earbuds"]
    (tmp_path / "db.json").write_text(json.dumps(store_row["environment"]["OnlineStore"]))
    task = {
        "user_id": "kenji_watanabe",
        "instruction": "You want to cancel your pending earbuds order.",
        "actions": [{"name": action["name"], "kwargs": action["arguments"]} for action in store_row["actions"]],
        "outputs": store_row.get("outputs", []),
    }
    (tmp_path / "results.json").write_text(
        json.dumps([{"task_id": 7, "trial": 0, "reward": 1.0, "info": {"task": task}, "traj": store_row["messages"]}])
    )

    code = snippet(page_with("#### Conversations from BFCL and tau-bench"), "#### Conversations from BFCL and tau-bench")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    [bfcl] = read_jsonl(tmp_path / "bfcl_rows.jsonl")
    assert bfcl["actions"][0] == {"name": "cd", "arguments": {"folder": "work"}}
    checked = invoke(runner, "trajectory-check", str(tmp_path / "bfcl_rows.jsonl"), "--functions", str(FILES), "--keep-rejected")
    assert checked.exit_code == 0, checked.stderr
    [kept] = [json.loads(line) for line in checked.stdout.splitlines()]
    assert kept.get("reason") is None and kept["keep_row_after_trajectory_check"] is True
    assert [label["changed_state"] for label in kept["trajectory_check"]["calls"]] == [False, True, False, True]

    [tau] = read_jsonl(tmp_path / "tau_rows.jsonl")
    assert tau["id"] == "tau-7-0" and tau["actions"] == store_row["actions"]
    checked = invoke(runner, "trajectory-check", str(tmp_path / "tau_rows.jsonl"), "--functions", str(STORE), "--keep-rejected")
    assert checked.exit_code == 0, checked.stderr
    assert json.loads(checked.stdout).get("reason") is None


def test_a_model_s_calls_that_leave_another_state_are_caught(runner: CliRunner, tmp_path: Path) -> None:
    wrong = [["cd(folder='work')", "mkdir(dir_name='report')"], ["cd(folder='report')", "touch(file_name='q1.txt')"]]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(bfcl_multi_turn_row(ENTRY, TRUTH, calls=wrong)) + "\n")
    checked = invoke(runner, "trajectory-check", str(rows), "--functions", str(FILES), "--keep-rejected")
    assert checked.exit_code == 0, checked.stderr
    assert json.loads(checked.stdout)["reason"] == "state_mismatch"


def test_the_readme_s_conversion_prints_what_it_says() -> None:
    code = snippet(page_with("bfcl_multi_turn_row(entry, [["), "## Multi-turn")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    said = code.rsplit("# ", 1)[1].strip()
    assert done.stdout.strip() == said


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch pwned')",  # not a named function's call with literals
        "cd(open('x').read())",  # positional
        "cd(folder=open('x').read())",  # not a literal
        "cd(**{'folder': 'x'})",
        "cd(folder='" + "x" * 200_000 + "')",  # too long
        "(" * 10_000 + "1" + ")" * 10_000,  # too deep for the parser
        "cd(folder='work'",  # not Python
    ],
)
def test_a_call_that_is_not_plain_is_refused_and_nothing_runs(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_call(text)
    assert not (Path.cwd() / "pwned").exists()
