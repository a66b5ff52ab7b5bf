"""The `apigen` command line: thin Typer commands over the library's stages.

Each command resolves its options, calls one library function, prints the
summary on stderr and maps the outcome to an exit code:
0 ran to the end, 1 rejections under ``--strict``, 2 could not run, 130 interrupted.

`main` holds the group and what every command runs inside, `options` the options commands
share; the commands register themselves on the group when their module is imported here.
"""

from __future__ import annotations

from . import commands  # noqa: F401  (registers the commands)
from .main import app, run

__all__ = ["app", "run"]
