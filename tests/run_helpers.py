"""Command lines of `apigen run` / `apigen generate` for the tests, and running them as real processes.

The tests spell the same twenty flags again and again; here they are named once, so a
test shows only what differs in its run (the count, the seed, the files) and what it asserts.
The lists are the arguments after `apigen`: pass them to ``invoke(runner, *args)`` for the
in-process CLI, or to :func:`apigen_process` / :func:`kill_9_once_written` for a real process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .conftest import PROJECT

SAMPLE = PROJECT / "sample_data"
APIS, FUNCTIONS, EXAMPLES = str(SAMPLE / "apis.jsonl"), str(SAMPLE / "functions"), str(SAMPLE / "examples.jsonl")
APIGEN = [sys.executable, "-m", "apigen_cli"]

PathLike = str | Path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of an `apigen` child process: this one's, without colour."""
    return {**os.environ, "NO_COLOR": "1", **extra}


def _flag(name: str, value: object) -> list[str]:
    return [] if value is None else [name, str(value)]


def llm_flags(
    *,
    base_url: str | None = None,
    model: str | Sequence[str] = "offline",
    judge: str | None = None,
    count: int | None = None,
    seed: int | None = None,
    concurrency: int | None = None,
    out: PathLike | None = None,
    rejects: PathLike | None = None,
    report: PathLike | None = None,
    quiet: bool = False,
) -> list[str]:
    """The flags `generate` and `run` share, in the order the tests used to write them; None leaves a flag out."""
    models = [model] if isinstance(model, str) else list(model)
    return [
        *_flag("--base-url", base_url),
        *(word for name in models for word in ("-m", name)),
        *_flag("-J", judge),
        *_flag("-n", count),
        *_flag("--seed", seed),
        *_flag("--concurrency", concurrency),
        *_flag("-o", out),
        *_flag("--rejects", rejects),
        *_flag("--report", report),
        *(["-q"] if quiet else []),
    ]


def run_args(
    *extra: str,
    apis: PathLike | None = APIS,
    functions: PathLike | None = FUNCTIONS,
    base_url: str | None = None,
    model: str = "offline",
    judge: str | None = None,
    count: int | None = None,
    seed: int | None = None,
    concurrency: int | None = None,
    out: PathLike | None = None,
    rejects: PathLike | None = None,
    report: PathLike | None = None,
    quiet: bool = False,
) -> list[str]:
    """``run APIS --functions FUNCTIONS -m MODEL -J JUDGE ...`` then ``extra``; the judge is the model unless named.

    The defaults are the sample data and the offline backend: ``run_args(count=6, out=path)``
    is a complete offline run.
    """
    flags = llm_flags(
        base_url=base_url,
        model=model,
        judge=judge or model,
        count=count,
        seed=seed,
        concurrency=concurrency,
        out=out,
        rejects=rejects,
        report=report,
        quiet=quiet,
    )
    return ["run", *([] if apis is None else [str(apis)]), *_flag("--functions", functions), *flags, *extra]


def generate_args(
    *extra: str,
    apis: PathLike = APIS,
    base_url: str | None = None,
    model: str | Sequence[str] = "offline",
    count: int | None = None,
    seed: int | None = None,
    concurrency: int | None = None,
    out: PathLike | None = None,
    rejects: PathLike | None = None,
    quiet: bool = False,
) -> list[str]:
    """``generate APIS [--base-url URL] -m MODEL ...`` then ``extra`` (several models: one ``-m`` each, in turn)."""
    flags = llm_flags(
        base_url=base_url, model=model, count=count, seed=seed, concurrency=concurrency, out=out, rejects=rejects, quiet=quiet
    )
    return ["generate", str(apis), *flags, *extra]


def apigen_process(args: Sequence[str], *, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``apigen ARGS`` as a real process, to its end; its stdout and stderr kept as text."""
    return subprocess.run([*APIGEN, *args], env=cli_env(**env), capture_output=True, text=True, timeout=timeout)


def kill_9_once_written(args: Sequence[str], output: Path, lines: int, *, seconds: float = 60) -> None:
    """Start ``apigen ARGS``, wait until ``output`` holds ``lines`` lines, then kill -9 it: a run stopped mid-way.

    The wait is bounded (``seconds``); a run that finished first is killed too late to
    matter, which the caller's check of the run state then shows.
    """
    with subprocess.Popen([*APIGEN, *args], env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (not output.exists() or output.read_bytes().count(b"\n") < lines):
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
