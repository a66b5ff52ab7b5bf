"""MCP ``tools/call`` throughput through exec-check, beside the same functions through the Python workers.

The tools of ``sample_data/mcp_server.py`` are plain Python functions under the SDK's
decorator, so the very same ``word_count`` runs two ways in one run:

1. baseline: ``exec_check`` with ``--functions sample_data/mcp_server.py`` (worker processes);
2. MCP: ``exec_check`` with each tool bound to the server, which apigen starts over
   stdio and keeps one session with (``--mcp-concurrency`` 8, the default, and 1);
3. a second baseline: the SDK's own client calling the same server in a plain asyncio
   loop, without apigen, which is as fast as the protocol path goes.

It prints calls per second for each, the ratio MCP / Python workers and MCP / SDK alone;
the session's start-up (the server's interpreter and the handshake) is measured apart.

Run: ``.venv/bin/python benchmarks/mcp_exec.py [--calls N] [--repeat K]``. The machine is
shared and noisy, so each figure is the best and the median of K runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from apigen_cli import Executor, ExecutorOptions, exec_check
from apigen_cli.execution.mcp import McpOptions, McpServer
from apigen_cli.execution.pool import default_workers

SERVER = Path(__file__).resolve().parent.parent / "sample_data" / "mcp_server.py"
TOOL = {"name": "word_count", "description": "d", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}


def rows_of(calls: int, bound: bool) -> list[dict[str, Any]]:
    tool = dict(TOOL, mcp={"server": "units", "tool": "word_count"}) if bound else TOOL
    return [
        {
            "id": str(n),
            "query": "q",
            "tools": [tool],
            "answers": [{"name": "word_count", "arguments": {"text": f"call {n} of many"}}],
        }
        for n in range(calls)
    ]


def run_rows(executor: Executor, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    done = list(exec_check(rows, executor))
    elapsed = time.perf_counter() - started
    assert all(row.get("keep_row_after_execution_check") for row in done), done[0]
    return len(rows) / elapsed


def python_workers(calls: int) -> float:
    with Executor(str(SERVER), ExecutorOptions(workers=default_workers())) as executor:
        return run_rows(executor, rows_of(calls, bound=False))


def mcp_session(calls: int, concurrency: int) -> tuple[float, float]:
    """Calls per second through one stdio session, and the seconds the session took to open."""
    server = McpServer("units", command=(sys.executable, str(SERVER)))
    executor = Executor(mcp=McpOptions(servers=(server,), concurrency=concurrency))
    started = time.perf_counter()
    executor.start()
    opened = time.perf_counter() - started
    try:
        return run_rows(executor, rows_of(calls, bound=True)), opened
    finally:
        executor.close()


def sdk_alone(calls: int, concurrency: int = 8) -> float:
    """The SDK's own client in a plain asyncio loop, no apigen: the ceiling of the protocol path."""
    import asyncio

    from mcp import Client, StdioServerParameters

    async def run() -> float:
        parameters = StdioServerParameters(command=sys.executable, args=[str(SERVER)])
        async with Client(parameters, cache=None) as client:
            slots = asyncio.Semaphore(concurrency)

            async def one(n: int) -> Any:
                async with slots:
                    return await client.call_tool("word_count", {"text": f"call {n} of many"})

            started = time.perf_counter()
            results = await asyncio.gather(*(one(n) for n in range(calls)))
            elapsed = time.perf_counter() - started
            assert not any(result.is_error for result in results)
            return calls / elapsed

    return asyncio.run(run())


def summary(samples: list[float]) -> str:
    return f"{max(samples):,.0f} ({statistics.median(samples):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    python: list[float] = []
    mcp8: list[float] = []
    mcp1: list[float] = []
    opening: list[float] = []
    sdk: list[float] = []
    for _ in range(args.repeat):  # interleaved, so that a noisy moment hurts every path alike
        python.append(python_workers(args.calls))
        sdk.append(sdk_alone(args.calls))
        rate, opened = mcp_session(args.calls, 8)
        mcp8.append(rate)
        opening.append(opened)
        mcp1.append(mcp_session(args.calls // 3, 1)[0])
    print(f"{args.calls} calls of word_count, best (median) of {args.repeat}")
    print(f"python workers ({default_workers()}), calls/s:      {summary(python)}")
    print(f"the SDK's client alone, 8 in flight, calls/s: {summary(sdk)}")
    print(f"mcp stdio session, 8 in flight, calls/s: {summary(mcp8)}")
    print(f"mcp stdio session, 1 in flight, calls/s: {summary(mcp1)}")
    print(
        f"ratio mcp (8 in flight) / python workers: {max(mcp8) / max(python):.3f} (median {statistics.median(mcp8) / statistics.median(python):.3f})"
    )
    print(f"ratio mcp (1 in flight) / python workers: {max(mcp1) / max(python):.3f}")
    print(
        f"ratio mcp (8 in flight) / the SDK alone: {max(mcp8) / max(sdk):.2f} (median {statistics.median(mcp8) / statistics.median(sdk):.2f})"
    )
    print(f"opening the session (server start + handshake), median: {statistics.median(opening):.2f} s")


if __name__ == "__main__":
    main()
