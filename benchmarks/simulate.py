"""`apigen simulate` against a scripted server with a fixed latency: wall time against the ideal, and memory.

The server (tests/llm_server.py in a process of its own, answering as tests/scripted_conversation.py
does: the offline backend's scripted user and agent, the agent with native `tool_calls`) waits
``--latency`` seconds before each reply. A conversation is sequential: each request waits for the
one before, so the ideal wall time is every request made x latency / concurrency (the requests
counted from `--log-llm`). The ratio ideal / wall says how much of the time the run kept
``--concurrency`` requests in flight; what is left is the environment's sessions, the checks
and the client. The peak memory of the apigen process is given for two input sizes, to show it
flat in the number of conversations, and the CPU seconds of apigen and every process it started
(a measure a machine shared with other work does not blur as it blurs the wall time).

Run: ``.venv/bin/python benchmarks/simulate.py [--latency 0.05] [--concurrency 8 32] [--blueprints 24 96]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
STORE = PROJECT / "sample_data" / "store"
APIGEN = str(Path(sys.executable).parent / "apigen")

SERVER = """
import sys, json
from pathlib import Path
sys.path.insert(0, {project!r})
from apigen_cli.conversations.simulation import simulation_tools
from tests.llm_server import LLMServer
from tests.scripted_conversation import conversation_handler
import asyncio

rows = [json.loads(line) for line in Path({blueprints!r}).read_text().splitlines() if line.strip()]
writes = sorted(simulation_tools(None, {store!r})[1])
server = LLMServer(latency={latency}, handler=conversation_handler(rows, writes))

async def main():
    await server.serve()
    print("READY", server.port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def make_blueprints(folder: Path, count: int) -> Path:
    tools = folder / "store_tools.jsonl"
    subprocess.run([APIGEN, "library", "from-python", str(STORE), "--class", "OnlineStore", "-o", str(tools), "-q"], check=True)
    path = folder / f"blueprints-{count}.jsonl"
    subprocess.run(
        [APIGEN, "blueprint", str(tools), "--functions", str(STORE), "--initial-state", str(STORE / "initial_state.json"),
         "--policy", str(STORE / "policy.md"), "-m", "offline", "-n", str(count), "--seed", "23",
         "-O", "offline_error_rate=0", "-o", str(path), "-q"],
        check=True,
    )  # fmt: skip
    return path


def run_once(blueprints: Path, folder: Path, latency: float, concurrency: int) -> dict[str, float]:
    code = SERVER.format(project=str(PROJECT), blueprints=str(blueprints), store=str(STORE), latency=latency)
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=PROJECT)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        log = folder / f"log-{concurrency}-{blueprints.stem}.jsonl"
        output = folder / f"out-{concurrency}-{blueprints.stem}.jsonl"  # each run its own: -o FILE resumes a run
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = usage.ru_maxrss
        started = time.perf_counter()
        done = subprocess.run(
            [APIGEN, "simulate", str(blueprints), "--functions", str(STORE), "--policy", str(STORE / "policy.md"),
             "--base-url", f"http://127.0.0.1:{port}/v1", "-m", "agent", "--user-model", "user", "--seed", "1",
             "--concurrency", str(concurrency), "--log-llm", str(log), "-o", str(output), "-q"],
            capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # apigen and all it started (the server is not waited yet)
        peak = after.ru_maxrss
    finally:
        server.kill()
        server.wait()
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    requests = sum(1 for _line in log.open())
    kept = sum(1 for _line in output.open())
    ideal = requests * latency / concurrency
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return {"requests": requests, "kept": kept, "wall": wall, "ideal": ideal, "cpu": cpu, "peak_mb": max(peak, before) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--blueprints", type=int, nargs="+", default=[24, 96])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for count in arguments.blueprints:
            blueprints = make_blueprints(folder, count)
            rows = sum(1 for _line in blueprints.open())
            for concurrency in arguments.concurrency:
                figures = run_once(blueprints, folder, arguments.latency, concurrency)
                print(
                    json.dumps(
                        {
                            "blueprints": rows,
                            "concurrency": concurrency,
                            "latency": arguments.latency,
                            **figures,
                            "ideal_over_wall": figures["ideal"] / figures["wall"],
                            "cpus": os.cpu_count(),
                        }
                    ),  # fmt: skip
                    flush=True,
                )


if __name__ == "__main__":
    main()
