"""`apigen run` checks what it can before the first LLM request (issue 11): nothing is spent on rows
that could only fail.

Each case runs the real CLI against a scripted server on 127.0.0.1 and asserts that no request
reached it, the exit code, and the `error:`/`hint:` lines.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from .conftest import invoke, parse_stdout, read_jsonl
from .llm_server import LLMServer
from .run_helpers import APIS, FUNCTIONS, SAMPLE, run_args
from .scripted_model import pipeline_handler


def _run(runner: CliRunner, server: LLMServer, *extra: str) -> object:
    """`apigen run EXTRA` against ``server``, one attempt a request; ``extra`` names the inputs."""
    flags = run_args(
        *extra, "--max-attempts", "1", apis=None, functions=None, server=server, model="gen", judge="judge", count=12, seed=3
    )
    return invoke(runner, *flags)


def test_a_run_without_functions_stops_before_any_request(runner: CliRunner, tmp_path: Path) -> None:
    with LLMServer(handler=pipeline_handler) as server:
        result = _run(runner, server, APIS, "-o", str(tmp_path / "d.jsonl"))
        assert server.count == 0  # not one token spent
    assert result.exit_code == 2  # type: ignore[attr-defined]
    error, hint = result.stderr.splitlines()[0], result.stderr.split("hint: ", 1)[1]  # type: ignore[attr-defined]
    assert error.startswith(f"error: no API of `{APIS}` can be executed, so every row would fail exec-check")
    assert "`--functions PATH`" in hint
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert not (tmp_path / "d.jsonl").exists() or (tmp_path / "d.jsonl").read_text() == ""


def _two_functions(tmp_path: Path) -> Path:
    library = tmp_path / "lib.py"
    library.write_text(
        "import math\n\n"
        "def factorial(n):\n    return math.factorial(n)\n\n"
        "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\n"
    )
    return library


def _math_only(tmp_path: Path) -> Path:
    """The math APIs of the sample library, so that a multiple-API request stays within them."""
    rows = [json.loads(line) for line in (SAMPLE / "apis.jsonl").read_text().splitlines() if line.strip()]
    maths = [row for row in rows if row.get("category") == "math"]
    path = tmp_path / "maths.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in maths))
    return path


def test_apis_without_an_implementation_are_named_and_refused(runner: CliRunner, tmp_path: Path) -> None:
    functions = _two_functions(tmp_path)
    apis = _math_only(tmp_path)
    with LLMServer(handler=pipeline_handler) as server:
        result = _run(runner, server, str(apis), "--functions", str(functions), "-o", str(tmp_path / "d.jsonl"))
        assert server.count == 0
    assert result.exit_code == 2  # type: ignore[attr-defined]
    first = result.stderr.splitlines()[0]  # type: ignore[attr-defined]
    assert first.startswith("error: ") and "APIs of" in first and "cannot be executed" in first
    assert "`gcd_lcm`" in first and "`factorial`" not in first.split("(", 1)[1].split(")", 1)[0]
    assert "hint: give them an implementation (`--functions`), or pass `--only-executable`" in result.stderr  # type: ignore[attr-defined]


def test_only_executable_samples_the_apis_that_can_run(runner: CliRunner, tmp_path: Path) -> None:
    functions = _two_functions(tmp_path)
    apis = _math_only(tmp_path)
    rejects = tmp_path / "r.jsonl"
    with LLMServer(handler=pipeline_handler) as server:
        result = _run(
            runner,
            server,
            str(apis),
            "--functions",
            str(functions),
            "--only-executable",
            "-o",
            str(tmp_path / "d.jsonl"),
            "--rejects",
            str(rejects),
        )
        assert server.count > 0
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    assert "`--only-executable`: " in result.stderr and "APIs left out of sampling" in result.stderr  # type: ignore[attr-defined]
    rows = read_jsonl(tmp_path / "d.jsonl") + read_jsonl(rejects)
    assert rows
    sampled = {api for row in rows for api in row.get("sampled_apis", [])}
    assert sampled and sampled <= {"factorial", "is_prime"}
    assert not [row for row in rows if row.get("reason") == "no_implementation"]


def test_a_run_without_a_judge_stops_before_any_request(runner: CliRunner, tmp_path: Path) -> None:
    with LLMServer() as server:
        result = invoke(runner, "run", APIS, "--functions", FUNCTIONS, "--base-url", server.url, "-m", "gen", "-n", "3")
        assert server.count == 0
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no judge model is given")
    assert parse_stdout(result.stdout) == []
