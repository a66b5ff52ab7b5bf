"""A small MCP server for the apigen walkthrough: deterministic tools, offline, over stdio.

    python sample_data/mcp_server.py                          # stdio (what `--mcp` starts)
    python sample_data/mcp_server.py --http 127.0.0.1:8000    # streamable HTTP at /mcp

Written with the official `mcp` SDK (`MCPServer`, FastMCP's name in mcp 2).
`lookup_element` fails for a symbol it does not know: the server answers with
`isError`, which apigen's exec-check records as a rejected call.
"""

from __future__ import annotations

import sys
from typing import Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer(
    "units", instructions="Unit conversion, word counts and a small table of chemical elements.", log_level="ERROR"
)

Length = Literal["mm", "cm", "m", "km", "in", "ft", "yd", "mi"]
Scale = Literal["C", "F", "K"]
_METRES_PER = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "yd": 0.9144, "mi": 1609.344}
_ELEMENTS = {
    "H": ("hydrogen", 1, 1.008),
    "He": ("helium", 2, 4.0026),
    "C": ("carbon", 6, 12.011),
    "N": ("nitrogen", 7, 14.007),
    "O": ("oxygen", 8, 15.999),
    "Na": ("sodium", 11, 22.99),
    "Fe": ("iron", 26, 55.845),
    "Au": ("gold", 79, 196.97),
}


@server.tool()
def convert_length(value: float, from_unit: Length, to_unit: Length) -> float:
    """Convert a length between units: mm, cm, m, km, in, ft, yd or mi."""
    for unit in (from_unit, to_unit):
        if unit not in _METRES_PER:
            raise ToolError(f"unknown unit {unit!r}; known: {', '.join(_METRES_PER)}")
    return round(value * _METRES_PER[from_unit] / _METRES_PER[to_unit], 6)


@server.tool()
def convert_temperature(value: float, from_scale: Scale, to_scale: Scale) -> float:
    """Convert a temperature between the scales C (Celsius), F (Fahrenheit) and K (Kelvin)."""
    to_kelvin = {"C": lambda v: v + 273.15, "F": lambda v: (v - 32) * 5 / 9 + 273.15, "K": lambda v: v}
    from_kelvin = {"C": lambda k: k - 273.15, "F": lambda k: (k - 273.15) * 9 / 5 + 32, "K": lambda k: k}
    if from_scale not in to_kelvin or to_scale not in from_kelvin:
        raise ToolError("scales are C, F and K")
    return round(from_kelvin[to_scale](to_kelvin[from_scale](value)), 4)


@server.tool()
def word_count(text: str) -> dict[str, int]:
    """Count the words, characters and lines of a text."""
    return {"words": len(text.split()), "characters": len(text), "lines": len(text.splitlines()) or (1 if text else 0)}


@server.tool()
def lookup_element(symbol: str) -> dict[str, str | int | float]:
    """Look up a chemical element by its symbol (H, He, C, N, O, Na, Fe, Au): name, atomic number and mass."""
    found = _ELEMENTS.get(symbol)
    if found is None:
        raise ToolError(f"no element with the symbol {symbol!r} in this table")
    name, number, mass = found
    return {"symbol": symbol, "name": name, "atomic_number": number, "atomic_mass": mass}


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--http":
        host, _, port = argv[1].rpartition(":")
        server.run("streamable-http", host=host or "127.0.0.1", port=int(port))
    else:
        server.run()


if __name__ == "__main__":
    main(sys.argv[1:])
