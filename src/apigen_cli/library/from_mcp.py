"""An API library from an MCP server: its ``tools/list``, one library entry per tool.

Each tool becomes::

    {"name": "convert_length", "description": "...", "parameters": {...inputSchema...},
     "category": "units", "mcp": {"server": "units", "tool": "convert_length"}}

``parameters`` is the tool's ``inputSchema`` as the server gave it (JSON Schema,
which ``schema/tools.py`` reads), so format-check holds generated calls to what
the server accepts. The ``mcp`` binding names the server and never says how to
start it: exec-check runs the tools only through servers the user names on its
command line (``--mcp NAME=COMMAND``, ``--mcp-url NAME=URL``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..execution.mcp import McpCaller, McpOptions, McpServer, default_server_name
from ..problems import RowProblem
from ..schema.tools import compile_tool

__all__ = ["Imported", "default_server_name", "import_server", "library_entries"]


@dataclass(frozen=True)
class Imported:
    """The library entries of one server, and the tools that could not be used (name → why)."""

    server: McpServer
    entries: list[dict[str, Any]]
    skipped: dict[str, str]


def library_entries(
    server: str, tools: Iterable[dict[str, Any]], category: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Library entries for the tools a server listed; a tool whose schema apigen cannot read is skipped with the reason."""
    entries: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for tool in tools:
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            continue
        entry: dict[str, Any] = {"name": name}
        description = tool.get("description") or tool.get("title")
        if isinstance(description, str) and description.strip():
            entry["description"] = description.strip()
        schema = tool.get("inputSchema")
        entry["parameters"] = schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
        entry["category"] = category or server
        entry["mcp"] = {"server": server, "tool": name}
        try:
            compile_tool(entry, len(entries) + 1)
        except RowProblem as error:
            skipped[name] = error.problem.message
            continue
        entries.append(entry)
    return entries, skipped


def import_server(
    server: McpServer, *, timeout: float = 30.0, category: str | None = None, pass_env: tuple[str, ...] = ()
) -> Imported:
    """Start (or reach) the server, list its tools and close the session; raises ``FunctionsError`` when it cannot."""
    caller = McpCaller(McpOptions(servers=(server,), timeout=timeout, startup_timeout=timeout, pass_env=pass_env))
    caller.start()
    try:
        tools = caller.list_tools(server.name)
    finally:
        caller.close()
    entries, skipped = library_entries(server.name, tools, category)
    if not entries:
        why = "lists no tools" if not tools else "lists no tool apigen can read"
        raise InputError(f"the MCP server `{server.name}` (`{server.shown}`) {why}", hint="check that it is the server you meant")
    return Imported(server, entries, skipped)
