"""`apigen generate`: cost per request against the library's size, and the whole process against a bare client.

Part 1, offline. Libraries of about 800, 4,000, 16,000 and 64,000 APIs, made by renaming:
the 769 distinct tools of the BFCL corpus (../shared/corpora/bfcl, each tool in the category
of the first BFCL row that offers it) plus the 57 of sample_data/apis.jsonl, copied with a
suffix on every name and category (without the corpora, the sample library alone, with a
message). For each, `apigen generate LIB -m offline --pairs-per-prompt 1 -o /dev/null` runs as
a real process for 200 and for 8,200 requests (``--requests``); the cost per request is the
difference of the two wall times over 8,000, so that start-up (interpreter, imports, loading
the library) drops out. Printed: milliseconds per request, median and range over the repeats (sizes interleaved),
the ratio to the smallest library's median measured in the same run, and the start-up left
over (the 200-request time less 200 requests' cost).

Part 2, networked. The scripted OpenAI-compatible server of tests/llm_server.py in its own
process (``--script pipeline``: valid pairs for the tools offered) answers every request after
L = 50 ms. `apigen generate` over the 800-API library, N = 4,000 requests of one pair, C = 64
in flight, whole process timed; beside it, a bare client floor: this script in a fresh process
(``--floor``) sending the very same request bodies (built by apigen's own code from the same
seed, written to a file first) with aiohttp, C in flight, reading and parsing each reply, also
timed whole. Runs alternate; printed: each pair's times and floor / apigen (1.0: apigen costs
nothing over a bare client), median and range.

Part 3, `apigen run` end to end. The same server; `apigen run` over the sample library and its
functions (`-m bench -J bench`), N = 4,000 rows of one pair, C = 64, whole process timed: a
generation request a row and a judge request for each row that passes the format and execution
checks. Its floor is the same bare client sending the very bodies that run sent, all of them
(generation and judge), C in flight: they are recorded first by running `apigen run` with the
same seed against the same scripted model in this process (no latency), since the judge's
prompts hold the generated rows. Alternating; printed as part 2, with the number of requests.

    python benchmarks/generate_scale.py                        # about 5 minutes
    python benchmarks/generate_scale.py --repeat 5 --no-network
    python benchmarks/generate_scale.py --sizes 800 16000 --requests 100 1100
    python benchmarks/generate_scale.py --no-offline --no-network   # part 3 alone, about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import APIGEN, ROOT, SAMPLE, apigen_command, llm_server_process

CORPORA = ROOT.parent / "shared" / "corpora" / "bfcl"
# Python may cache compiled modules, as it does for an installed apigen (pip compiles them): with
# PYTHONDONTWRITEBYTECODE set, every start would compile apigen's hundred modules from source again.
CHILD_ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def base_tools() -> list[dict[str, Any]]:
    """The BFCL corpus's distinct tools (if present) and the sample library's, each with a category."""
    tools: dict[str, dict[str, Any]] = {}
    if CORPORA.is_dir():
        for path in sorted(CORPORA.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                row = json.loads(line)
                for tool in row["tools"]:
                    tools.setdefault(tool["name"], {**tool, "category": f"bfcl_{row['id']}"})
    else:
        print(f"({CORPORA} is absent: the libraries are made from sample_data/apis.jsonl alone)")
    for line in (SAMPLE / "apis.jsonl").read_text().splitlines():
        if line.strip():
            definition = json.loads(line)
            named = definition.get("function", definition)
            tools.setdefault(named["name"], definition)
    return list(tools.values())


def renamed(definition: dict[str, Any], copy: int) -> dict[str, Any]:
    """A copy of a tool definition under a new name and category (``NAME_c3``), in the same dialect."""
    if copy == 0:
        return definition
    clone = json.loads(json.dumps(definition))
    named = clone.get("function", clone)
    named["name"] = f"{named['name']}_c{copy}"
    clone["category"] = f"{definition.get('category', 'uncategorised')}_c{copy}"
    return clone


def write_library(tools: list[dict[str, Any]], size: int, folder: Path) -> tuple[Path, int]:
    """A library of about ``size`` APIs (whole copies of ``tools``): its path and its real size."""
    copies = max(1, round(size / len(tools)))
    path = folder / f"apis_{size}.jsonl"
    with path.open("w") as handle:
        for copy in range(copies):
            for tool in tools:
                handle.write(json.dumps(renamed(tool, copy)) + "\n")
    return path, copies * len(tools)


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds, the whole process
    cpu: float  # user + system seconds of the process (its own work, whatever else the machine runs)


def timed(command: list[str], env: dict[str, str] | None = None) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env or CHILD_ENVIRONMENT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` exited {done.returncode}:\n{done.stderr}")
    return Timing(seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def generate_command(library: Path, requests: int, seed: int, *model: str) -> list[str]:
    """``apigen generate LIBRARY`` for ``requests`` requests of one pair, to /dev/null, quiet; ``model``: its flags."""
    count = ["-n", str(requests), "--seed", str(seed)]
    return [*APIGEN, "generate", str(library), "--pairs-per-prompt", "1", *count, *model, "-o", "/dev/null", "-q"]


def offline(libraries: list[tuple[Path, int]], requests: tuple[int, int], repeat: int) -> None:
    few, many = requests
    print(f"offline `apigen generate -m offline --pairs-per-prompt 1`: cost per request = (t({many}) - t({few})) / {many - few}")
    print("wall: elapsed time; CPU: the process's user + system time (steadier while other work shares the cores)")
    wall: dict[Path, list[float]] = {path: [] for path, _ in libraries}
    cpu: dict[Path, list[float]] = {path: [] for path, _ in libraries}
    startups: dict[Path, list[float]] = {path: [] for path, _ in libraries}
    for round_number in range(repeat):
        for path, _size in libraries:
            short = timed(generate_command(path, few, 1 + round_number, "-m", "offline"))
            long = timed(generate_command(path, many, 1 + round_number, "-m", "offline"))
            cost = (long.wall - short.wall) / (many - few)
            wall[path].append(cost)
            cpu[path].append((long.cpu - short.cpu) / (many - few))
            startups[path].append(short.wall - few * cost)
    print(
        f"{'APIs':>7} {'wall ms/req':>12} {'range':>13} {'ratio':>6} {'CPU ms/req':>11} {'range':>13} {'ratio':>6}"
        f" {'start-up s':>11}   ({repeat} runs each; ratio: to the first size's median)"
    )
    first_wall, first_cpu = statistics.median(wall[libraries[0][0]]), statistics.median(cpu[libraries[0][0]])
    for path, size in libraries:
        print(
            f"{size:>7} {_cell(wall[path], first_wall)} {_cell(cpu[path], first_cpu)} {statistics.median(startups[path]):>11.2f}",
            flush=True,
        )


def _cell(costs: list[float], first: float) -> str:
    """Median ms per request, its range, and the median's ratio to ``first``."""
    median = statistics.median(costs)
    spread = f"{min(costs) * 1000:.2f}-{max(costs) * 1000:.2f}"
    return f"{median * 1000:>12.3f} {spread:>13} {median / first:>6.2f}"


