"""Past one machine: rows/s of one process, of 2 shards side by side, and of the Ray engine.

The same work for each: ``apigen run`` over sample_data/ (generation, the
format, execution and semantic checks) against the scripted OpenAI-compatible
server of tests/ on 127.0.0.1, which answers every request after a fixed
latency L. Each run is a real ``apigen`` process (two for the shards, then
``apigen merge``); its time includes starting Python (and Ray).

The ideal beside each figure: every LLM request the run made (counted in its
report), L seconds each, C in flight per LLM client, with as many clients as
the engine has (1 for one process, 2 for two shards, 2 for Ray: a generation and
a judging actor). Ideal rows/s = rows requested / (requests x L / (C x clients)).
Ray's stages run side by side, so its own bound is its busiest client's: the
judging actor asks one request per row, the generation actor one per request
planned; that bound is printed after the table.

The Ray engine runs twice: starting (and stopping) a local Ray of its own, as
``apigen run --engine ray`` does without a cluster, and joining a Ray that is
already running (this script starts it, 2 CPUs), as a cluster's driver does.
Also printed: the cost of walking the plan, which every shard pays in full.
With ``--repeat N`` each case runs N times, interleaved; the figures are the
median, and "range" is the lowest and highest fraction of ideal.

    python benchmarks/scale.py               # about two minutes
    python benchmarks/scale.py --repeat 3    # on a noisy machine
    python benchmarks/scale.py --no-ray      # without the Ray engine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.llm_server import LLMServer  # noqa: E402
from tests.scripted_model import pipeline_handler  # noqa: E402

APIGEN = [sys.executable, "-m", "apigen_cli"]


def command(url: str, out: Path, count: int, concurrency: int, *extra: str) -> list[str]:
    return [
        *APIGEN,
        "run",
        str(ROOT / "sample_data" / "apis.jsonl"),
        "--functions",
        str(ROOT / "sample_data" / "functions"),
        "--base-url",
        url,
        "-m",
        "bench",
        "-J",
        "bench",
        "-n",
        str(count),
        "--seed",
        "11",
        "--concurrency",
        str(concurrency),
        "--workers",
        "1",
        "-o",
        str(out),
        "--rejects",
        str(out.with_suffix(".rejects.jsonl")),
        "--report",
        str(out.with_suffix(".report.json")),
        "-q",
        *extra,
    ]


def llm_requests(report: Path) -> int:
    return int(sum(counts["requests"] for counts in json.loads(report.read_text())["tokens"].values()))


def timed(commands: list[list[str]], environment: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    processes = [subprocess.Popen(each, stderr=subprocess.PIPE, text=True, env=environment) for each in commands]
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a run failed:\n{stderr}")
    return time.perf_counter() - started


def plan_walk(count: int) -> float:
    """Seconds to walk the whole plan of ``count`` rows (what a shard does before its block)."""
    from apigen_cli.stages.generate import prepare_generation
    from apigen_cli.stages.sampling import GenerationSettings

    job = prepare_generation(str(ROOT / "sample_data" / "apis.jsonl"), GenerationSettings(count=count, seed=1))
    started = time.perf_counter()
    walked = sum(1 for _ in job.plans())
    return (time.perf_counter() - started) / walked


def generation_requests(count: int) -> int:
    """The generation requests a run of ``count`` rows plans (the rest of its requests are the judges')."""
    from apigen_cli.stages.generate import prepare_generation
    from apigen_cli.stages.sampling import GenerationSettings

    job = prepare_generation(str(ROOT / "sample_data" / "apis.jsonl"), GenerationSettings(count=count, seed=11))
    return sum(1 for _ in job.plans())


class Case:
    """One way to run the work, and what its runs measured."""

    def __init__(self, name: str, commands: list[list[str]], outputs: list[Path], clients: int, joins_ray: bool = False):
        self.name, self.commands, self.outputs, self.clients, self.joins_ray = name, commands, outputs, clients, joins_ray
        self.seconds: list[float] = []
        self.requests = 0
        self.written = b""

    def run(self, work: Path, environment: dict[str, str] | None) -> None:
        for output in self.outputs:
            for path in (output, output.with_suffix(".rejects.jsonl")):
                path.unlink(missing_ok=True)
        seconds = timed([[*each, "--overwrite"] for each in self.commands], environment if self.joins_ray else None)
        if len(self.outputs) > 1:
            merged = work / "merged.jsonl"
            seconds += timed([[*APIGEN, "merge", str(merged), *map(str, self.outputs), "-q", "--overwrite"]])
            self.requests = sum(llm_requests(out.with_suffix(".report.json")) for out in self.outputs)
            self.written = merged.read_bytes()
        else:
            self.requests = llm_requests(self.outputs[0].with_suffix(".report.json"))
            self.written = self.outputs[0].read_bytes()
        self.seconds.append(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="rows requested per run")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the server takes per request")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per LLM client")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (interleaved); the median is shown")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray engine")
    args = parser.parse_args()
    count, latency, concurrency = args.count, args.latency, args.concurrency
    print(f"scale: {count} rows requested, server latency {latency * 1000:.0f} ms, {concurrency} in flight per client")
    print(f"walking the plan: {plan_walk(100_000) * 1e6:.1f} us a request (100,000 requests)")
    with LLMServer(latency=latency) as server, tempfile.TemporaryDirectory() as folder:
        server.handler = pipeline_handler
        work = Path(folder)
        one, shards, remote, joined = (
            work / "one.jsonl",
            [work / f"shard-{k}.jsonl" for k in range(2)],
            work / "ray.jsonl",
            work / "joined.jsonl",
        )
        cases = [
            Case("one process", [command(server.url, one, count, concurrency)], [one], 1),
            Case(
                "2 shards + merge",
                [command(server.url, shard, count, concurrency, "--shard", f"{k}/2") for k, shard in enumerate(shards)],
                shards,
                2,
            ),
        ]
        if not args.no_ray:
            cases.append(
                Case("ray engine (own Ray)", [command(server.url, remote, count, concurrency, "--engine", "ray")], [remote], 2)
            )
            cases.append(
                Case(
                    "ray engine (joining)",
                    [command(server.url, joined, count, concurrency, "--engine", "ray")],
                    [joined],
                    2,
                    True,
                )
            )
        startup, overhead, environment = [], [], _joinable_ray() if not args.no_ray else None
        try:
            for _ in range(args.repeat):
                for case in cases:
                    case.run(work, environment)
                startup.append(timed([command(server.url, work / "start.jsonl", 3, concurrency, "--overwrite")]))
                if not args.no_ray:
                    tiny = command(server.url, work / "tiny.jsonl", 3, concurrency, "--engine", "ray", "--overwrite")
                    overhead.append(timed([tiny]))
        finally:
            if environment is not None:
                import ray

                ray.shutdown()
        print(f"{'engine':<22} {'seconds':>8} {'rows/s':>8} {'ideal rows/s':>13} {'of ideal':>9} {'range':>11}")
        reference = cases[0].written
        for case in cases:
            seconds = statistics.median(case.seconds)
            ideal = count / (case.requests * latency / (concurrency * case.clients))
            fractions = [count / each / ideal for each in case.seconds]
            same = "same rows" if case.written == reference else "ROWS DIFFER"
            print(
                f"{case.name:<22} {seconds:>8.2f} {count / seconds:>8.1f} {ideal:>13.1f} {count / seconds / ideal:>9.2f}"
                f" {min(fractions):>5.2f}-{max(fractions):<5.2f} ({case.requests} LLM requests, {same})"
            )
        print(f"local start-up (a run of one request): {statistics.median(startup):.2f} s")
        if not args.no_ray:
            generation = generation_requests(count)
            judging = cases[-1].requests - generation
            bound = count / (max(generation, judging) * latency / concurrency)
            print(f"ray's own bound (the judging actor's {judging} requests; generation's {generation}): {bound:.1f} rows/s")
            for case in cases[2:]:
                fractions = [count / each / bound for each in case.seconds]
                print(f"  {case.name}: {statistics.median(fractions):.2f} of it ({min(fractions):.2f}-{max(fractions):.2f})")
            print(
                f"ray engine start-up and shut-down (a run of one request, own Ray): {statistics.median(overhead):.2f} s"
                f" ({min(overhead):.2f}-{max(overhead):.2f})"
            )
            own = statistics.median(cases[2].seconds) - statistics.median(overhead)
            ideal = count / (cases[2].requests * latency / (concurrency * 2))
            print(
                f"ray engine (own Ray) without it: {count / max(own, 1e-9):.1f} rows/s, {count / max(own, 1e-9) / ideal:.2f} of ideal"
            )


def _joinable_ray() -> dict[str, str]:
    """Start a local Ray in this process (2 CPUs) and the environment that makes a run join it."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    return {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}


if __name__ == "__main__":
    main()
