"""A stateful MCP server (written with the `mcp` SDK): a todo list kept in memory, for the multi-turn path.

    python sample_data/todo/todo_server.py     # over stdio

Its state lives in the process, so a conversation's writes are seen by whoever talks to the same
process next: apigen starts a fresh one for every replay (`--mcp`). Ids count from 1 in each
process. `todo_state` returns the whole state, for `--state-tool todo_state`; without it, apigen
cannot read the state and compares what the gold's calls return instead.
"""

from __future__ import annotations

from typing import Any

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
    """The whole state, for the check (not a tool for the agent)."""
    return {"todos": {str(key): value for key, value in _todos.items()}}


if __name__ == "__main__":
    server.run()
