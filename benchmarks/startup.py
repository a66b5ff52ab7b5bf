"""`apigen generate`: the time from starting the process to its first request, against the library's size.

The scripted server of tests/llm_server.py runs in this process (``pipeline`` script, no
latency) and notes when each request arrives. For libraries of about 800, 16,000 and 64,000
APIs (made by renaming, as benchmarks/generate_scale.py makes them), each measure starts a real
process and takes the time from just before starting it:

- `apigen generate LIB --base-url URL -m bench -n 64 --pairs-per-prompt 1 -o /dev/null -q`:
  until the server sees its first request;
- `apigen generate LIB -m offline -n 100000 --pairs-per-prompt 1 -q` (rows to a pipe): until
  its first row can be read (then it is stopped);
- `apigen generate --help`: until it exits;
- `apigen run` over the sample library and functions, 64 rows: until its first request;
- `apigen simulate` over one blueprint of the sample store (`apigen blueprint -m offline`, made
  once), its classes as the environment, the server answering as tests/scripted_conversation.py
  does: until its first request (the process then acts the blueprint out to its end);
- `apigen simulate --help`: until it exits.

Beside them, in the same run: `python -c pass` (the interpreter alone) and the bare aiohttp
client of generate_scale.py (``--floor``, a fresh process) until its first request: what any
client in Python pays before it sends. Sizes and measures interleave; printed: the median and
range of each over the repeats.

    python benchmarks/startup.py                 # about a minute
    python benchmarks/startup.py --sizes 800 16000 --repeat 9
    python benchmarks/startup.py --compare /tmp/before/src   # beside other code (`git archive REV | tar -x -C /tmp/before`)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _common import APIGEN, ROOT, apigen_command
from generate_scale import CHILD_ENVIRONMENT, base_tools, request_bodies, write_library

sys.path.insert(0, str(ROOT))
from tests.llm_server import LLMServer, Received, Reply  # noqa: E402  (the checkout's tests, as _common runs them)
from tests.scripted_conversation import conversation_handler  # noqa: E402
from tests.scripted_model import pipeline_handler  # noqa: E402

from apigen_cli.conversations.simulation import simulation_tools  # noqa: E402

STORE = ROOT / "sample_data" / "store"


class FirstRequest:
    """A server handler that notes when the first request since ``reset`` arrived, and answers with ``answer``."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.at = 0.0
        self.answer: Callable[[Received], Reply | None] = pipeline_handler

    def reset(self, answer: Callable[[Received], Reply | None]) -> None:
        self.arrived.clear()
        self.answer = answer

    def __call__(self, request: Received) -> Reply | None:
        if not self.arrived.is_set():
            self.at = time.perf_counter()
            self.arrived.set()
        return self.answer(request)


def until_first_request(
    command: list[str], first: FirstRequest, env: dict[str, str], answer: Callable[[Received], Reply | None] = pipeline_handler
) -> float:
    """Seconds from starting ``command`` to the server's first request from it; the process then runs to its end."""
    first.reset(answer)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=300)
    if process.returncode != 0 or not first.arrived.is_set():
        raise SystemExit(f"`{' '.join(command)}` exited {process.returncode}:\n{stderr.decode()}")
    return first.at - started


