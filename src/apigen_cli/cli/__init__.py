"""The `apigen` command line: thin Typer commands over the library's stages.

Each command resolves its options, calls one library function, prints the
summary on stderr and maps the outcome to an exit code:
0 ran to the end, 1 rejections under ``--strict``, 2 could not run, 130 interrupted.

`main` holds the group and what every command runs inside, `options` the options commands
share, `help` how their `--help` reads; each other module is one group of commands, which registers
itself on the group when it is imported. The console script (`run`) imports only the module of the
command it runs (`main.COMMAND_MODULES`); ``from apigen_cli.cli import app`` gives the group with
every command registered, as the tests and `docs/cli-reference.md` read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .main import run

if TYPE_CHECKING:
    from .main import app

__all__ = ["app", "run"]


def __getattr__(name: str) -> object:
    """``app``, once every command module has registered its commands on it (PEP 562)."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .main import app, load_command_modules

    load_command_modules()
    globals()["app"] = app
    return app
