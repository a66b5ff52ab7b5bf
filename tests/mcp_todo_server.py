"""A stateful MCP server for the tests, written with the SDK: a todo list kept in memory.

    python tests/mcp_todo_server.py                      # over stdio
    python tests/mcp_todo_server.py --pids DIR           # each process writes its pid, and its child's, into DIR
                                                         # (it starts a child that sleeps: a stray to clean up)

Ids count from 1 in each process, so a conversation that saw an earlier one's writes gets other ids.
`todo_state` reads the whole state (what `--state-tool todo_state` names).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("todo", log_level="ERROR")
_todos: dict[int, dict[str, Any]] = {}


@server.tool()
def add_todo(title: str) -> dict[str, Any]:
    """Add a todo; returns it with its new id."""
    number = len(_todos) + 1
    _todos[number] = {"id": number, "title": title, "done": False}
    return _todos[number]


@server.tool()
def complete_todo(todo_id: int) -> dict[str, Any]:
    """Mark a todo done; an unknown id is an error."""
    if todo_id not in _todos:
        raise ToolError(f"no todo {todo_id}")
    _todos[todo_id]["done"] = True
    return _todos[todo_id]


@server.tool()
def list_todos() -> dict[str, Any]:
    """Every todo, in the order they were added."""
    return {"todos": list(_todos.values())}


@server.tool()
def todo_state() -> dict[str, Any]:
    """The whole state, for the check."""
    return {"todos": {str(key): value for key, value in _todos.items()}}


@server.tool()
async def hang(seconds: float) -> str:
    """Sleep for `seconds`, then answer."""
    await anyio.sleep(seconds)
    return "awake"


def _record_pids(folder: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.path.join(folder, f"{os.getpid()}.pids"), "w") as out:
        out.write(f"{os.getpid()} {child.pid}\n")


if __name__ == "__main__":
    if "--pids" in sys.argv:
        _record_pids(sys.argv[sys.argv.index("--pids") + 1])
    server.run()
