"""LLM client throughput: achieved requests per second over the ideal C / L.

Starts the scripted OpenAI-compatible server of tests/llm_server.py in its own
process, answering every request after a fixed latency L (50 ms), and sends
requests through apigen's ChatService with C requests in flight, for C = 1, 16,
64 and 256. With perfect overlap the rate would be C / L; the figure printed is
the achieved rate divided by that. The same runs through httpx's default
transport are the baseline measured in the same run.

    python benchmarks/llm_throughput.py                 # about two minutes
    python benchmarks/llm_throughput.py --no-baseline   # apigen only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx
from _common import llm_server_process

from apigen_cli.config import LLMSettings
from apigen_cli.llm.chat import ChatRequest
from apigen_cli.llm.service import open_chat_service

MESSAGES = [
    {"role": "system", "content": "You write function-calling data."},
    {"role": "user", "content": "Write one query and the calls that answer it for get_weather(city: str)."},
]


def run_once(url: str, concurrency: int, count: int, default_transport: bool) -> float:
    """Requests per second for ``count`` requests at ``concurrency`` in flight."""
    settings = LLMSettings(base_url=url, models=("bench",), concurrency=concurrency, json_mode="off", max_attempts=1)
    transport = None
    if default_transport:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        transport = httpx.AsyncHTTPTransport(limits=limits)
    with open_chat_service(settings, transport=transport) as chat:
        # warm up: open the connections, start the loop
        warm = [(index, ChatRequest(f"w{index}", "bench", MESSAGES)) for index in range(concurrency)]
        for _ in chat.map(warm):
            pass
        requests = ((index, ChatRequest(str(index), "bench", MESSAGES)) for index in range(count))
        started = time.perf_counter()
        failures = 0
        for _index, result in chat.map(requests):
            failures += 0 if result.ok else 1
        elapsed = time.perf_counter() - started
    if failures:
        print(f"  ({failures} of {count} requests failed)", file=sys.stderr)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency L in seconds (default 0.05)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per run at C >= 16 (default 2000; C = 1 sends 100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell for apigen: median and best shown (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--no-baseline", action="store_true", help="skip the runs with httpx's default transport")
    arguments = parser.parse_args()
    with llm_server_process(arguments.latency) as (_process, url):
        print(f"LLM client throughput: loopback server in its own process, latency L = {arguments.latency * 1000:g} ms")
        print("ratio = achieved req/s / ideal (C / L); apigen: median and best of", arguments.repeat, "runs; baseline: one run")
        print(
            f"{'C':>5} {'requests':>9} {'ideal req/s':>12} {'apigen req/s':>13} {'ratio':>6} {'best':>6}"
            f" {'default httpx req/s':>20} {'ratio':>6}"
        )
        for concurrency in arguments.concurrency:
            count = arguments.requests if concurrency >= 16 else max(100, arguments.requests // 20)
            ideal = concurrency / arguments.latency
            rates = sorted(run_once(url, concurrency, count, False) for _ in range(arguments.repeat))
            median = statistics.median(rates)
            line = f"{concurrency:>5} {count:>9} {ideal:>12.0f} {median:>13.0f} {median / ideal:>6.2f} {rates[-1] / ideal:>6.2f}"
            if not arguments.no_baseline:
                baseline = run_once(url, concurrency, count, True)
                line += f" {baseline:>20.0f} {baseline / ideal:>6.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
