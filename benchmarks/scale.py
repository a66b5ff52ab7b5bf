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
Also printed: the cost of walking the plan, which every shard pays in full.

    python benchmarks/scale.py               # about a minute
    python benchmarks/scale.py --no-ray      # without the Ray engine
"""

from __future__ import annotations

import argparse
import json
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


def timed(commands: list[list[str]]) -> float:
    started = time.perf_counter()
    processes = [subprocess.Popen(each, stderr=subprocess.PIPE, text=True) for each in commands]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="rows requested per run")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the server takes per request")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per LLM client")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray engine")
    args = parser.parse_args()
    count, latency, concurrency = args.count, args.latency, args.concurrency
    print(f"scale: {count} rows requested, server latency {latency * 1000:.0f} ms, {concurrency} in flight per client")
    print(f"walking the plan: {plan_walk(100_000) * 1e6:.1f} us a request (100,000 requests)")
    print(f"{'engine':<22} {'seconds':>8} {'rows/s':>8} {'ideal rows/s':>13} {'of ideal':>9}")
    with LLMServer(latency=latency) as server, tempfile.TemporaryDirectory() as folder:
        server.handler = pipeline_handler
        work = Path(folder)
        cases: list[tuple[str, list[list[str]], list[Path], int]] = []
        one = work / "one.jsonl"
        cases.append(("one process", [command(server.url, one, count, concurrency)], [one], 1))
        start = work / "start.jsonl"
        startup = timed([command(server.url, start, 3, concurrency)])
        shards = [work / f"shard-{index}.jsonl" for index in range(2)]
        runs = [command(server.url, shard, count, concurrency, "--shard", f"{index}/2") for index, shard in enumerate(shards)]
        cases.append(("2 shards + merge", runs, shards, 2))
        if not args.no_ray:
            remote = work / "ray.jsonl"
            cases.append(
                ("ray engine (local)", [command(server.url, remote, count, concurrency, "--engine", "ray")], [remote], 2)
            )
        reference: bytes | None = None
        for name, commands, outputs, clients in cases:
            seconds = timed(commands)
            if len(outputs) > 1:
                merged = work / "merged.jsonl"
                seconds += timed([[*APIGEN, "merge", str(merged), *map(str, outputs), "-q"]])
                requests = sum(llm_requests(out.with_suffix(".report.json")) for out in outputs)
                written = merged.read_bytes()
            else:
                requests = llm_requests(outputs[0].with_suffix(".report.json"))
                written = outputs[0].read_bytes()
            reference = reference if reference is not None else written
            same = "same rows" if written == reference else "ROWS DIFFER"
            ideal_seconds = requests * latency / (concurrency * clients)
            rate, ideal = count / seconds, count / ideal_seconds
            print(
                f"{name:<22} {seconds:>8.2f} {rate:>8.1f} {ideal:>13.1f} {rate / ideal:>9.2f}  ({requests} LLM requests, {same})"
            )
        print(f"local start-up (a run of one request): {startup:.2f} s")
        if not args.no_ray:
            tiny = work / "tiny.jsonl"
            overhead = timed([command(server.url, tiny, 3, concurrency, "--engine", "ray")])
            print(f"ray engine start-up and shut-down (a run of one request): {overhead:.2f} s")
            print(
                f"ray engine without it: {count / max(seconds - overhead, 1e-9):.1f} rows/s, {count / max(seconds - overhead, 1e-9) / ideal:.2f} of ideal"
            )


if __name__ == "__main__":
    main()
