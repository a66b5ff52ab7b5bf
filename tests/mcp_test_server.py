"""An MCP server for the tests, written with the SDK; every way a tool can end is one tool.

    python tests/mcp_test_server.py            # over stdio (what `--mcp NAME=COMMAND` starts)
    python tests/mcp_test_server.py --http     # streamable HTTP on 127.0.0.1, a free port;
                                               # prints `READY <port>` once it listens

With ``--fail-start`` it exits with status 3 before speaking, after a line on stderr.
"""

from __future__ import annotations

import os
import socket
import sys

import anyio
from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("test-tools", log_level="ERROR")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool(structured_output=False)
def shout(text: str) -> str:
    """The text in capitals (a text result, with no structured content)."""
    return text.upper()


@server.tool()
def lookup(key: str) -> dict[str, int]:
    """A value from a tiny table; an unknown key is an error (isError)."""
    table = {"one": 1, "two": 2}
    if key not in table:
        raise ToolError(f"no such key: {key}")
    return {"key_length": len(key), "value": table[key]}


@server.tool(structured_output=False)
def read_query(query: str) -> str:
    """Run a SELECT on a one-table database; a failure is answered as text with isError false, as mcp-server-sqlite does."""
    if "users" not in query.lower():
        return "Database error: no such table: " + (query.split()[-1] if query.split() else "?")
    return "[{'id': 1, 'name': 'alice'}]"


@server.tool()
def environment(name: str) -> str:
    """The value of an environment variable in the server's process, or `unset`."""
    return os.environ.get(name, "unset")


@server.tool(structured_output=False)
def picture() -> Image:
    """A 4-byte PNG-typed image (a non-text content item)."""
    return Image(data=b"\x89PNG", format="png")


@server.tool()
async def hang(seconds: float) -> str:
    """Sleep for `seconds`, then answer."""
    await anyio.sleep(seconds)
    return "awake"


_calls = {"in_flight": 0, "most": 0}


@server.tool()
async def overlap(seconds: float) -> int:
    """Sleep for `seconds`; answer the most calls this server has had in flight at once."""
    _calls["in_flight"] += 1
    _calls["most"] = max(_calls["most"], _calls["in_flight"])
    try:
        await anyio.sleep(seconds)
    finally:
        _calls["in_flight"] -= 1
    return _calls["most"]


@server.tool()
def die() -> str:
    """End the server process at once."""
    print("the server is about to exit", file=sys.stderr, flush=True)
    os._exit(7)


def _serve_http() -> None:
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="error")
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    if "--fail-start" in sys.argv:
        print("cannot start: no configuration", file=sys.stderr, flush=True)
        sys.exit(3)
    if "--http" in sys.argv:
        _serve_http()
    else:
        server.run()