def request_bodies(library: Path, requests: int, seed: int, url: str, concurrency: int, path: Path) -> None:
    """The bodies `apigen generate` sends for this library and seed, one JSON line each, made by apigen's code."""
    import orjson

    from apigen_cli.config import LLMSettings
    from apigen_cli.llm.http_backend import HttpBackend
    from apigen_cli.stages.generate import build_request, prepare_generation
    from apigen_cli.stages.sampling import GenerationSettings

    settings = LLMSettings(base_url=url, models=("bench",), concurrency=concurrency)
    backend = HttpBackend(settings)
    job = prepare_generation(str(library), GenerationSettings(count=requests, pairs_per_prompt=1, seed=seed, models=("bench",)))
    with path.open("wb") as handle:
        for plan in job.plans():
            request = build_request(plan, job.prompts, with_schema=settings.json_mode == "schema")
            handle.write(orjson.dumps(backend.body(request)) + b"\n")
    backend.close()


async def bare_client(bodies: Path, url: str, concurrency: int) -> int:
    """The floor: POST every body with aiohttp, ``concurrency`` in flight, reading and parsing each reply."""
    import aiohttp
    import orjson

    pending = iter(bodies.read_bytes().splitlines())
    answered = 0
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal answered
            for body in pending:
                async with session.post(url + "/chat/completions", data=body) as response:
                    reply = orjson.loads(await response.read())
                answered += bool(reply["choices"][0]["message"]["content"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered


def networked(library: Path, requests: int, concurrency: int, latency: float, repeat: int, folder: Path) -> None:
    with llm_server_process(latency, script="pipeline") as (_server, url):
        print(
            f"networked `apigen generate` ({library.name}, N = {requests} requests of one pair, C = {concurrency},"
            f" L = {latency * 1000:g} ms; ideal N * L / C = {requests * latency / concurrency:.2f} s)"
        )
        print("beside a bare aiohttp client sending the same bodies; both whole processes; fraction = floor / apigen")
        print(f"{'run':>4} {'apigen s':>9} {'floor s':>8} {'fraction':>9} {'apigen CPU s':>13} {'floor CPU s':>12}")
        fractions: list[float] = []
        for index in range(repeat):
            seed = 1 + index
            bodies = folder / f"bodies_{seed}.jsonl"
            request_bodies(library, requests, seed, url, concurrency, bodies)
            apigen = timed(
                generate_command(library, requests, seed, "--base-url", url, "-m", "bench", "--concurrency", str(concurrency))
            )
            floor = timed([sys.executable, __file__, "--floor", str(bodies), url, str(concurrency)])
            fractions.append(floor.wall / apigen.wall)
            print(
                f"{index + 1:>4} {apigen.wall:>9.2f} {floor.wall:>8.2f} {floor.wall / apigen.wall:>9.2f}"
                f" {apigen.cpu:>13.2f} {floor.cpu:>12.2f}",
                flush=True,
            )
        print(f"median fraction {statistics.median(fractions):.2f}, range {min(fractions):.2f}-{max(fractions):.2f} (aim: 0.8)")


def run_command(rows: int, seed: int, url: str, concurrency: int, folder: Path) -> list[str]:
    """``apigen run`` over the sample library for ``rows`` rows of one pair, its output in ``folder``."""
    rejects, out = folder / "rejects.jsonl", folder / "dataset.jsonl"
    sizes = {"count": rows, "seed": seed, "concurrency": concurrency}
    pairs = ("--pairs-per-prompt", "1", "--overwrite")
    return apigen_command("run", *pairs, base_url=url, model="bench", **sizes, out=out, rejects=rejects)


def recorded_run_bodies(rows: int, seed: int, concurrency: int, folder: Path, path: Path) -> int:
    """Run ``apigen run`` against the scripted model in this process, no latency; write the bodies it sent, one a line."""
    sys.path.insert(0, str(ROOT))
    from tests.llm_server import LLMServer
    from tests.scripted_model import pipeline_handler

    with LLMServer(models=("bench",), handler=pipeline_handler) as server:
        timed(run_command(rows, seed, server.url, concurrency, folder))
        bodies = [request.raw for request in server.chat_requests()]
    path.write_bytes(b"".join(body + b"\n" for body in bodies))
    return len(bodies)


def end_to_end(rows: int, concurrency: int, latency: float, repeat: int, folder: Path, compare: str | None) -> None:
    with llm_server_process(latency, script="pipeline") as (_server, url):
        print(
            f"`apigen run` end to end (sample library and functions, N = {rows} rows of one pair, C = {concurrency},"
            f" L = {latency * 1000:g} ms): a generation request a row, a judge request a row that passes the checks"
        )
        print("beside a bare aiohttp client sending the bodies that run sent; both whole processes; fraction = floor / apigen")
        print(
            f"{'run':>4} {'requests':>9} {'apigen s':>9} {'floor s':>8} {'fraction':>9} {'apigen CPU s':>13} {'floor CPU s':>12}"
        )
        fractions: dict[str, list[float]] = {}
        variants = [("", CHILD_ENVIRONMENT)]
        if compare:
            variants.append((" [compared]", {**CHILD_ENVIRONMENT, "PYTHONPATH": compare}))
        for index in range(repeat):
            seed = 1 + index
            bodies = folder / f"run_bodies_{seed}.jsonl"
            requests = recorded_run_bodies(rows, seed, concurrency, folder, bodies)
            floor = timed([sys.executable, __file__, "--floor", str(bodies), url, str(concurrency)])
            for label, env in variants:
                apigen = timed(run_command(rows, seed, url, concurrency, folder), env)
                fractions.setdefault(label, []).append(floor.wall / apigen.wall)
                print(
                    f"{index + 1:>4} {requests:>9} {apigen.wall:>9.2f} {floor.wall:>8.2f} {floor.wall / apigen.wall:>9.2f}"
                    f" {apigen.cpu:>13.2f} {floor.cpu:>12.2f}{label}",
                    flush=True,
                )
        for label, values in fractions.items():
            spread = f"range {min(values):.2f}-{max(values):.2f}"
            print(f"median fraction{label} {statistics.median(values):.2f}, {spread} (aim: 0.8)")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--floor":
        bodies, url, concurrency = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        answered = asyncio.run(bare_client(bodies, url, concurrency))
        raise SystemExit(0 if answered == len(bodies.read_bytes().splitlines()) else 1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[800, 4000, 16000, 64000], help="library sizes (about)")
    parser.add_argument(
        "--requests", type=int, nargs=2, default=[200, 8200], help="the two request counts (offline; default 200 8200)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure (default 3)")
    parser.add_argument("--network-requests", type=int, default=4000, help="N for the networked part (default 4000)")
    parser.add_argument("--concurrency", type=int, default=64, help="C for the networked part (default 64)")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency L in seconds (default 0.05)")
    parser.add_argument("--no-offline", action="store_true", help="skip part 1")
    parser.add_argument("--no-network", action="store_true", help="skip part 2")
    parser.add_argument("--no-run", action="store_true", help="skip part 3")
    parser.add_argument("--compare", metavar="SRC", help="part 3: also run apigen with PYTHONPATH=SRC (other code), same floor")
    parser.add_argument("--run-rows", type=int, default=4000, help="N for part 3, rows of `apigen run` (default 4000)")
    arguments = parser.parse_args()
    tools = base_tools()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        libraries = [write_library(tools, size, folder) for size in arguments.sizes]
        if not arguments.no_offline:
            offline(libraries, tuple(arguments.requests), arguments.repeat)
        if not arguments.no_network:
            library = libraries[0][0]
            networked(library, arguments.network_requests, arguments.concurrency, arguments.latency, arguments.repeat, folder)
        if not arguments.no_run:
            end_to_end(arguments.run_rows, arguments.concurrency, arguments.latency, arguments.repeat, folder, arguments.compare)


if __name__ == "__main__":
    main()
