"""The sample todo server (sample_data/todo/todo_server.py) with two tools more for the tests.

    python tests/mcp_todo_server.py                      # over stdio
    python tests/mcp_todo_server.py --pids DIR           # each process writes its pid, and its child's, into DIR
                                                         # (it starts a child that sleeps: a stray to clean up)

`hang` sleeps, so a call can outlast `--exec-timeout`; `big`, `deep` and `crash` answer too much, too deep, or not at all.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

sample = runpy.run_path(str(Path(__file__).parents[1] / "sample_data" / "todo" / "todo_server.py"))
server: MCPServer = sample["server"]


@server.tool()
async def hang(seconds: float) -> str:
    """Sleep for `seconds`, then answer; with `--pids DIR`, say so first in DIR/PID.hanging."""
    if "--pids" in sys.argv:
        (Path(sys.argv[sys.argv.index("--pids") + 1]) / f"{os.getpid()}.hanging").write_text("")
    await anyio.sleep(seconds)
    return "awake"


@server.tool()
def big(chars: int) -> str:
    """A text of `chars` characters."""
    return "x" * chars


@server.tool()
def deep(levels: int) -> dict[str, Any]:
    """A value nested `levels` lists deep."""
    value: Any = []
    for _ in range(levels):
        value = [value]
    return {"value": value}


@server.tool()
def environment(name: str) -> str:
    """The value of an environment variable in the server's process, or `unset`."""
    return os.environ.get(name, "unset")


@server.tool()
def crash() -> str:
    """End the server process at once."""
    os._exit(7)


def _record_pids(folder: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (Path(folder) / f"{os.getpid()}.pids").write_text(f"{os.getpid()} {child.pid}\n")


if __name__ == "__main__":
    if "--pids" in sys.argv:
        _record_pids(sys.argv[sys.argv.index("--pids") + 1])
    server.run()
