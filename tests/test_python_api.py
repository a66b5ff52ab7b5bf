"""A run from Python is `apigen run`: the Python API page's example, killed and restarted, resumes like the CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from apigen_cli import ExecutionSettings, GenerationSettings, JudgeSettings, LLMSettings, RunSettings, run_fingerprint
from apigen_cli.config import SETTINGS, resolve
from apigen_cli.run_settings import deciding_values, run_settings_from, setting_values

from .conftest import PROJECT, read_jsonl
from .doc_pages import page_with
from .run_helpers import saved_state

PAGE = page_with("# Python API\n")


def _readme_run_script() -> str:
    section = PAGE.split("# Python API\n", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    script: str = next(block for block in blocks if "RunSettings(" in block)
    return script


def _readme_cli_command() -> list[str]:
    section = PAGE.split("# Python API\n", 1)[1]
    found = re.search(r"in fact the\s+same run as `(apigen run [^`]+)`", section)
    assert found, "the page names the command the Python run equals"
    text = " ".join(found.group(1).split())
    return text.split()[1:]


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "sample_data").symlink_to(PROJECT / "sample_data")
    return tmp_path


def _resumable_script(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A workspace holding the page's resumable Python run: the workspace, the script, and the run's output."""
    workspace = _workspace(tmp_path)
    script = workspace / "resumable_run.py"
    script.write_text(_readme_run_script())
    return workspace, script, workspace / "out" / "python" / "dataset.jsonl"


def _env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("APIGEN_")}
    env["PYTHONPATH"] = str(PROJECT / "src")
    return env


def _kill_after(script: Path, workspace: Path, state_file: Path, *, requests_done: int) -> dict[str, Any]:
    """Run ``script``, kill -9 it once its run state says ``requests_done`` requests are done; the state then."""
    with subprocess.Popen(
        [sys.executable, str(script)], cwd=workspace, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as process:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if state_file.exists() and saved_state(state_file).get("requests_done", 0) >= requests_done:
                break
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    state: dict[str, Any] = saved_state(state_file)
    return state


def test_the_readme_run_is_the_cli_run_it_names() -> None:
    """The page says the script and the command are one run: their fingerprints agree."""
    namespace: dict[str, object] = {}
    script = _readme_run_script().split("outcome = run(", 1)[0]
    exec(compile(script, "docs/python-api.md", "exec"), namespace)  # the page's own code, not data
    from_python = namespace["settings"]
    assert isinstance(from_python, RunSettings)

    arguments = _readme_cli_command()
    flags: dict[str, object] = {"model": [], "judge_model": []}
    pairs = {"--functions": "functions", "-n": "count", "--seed": "seed", "--examples": "examples"}
    index = 2  # after "run APIS"
    while index < len(arguments):
        flag, value = arguments[index], arguments[index + 1]
        if flag == "-m":
            flags["model"].append(value)  # type: ignore[attr-defined]
        elif flag == "-J":
            flags["judge_model"].append(value)  # type: ignore[attr-defined]
        elif flag in pairs:
            flags[pairs[flag]] = value
        index += 2
    resolved = resolve(flags)
    from_cli = run_settings_from(resolved.values, arguments[1], resolved.llm_settings())
    assert deciding_values(from_python) == deciding_values(from_cli)
    assert run_fingerprint(from_python) == run_fingerprint(from_cli)


def test_every_declared_setting_reaches_the_typed_settings_and_back() -> None:
    resolved = resolve({})
    settings = run_settings_from(resolved.values, "apis.jsonl", resolved.llm_settings())
    values = setting_values(settings)
    # batch settings travel with the LLM client (open_run's chat_options), not in RunSettings
    assert set(values) == {name for name, setting in SETTINGS.items() if setting.group != "batch"}
    for name, value in values.items():
        expected = resolved.values[name]
        assert (list(value) if isinstance(value, tuple) else value) == (
            list(expected) if isinstance(expected, tuple) else expected
        ), name


def test_settings_that_do_not_decide_rows_leave_the_fingerprint_alone() -> None:
    base = RunSettings(apis=str(PROJECT / "sample_data" / "apis.jsonl"), llm=LLMSettings(models=("offline",), seed=3))
    faster = RunSettings(apis=base.apis, llm=LLMSettings(models=("offline",), seed=3, concurrency=64, cache_dir="/tmp/elsewhere"))
    other_seed = RunSettings(apis=base.apis, llm=LLMSettings(models=("offline",), seed=4))
    more_rows = RunSettings(apis=base.apis, llm=base.llm, generation=GenerationSettings(count=101))
    stricter = RunSettings(apis=base.apis, llm=base.llm, judge=JudgeSettings(judges=("offline",), include_failed=True))
    slower_calls = RunSettings(apis=base.apis, llm=base.llm, execution=ExecutionSettings(functions=None))
    assert run_fingerprint(base) == run_fingerprint(faster) == run_fingerprint(slower_calls)
    assert len({run_fingerprint(settings) for settings in (base, other_seed, more_rows, stricter)}) == 4


def test_a_python_run_killed_and_restarted_resumes_exactly_like_apigen_run(tmp_path: Path) -> None:
    workspace, script, output = _resumable_script(tmp_path)
    state_file = Path(str(output) + ".apigen-run.json")

    state = _kill_after(script, workspace, state_file, requests_done=20)
    assert 0 < state["requests_done"] < state["requests_total"] == 300 and not state["complete"], state

    resumed = subprocess.run(
        [sys.executable, str(script)], cwd=workspace, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert re.fullmatch(r"\d+ verified of 900, seed 7\n", resumed.stdout), resumed.stdout

    reference = workspace / "reference"
    arguments = _readme_cli_command()
    arguments = [str(reference / "dataset.jsonl") if item == "out/python/dataset.jsonl" else item for item in arguments]
    arguments = [str(reference / "rejects.jsonl") if item == "out/python/rejects.jsonl" else item for item in arguments]
    cli = subprocess.run(
        [sys.executable, "-m", "apigen_cli", *arguments, "-q"], cwd=workspace, env=_env(), capture_output=True, timeout=300
    )
    assert cli.returncode == 0, cli.stderr
    assert read_jsonl(output) == read_jsonl(reference / "dataset.jsonl")  # none lost, none twice
    assert read_jsonl(workspace / "out" / "python" / "rejects.jsonl") == read_jsonl(reference / "rejects.jsonl")


def test_the_cli_resumes_a_run_that_python_began(tmp_path: Path) -> None:
    workspace, script, output = _resumable_script(tmp_path)
    state_file = Path(str(output) + ".apigen-run.json")
    done = _kill_after(script, workspace, state_file, requests_done=10)["requests_done"]
    cli = subprocess.run(
        [sys.executable, "-m", "apigen_cli", *_readme_cli_command()],
        cwd=workspace,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"resumed: {done} of 300 requests were already done" in cli.stderr
