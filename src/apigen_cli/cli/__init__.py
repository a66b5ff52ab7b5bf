"""The `apigen` command line: thin Typer commands over the library's stages.

Each command resolves its options, calls one library function, prints the
summary on stderr and maps the outcome to an exit code:
0 ran to the end, 1 rejections under ``--strict``, 2 could not run, 130 interrupted.

`main` holds the group and what every command runs inside, `options` the options commands
share, `help` how their `--help` reads; each other module is one group of commands, which registers itself on the group when
it is imported here. `apigen --help` lists them in `main.COMMAND_ORDER`, not in this order.
"""

from __future__ import annotations

from . import batch, conversations, library, reports, runs, settings, stages, training_data  # noqa: F401  (each registers its commands)
from .help import use_apigen_help
from .main import app, run

use_apigen_help(app)  # once every command is registered, each one's `--help` reads at 80 columns

__all__ = ["app", "run"]
