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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from apigen_cli.checkpoint import RunState

from .conftest import PROJECT
from .llm_server import LLMServer

if TYPE_CHECKING:
    from typing_extensions import Unpack

SAMPLE = PROJECT / "sample_data"
APIS, FUNCTIONS, EXAMPLES = str(SAMPLE / "apis.jsonl"), str(SAMPLE / "functions"), str(SAMPLE / "examples.jsonl")
APIGEN = [sys.executable, "-m", "apigen_cli"]

PathLike = str | Path


def saved_state(path: PathLike) -> dict[str, Any]:
    """The run state saved at ``path``, as its fields (the file holds two slots: this reads the newest whole one)."""
    state = RunState.load(str(path))
    assert state is not None, f"no run state at {path}"
    return asdict(state)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of an `apigen` child process: this one's, without colour."""
    return {**os.environ, "NO_COLOR": "1", **extra}


class Flags(TypedDict, total=False):
    """The flags `generate` and `run` share; a flag not given is left out of the command line."""

    server: LLMServer  # the scripted server: --base-url is its URL, and the model is "test-model" unless named
    base_url: str
    model: str | Sequence[str]  # several: one -m each, used in turn
    judge: str  # `run` only; the model unless named
    count: int
    seed: int | None  # None: no `--seed`, the run picks one
    concurrency: int
    out: PathLike
    rejects: PathLike
    report: PathLike
    quiet: bool


def _flag(name: str, value: object) -> list[str]:
    return [] if value is None else [name, str(value)]


def _models(flags: Flags) -> list[str]:
    """The models named, else "test-model" against the scripted server, else "offline"."""
    model = flags.get("model", "offline" if flags.get("server") is None else "test-model")
    return [model] if isinstance(model, str) else list(model)


def llm_flags(**flags: Unpack[Flags]) -> list[str]:
    """The shared flags, in the order the tests used to write them."""
    server = flags.get("server")
    return [
        *_flag("--base-url", server.url if server is not None else flags.get("base_url")),
        *(word for name in _models(flags) for word in ("-m", name)),
        *_flag("-J", flags.get("judge")),
        *_flag("-n", flags.get("count")),
        *_flag("--seed", flags.get("seed")),
        *_flag("--concurrency", flags.get("concurrency")),
        *_flag("-o", flags.get("out")),
        *_flag("--rejects", flags.get("rejects")),
        *_flag("--report", flags.get("report")),
        *(["-q"] if flags.get("quiet") else []),
    ]


def run_args(
    *extra: str, apis: PathLike | None = APIS, functions: PathLike | None = FUNCTIONS, **flags: Unpack[Flags]
) -> list[str]:
    """``run APIS --functions FUNCTIONS -m MODEL -J JUDGE ...`` then ``extra``; the judge is the model unless named.

    The defaults are the sample data and the offline backend: ``run_args(count=6, out=path)``
    is a complete offline run; ``run_args(server=server, ...)`` runs against the scripted server.
    """
    flags.setdefault("judge", _models(flags)[0])
    return ["run", *([] if apis is None else [str(apis)]), *_flag("--functions", functions), *llm_flags(**flags), *extra]


def generate_args(*extra: str, apis: PathLike = APIS, **flags: Unpack[Flags]) -> list[str]:
    """``generate APIS [--base-url URL] -m MODEL ...`` then ``extra``."""
    return ["generate", str(apis), *llm_flags(**flags), *extra]


def apigen_process(args: Sequence[str], *, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``apigen ARGS`` as a real process, to its end; its stdout and stderr kept as text."""
    return subprocess.run([*APIGEN, *args], env=cli_env(**env), capture_output=True, text=True, timeout=timeout)


@contextmanager
def held_apigen(args: Sequence[str], **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """``apigen ARGS`` as a real process the test holds at known points; killed if the test leaves it running."""
    # APIGEN_DUMPABLE=1 keeps apigen dumpable: its /proc/PID/wchan is readable by the test without root's rights
    environment = cli_env(APIGEN_DUMPABLE="1")
    process = subprocess.Popen([*APIGEN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, **options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # closes its pipes


def wait_until(process: subprocess.Popen[bytes], condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Hold until ``condition`` is true of the child (checked again and again); fail if it ends or never gets there."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"the child never got to: {what}"
        time.sleep(0.02)


def kill_9_once_written(
    args: Sequence[str], output: Path, lines: int, *, server: LLMServer | None = None, answered: int = 0, seconds: float = 60
) -> None:
    """Start ``apigen ARGS``, wait until ``output`` holds ``lines`` lines, then kill -9 it: a run stopped mid-way.

    With ``server`` (the run's scripted server) the run cannot finish first, whatever the
    machine's load: the server answers ``answered`` requests (fewer than the run needs) and
    holds the rest until the kill, which comes at ``lines`` lines or once the run is held,
    whichever is first. Without it a run that finished first is killed too late to matter,
    which the caller's check of the run state then shows. The wait is bounded (``seconds``).
    """
    if server is not None:
        server.hold(after=answered)
    try:
        with subprocess.Popen([*APIGEN, *args], env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and (not output.exists() or output.read_bytes().count(b"\n") < lines):
                if server is not None and server.parked:
                    break
                time.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        if server is not None:
            server.release()


def multi_turn_demo(out: Path) -> subprocess.CompletedProcess[str]:
    """`make demo-multi-turn` with this venv's apigen, writing into ``out``."""
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        ["make", "-s", "-C", str(PROJECT), "demo-multi-turn", f"BIN={bin_dir}", "STAMP=", f"MT_OUT={out}"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def kill_9_at_checkpoint(
    args: Sequence[str], state_file: Path, done: int, server: LLMServer, answered: int, *, seconds: float = 60
) -> dict[str, Any]:
    """Start ``apigen ARGS`` with ``server`` answering ``answered`` requests and holding the rest; once the run
    state ``state_file`` says ``done`` requests are done, kill -9 the run. Returns the state it left.

    The server's hold keeps the run from going further, whatever the machine's load; the wait for the
    checkpoint (written by the run's main thread after the held request parked) is bounded by ``seconds``.
    """
    server.hold(after=answered)
    try:
        with subprocess.Popen([*APIGEN, *args], env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
            try:
                assert server.wait_parked(1, seconds), "the run never reached the held request"
                deadline = time.monotonic() + seconds
                while not state_file.exists() or saved_state(state_file)["requests_done"] < done:
                    assert process.poll() is None, "the held run ended"
                    assert time.monotonic() < deadline, f"the run state never reached {done} requests done"
                    time.sleep(0.02)
            finally:  # killed whatever happened: a failed wait must not leave the held run behind
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
    finally:
        server.release()
    return saved_state(state_file)
