"""The agent's tools when an MCP server is the environment: the server's own, never its state tool.

The tools are what the server lists (``tools/list``, read as ``library from-mcp`` reads it), or
the library ``--tools`` names (a library ``library from-mcp`` wrote and you edited keeps your
descriptions; its names must be the server's, since the calls go to the server by name). The
state tool is the check's, not the agent's: an agent offered it could read the whole database.
Which tools write is said as for a class's tools (``environment_tools.effect_of``).
"""

from __future__ import annotations

from typing import Any

from ..errors import FunctionsError
from ..library.from_mcp import library_entries
from ..library.loader import load_library
from .environment_tools import WRITE, effect_of


def mcp_agent_tools(
    library: str | None, listed: list[dict[str, Any]], server: str, state_tool: str | None
) -> tuple[list[dict[str, Any]], set[str]]:
    """The agent's tool definitions and the names of those that write; ``FunctionsError`` when none is left."""
    if library is not None:
        definitions = [api.definition for api in load_library(library)]
    else:
        definitions, _unreadable = library_entries(server, listed)
    definitions = [definition for definition in definitions if definition["name"] != state_tool]
    if not definitions:
        raise FunctionsError(
            f"the MCP server `{server}` offers the agent no tool" + (f" but its state tool `{state_tool}`" if state_tool else ""),
            hint="check that `--mcp` starts the server you meant, or pass `--tools` with its library (`apigen library from-mcp`)",
        )
    writes = {str(definition["name"]) for definition in definitions if effect_of(definition, str(definition["name"])) == WRITE}
    return definitions, writes
