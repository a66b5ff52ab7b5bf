"""httpx, imported without its own command line: ``from ..httpx_without_cli import httpx``.

httpx's ``__init__`` imports ``httpx._main`` for ``httpx.main``, the entry point of the `httpx`
command, and with it click, rich and pygments: 0.05-0.1 s before the first request of every run
that asks an endpoint, for a command apigen never runs (encode/httpx#3547, still open, would move
it to ``python -m httpx``). So the modules of apigen that use httpx import it from here: while
httpx loads, ``httpx._main`` is a stand-in whose ``main`` imports the real one when it is called,
and the stand-in leaves ``sys.modules`` as soon as httpx is loaded. ``httpx.main`` still works;
httpx already imported (by a program that uses apigen as a library) is left as it is.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["httpx"]


def _real_main(*args: Any, **kwargs: Any) -> Any:
    """httpx's own ``main``, imported on its first call (the stand-in is no longer in ``sys.modules`` by then)."""
    return importlib.import_module("httpx._main").main(*args, **kwargs)


def _import_without_cli() -> None:
    if "httpx" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main", "A stand-in while httpx loads: see apigen_cli.httpx_without_cli.")
    setattr(stand_in, "main", _real_main)  # noqa: B010  (a module's attribute: mypy knows none)
    sys.modules["httpx._main"] = stand_in
    try:
        import httpx  # noqa: F401  (loaded here, with the stand-in in place)
    finally:
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]


_import_without_cli()

import httpx  # noqa: E402  (after the stand-in did its work)
