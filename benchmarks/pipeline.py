"""`apigen run` end to end, as a real process, against the ideal 2 * N * L / C.

Starts the scripted OpenAI-compatible server of tests/llm_server.py in its own
process (``--script pipeline``: generation requests get valid pairs for the tools
they offer, judge requests a passing verdict), answering every request after a
fixed latency L (50 ms). Then runs ``python -m apigen_cli run`` on the sample
library for N rows (4,000) at C requests in flight (64), with one pair per
prompt: N generation requests and, for every row that passes the format and
execution checks, one judge request, so two LLM requests a row. With the C
connections always busy the run could not take less than

    ideal = 2 * N * L / C     (6.25 s for N = 4,000, L = 50 ms, C = 64)

and the figure printed is ideal / measured, the measured time being the whole
process (interpreter start, imports, worker processes, the run, shutdown). The
script also prints the ideal for the requests really made (from the report), the
time inside the run as the report counts it (so the rest is start-up and
shutdown), the CPU seconds of the apigen process (its exec workers included) and
of the server, and, with ``--phases``, ``apigen generate`` alone against its
ideal N * L / C.

    python benchmarks/pipeline.py                  # 3 runs, about a minute
    python benchmarks/pipeline.py --phases         # also the generation phase alone
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import ROOT, apigen_command, llm_server_process

ONE_PAIR = ("--pairs-per-prompt", "1")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Measure:
    seconds: float  # wall time of the whole process
    cpu: float  # user + system seconds of the apigen process and the children it waited for
    server_cpu: float | None  # the server's user + system seconds over the same time
    report: dict[str, Any] | None


def process_cpu(pid: int) -> float | None:
    """User + system seconds of a running process (Linux ``/proc``), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def timed_process(command: list[str], server_pid: int) -> tuple[float, float, float | None]:
    """Run ``command``; its wall seconds, its CPU seconds (children included) and the server's meanwhile."""
    server_before = process_cpu(server_pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = process_cpu(server_pid)
    if completed.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` exited {completed.returncode}:\n{completed.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server = None if server_before is None or server_after is None else server_after - server_before
    return seconds, cpu, server


def run_pipeline(url: str, server_pid: int, rows: int, concurrency: int, seed: int, folder: Path) -> Measure:
    report = folder / "report.json"
    out, rejects = folder / "dataset.jsonl", folder / "rejects.jsonl"
    sizes = {"count": rows, "seed": seed, "concurrency": concurrency}
    command = apigen_command(
        "run", *ONE_PAIR, "--overwrite", base_url=url, model="bench", **sizes, out=out, rejects=rejects, report=report
    )
    seconds, cpu, server = timed_process(command, server_pid)
    return Measure(seconds, cpu, server, json.loads(report.read_text()))


def run_generate(url: str, server_pid: int, rows: int, concurrency: int, seed: int) -> Measure:
    command = apigen_command(
        "generate", *ONE_PAIR, base_url=url, model="bench", count=rows, seed=seed, concurrency=concurrency, out=os.devnull
    )
    seconds, cpu, server = timed_process(command, server_pid)
    return Measure(seconds, cpu, server, None)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4000, help="rows requested, N (default 4000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight, C (default 64)")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency L in seconds (default 0.05)")
    parser.add_argument("--repeat", type=int, default=3, help="runs: median and best shown (default 3)")
    parser.add_argument("--phases", action="store_true", help="also time `apigen generate` alone (N requests)")
    arguments = parser.parse_args()
    rows, concurrency, latency = arguments.rows, arguments.concurrency, arguments.latency
    ideal = 2 * rows * latency / concurrency
    with llm_server_process(latency, script="pipeline") as (server, url):
        print(f"apigen run end to end: N = {rows} rows, one pair per prompt, C = {concurrency}, L = {latency * 1000:g} ms")
        print(f"ideal = 2 * N * L / C = {ideal:.2f} s; ratio = ideal / whole-process wall time; {arguments.repeat} runs")
        print(
            f"{'run':>4} {'wall s':>7} {'ratio':>6} {'requests':>9} {'ratio (requests made)':>22} {'in run s':>9}"
            f" {'apigen CPU s':>13} {'server CPU s':>13} {'verified':>9}"
        )
        ratios: list[float] = []
        for index in range(arguments.repeat):
            with tempfile.TemporaryDirectory() as folder:
                measure = run_pipeline(url, server.pid, rows, concurrency, 1 + index, Path(folder))
            assert measure.report is not None
            made = sum(counts["requests"] for counts in measure.report["tokens"].values())
            verified = measure.report["total"]["verified"]
            ratio = ideal / measure.seconds
            ratios.append(ratio)
            made_ratio = made * latency / concurrency / measure.seconds
            server_cpu = "-" if measure.server_cpu is None else f"{measure.server_cpu:.1f}"
            print(
                f"{index + 1:>4} {measure.seconds:>7.2f} {ratio:>6.2f} {made:>9} {made_ratio:>22.2f}"
                f" {measure.report['wall_seconds']:>9.2f} {measure.cpu:>13.1f} {server_cpu:>13} {verified:>9}",
                flush=True,
            )
        print(f"median ratio {median(ratios):.2f}, best {max(ratios):.2f} (aim: at least 0.9)")
        if arguments.phases:
            generation_ideal = rows * latency / concurrency
            print(f"generation phase alone: `apigen generate -n {rows}` to /dev/null, ideal N * L / C = {generation_ideal:.2f} s")
            for index in range(arguments.repeat):
                measure = run_generate(url, server.pid, rows, concurrency, 1 + index)
                server_cpu = "-" if measure.server_cpu is None else f"{measure.server_cpu:.1f}"
                print(
                    f"{index + 1:>4} wall {measure.seconds:.2f} s, ratio {generation_ideal / measure.seconds:.2f},"
                    f" apigen CPU {measure.cpu:.1f} s, server CPU {server_cpu} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