def until_first_row(command: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``command`` to the first line on its stdout; the process is then stopped."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline()
    seconds = time.perf_counter() - started
    process.kill()
    process.wait()
    if not line:
        raise SystemExit(f"`{' '.join(command)}` wrote no row")
    return seconds


def until_exit(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def one_blueprint(folder: Path) -> Path:
    """A verified blueprint of the sample store, as `apigen blueprint -m offline` writes it."""
    tools, blueprints = folder / "store_tools.jsonl", folder / "blueprints.jsonl"
    subprocess.run([*APIGEN, "library", "from-python", str(STORE), "--class", "OnlineStore", "-o", str(tools), "-q"], check=True)
    subprocess.run(
        [*APIGEN, "blueprint", str(tools), "--functions", str(STORE), "--initial-state", str(STORE / "initial_state.json"),
         "--policy", str(STORE / "policy.md"), "-m", "offline", "-n", "1", "--seed", "23", "-O", "offline_error_rate=0",
         "-o", str(blueprints), "-q"],
        check=True,
    )  # fmt: skip
    return blueprints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[800, 16000, 64000], help="library sizes (about)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measure (default 5)")
    parser.add_argument(
        "--compare",
        metavar="SRC",
        help="also run each apigen measure with PYTHONPATH=SRC (the src folder of other code, e.g. from `git archive`), interleaved",
    )
    arguments = parser.parse_args()
    first = FirstRequest()
    measures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as name, LLMServer(models=("bench",), handler=first) as server:
        server.keep_requests = False
        folder = Path(name)
        tools = base_tools()
        libraries = [write_library(tools, size, folder) for size in arguments.sizes]
        bodies = folder / "bodies.jsonl"
        request_bodies(libraries[0][0], 64, 1, server.url, 64, bodies)
        run_options = {"base_url": server.url, "model": "bench", "count": 64, "seed": 1, "out": folder / "run.jsonl"}
        run = apigen_command("run", "--pairs-per-prompt", "1", "--overwrite", **run_options)
        blueprints = one_blueprint(folder)
        rows = [json.loads(line) for line in blueprints.read_text().splitlines() if line.strip()]
        conversation = conversation_handler(rows, sorted(simulation_tools(None, str(STORE))[1]))
        simulate = [
            *APIGEN, "simulate", str(blueprints), "--functions", str(STORE), "--policy", str(STORE / "policy.md"),
            "--base-url", server.url, "-m", "agent", "--user-model", "user", "--seed", "1",
            "-o", str(folder / "conversations.jsonl"), "--overwrite", "-q",
        ]  # fmt: skip
        floor = [sys.executable, str(Path(__file__).with_name("generate_scale.py")), "--floor", str(bodies), server.url, "64"]
        here = CHILD_ENVIRONMENT
        runs: list[tuple[str, Callable[[dict[str, str]], float]]] = [
            ("apigen generate --help", lambda env: until_exit([*APIGEN, "generate", "--help"], env)),
            ("apigen run, sample library: to its first request", lambda env: until_first_request(run, first, env)),
            ("apigen simulate --help", lambda env: until_exit([*APIGEN, "simulate", "--help"], env)),
            (
                "apigen simulate, one blueprint: to its first request",
                lambda env: until_first_request(simulate, first, env, conversation),
            ),
        ]
        for path, size in libraries:
            one_pair = ["--pairs-per-prompt", "1", "--seed", "1", "-q"]
            networked = [*APIGEN, "generate", str(path), "--base-url", server.url, "-m", "bench", "-n", "64", *one_pair]
            offline = [*APIGEN, "generate", str(path), "-m", "offline", "-n", "100000", *one_pair]
            runs.append(
                (f"generate, {size:,} APIs: to its first request", lambda env, c=networked: until_first_request(c, first, env))
            )
            runs.append((f"generate -m offline, {size:,} APIs: to its first row", lambda env, c=offline: until_first_row(c, env)))
        variants = [("", here)]
        if arguments.compare:
            variants.append((" [compared]", {**here, "PYTHONPATH": arguments.compare}))
        baselines: list[tuple[str, Callable[[dict[str, str]], float]]] = [
            ("python -c pass", lambda env: until_exit([sys.executable, "-c", "pass"], env)),
            ("bare aiohttp client, to its first request", lambda env: until_first_request(floor, first, env)),
        ]
        everything = [(label, measure, here) for label, measure in baselines]
        everything += [(label + suffix, measure, env) for label, measure in runs for suffix, env in variants]
        for _ in range(arguments.repeat):
            for label, measure, env in everything:
                measures.setdefault(label, []).append(measure(env))
    print(f"seconds from starting the process; median (range) of {arguments.repeat} runs, interleaved")
    for label, seconds in measures.items():
        print(f"{label:<52} {statistics.median(seconds):6.3f}  ({min(seconds):.3f}-{max(seconds):.3f})")


if __name__ == "__main__":
    main()
