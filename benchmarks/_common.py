"""What the benchmark scripts share: the paths, the scripted server as a process, and apigen's command lines.

Each script imports it as ``from _common import ...`` (a script's own folder is first on
``sys.path``), so the scripts still run as ``python benchmarks/NAME.py`` from anywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
APIGEN = [sys.executable, "-m", "apigen_cli"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextmanager
def llm_server_process(latency: float, script: str | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """tests/llm_server.py in its own process, answering after ``latency`` seconds: the process and its base URL.

    ``script="pipeline"`` answers apigen's own prompts (valid pairs, passing verdicts); without
    it every request gets a completion echoing its last message. Closing its stdin stops it.
    """
    command = [sys.executable, "-m", "tests.llm_server", "--latency", str(latency), *(["--script", script] if script else [])]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    line = process.stdout.readline().split()
    if len(line) != 2 or line[0] != "READY":
        process.kill()
        raise SystemExit(f"the server did not start: {line}")
    try:
        yield process, f"http://127.0.0.1:{line[1]}/v1"
    finally:
        process.stdin.close()
        process.wait(10)


def apigen_command(
    stage: str,
    *extra: str,
    count: int,
    seed: int,
    out: Path | str,
    base_url: str | None = None,
    model: str = "offline",
    concurrency: int | None = None,
    rejects: Path | None = None,
    report: Path | None = None,
) -> list[str]:
    """``apigen generate`` or ``apigen run`` (then the sample functions and ``-J MODEL`` too) over the sample library, quiet."""
    return [
        *APIGEN,
        stage,
        str(SAMPLE / "apis.jsonl"),
        *(["--functions", str(SAMPLE / "functions")] if stage == "run" else []),
        *([] if base_url is None else ["--base-url", base_url]),
        "-m",
        model,
        *(["-J", model] if stage == "run" else []),
        "-n",
        str(count),
        "--seed",
        str(seed),
        *([] if concurrency is None else ["--concurrency", str(concurrency)]),
        "-o",
        str(out),
        *([] if rejects is None else ["--rejects", str(rejects)]),
        *([] if report is None else ["--report", str(report)]),
        "-q",
        *extra,
    ]
