"""The `apigen` group itself and what every command runs inside.

The group class (its commands in pipeline order, usage errors in apigen's words, quiet when the
reader leaves), the exit codes, `--version`, the context manager that turns what goes wrong
into one message and an exit code, and `run()`, the console script.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
import typer.main

from ..config import unknown_variables
from ..console import Messages
from ..errors import ApigenError
from ..version import __version__
from .files import check_current_command_files
from .help import HelpGroup, use_apigen_help

#: Each command of `apigen` and the module of `cli/` that defines it, in the order `apigen --help` lists
#: them, the order a dataset is made: the four stages, `run` that chains them, the multi-turn commands,
#: `merge` that joins shards, what is done to the rows after (dedup, negatives, export), what is read
#: from them (stats, report), then the tools around a run. A command's module is imported only when the
#: command runs (or `--help` lists them all): `apigen simulate` loads none of export's or report's code.
COMMAND_MODULES = {
    "generate": "stages",
    "format-check": "stages",
    "exec-check": "stages",
    "semantic-check": "stages",
    "run": "runs",
    "blueprint": "conversations",
    "simulate": "conversations",
    "trajectory-check": "conversations",
    "merge": "runs",
    "dedup": "training_data",
    "negatives": "training_data",
    "export": "training_data",
    "stats": "reports",
    "report": "reports",
    "library": "library",
    "batch": "batch",
    "config": "settings",
}
COMMAND_ORDER = tuple(COMMAND_MODULES)


class ApigenGroup(HelpGroup):
    """The `apigen` group: its commands in pipeline order, each loaded when it is asked for, its usage
    errors in apigen's words, and every command quiet when its reader goes away (`apigen ... | head`): exit 0.

    Click would exit 1 with nothing said; a reader gone before the final flush would have
    Python print a traceback-like complaint at exit. Both are caught here, around every
    command and subcommand, and the rest of the output goes nowhere.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        """COMMAND_ORDER, not the order the commands were registered in; one it does not name comes last, not hidden."""
        self._take_commands_of(COMMAND_MODULES.values())
        named = [name for name in COMMAND_ORDER if name in self.commands]
        return named + [name for name in super().list_commands(ctx) if name not in named]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command, its module imported first if it was not yet; a name apigen does not have loads them all, so
        that its error can suggest the nearest (`Did you mean ...?`)."""
        if cmd_name not in self.commands:
            self._take_commands_of([COMMAND_MODULES[cmd_name]] if cmd_name in COMMAND_MODULES else COMMAND_MODULES.values())
        return super().get_command(ctx, cmd_name)

    def _take_commands_of(self, modules: Iterable[str]) -> None:
        """Import these command modules (each registers its commands on `app`) and add what they registered here."""
        wanted = set(modules)
        if all(name in self.commands for name, module in COMMAND_MODULES.items() if module in wanted):
            return
        load_command_modules(wanted)
        for name, command in typer.main.get_group(app).commands.items():
            self.commands.setdefault(name, command)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:  # `apigen --help | head`: help is written here
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            _stdout_to_devnull()
            raise typer.Exit(EXIT_OK) from None
        except _USAGE_ERROR as error:
            _usage_error(error)

    def invoke(self, ctx: Any) -> Any:  # a click Context: typer vendors its own click, whose module is private
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()
            return result
        except BrokenPipeError:
            _stdout_to_devnull()
            raise typer.Exit(EXIT_OK) from None
        except _USAGE_ERROR as error:
            _usage_error(error)


#: Click's UsageError (a missing option, a bad value): found through typer's own BadParameter,
#: as typer vendors its own copy of click under a private name
_USAGE_ERROR: type[Exception] = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")


def _usage_error(error: Exception) -> NoReturn:
    """A usage error in apigen's own words (`error:`, then `hint:`), not Click's `Usage: … Error: …` block."""
    format_message = getattr(error, "format_message", None)
    message = str(format_message() if callable(format_message) else error).rstrip(".")
    message = re.sub(r"'([^']*)'", r"`\1`", message)  # Click quotes names 'so'; apigen `so`
    message = re.sub(r"^No such option: (\S+)", r"No such option `\1`", message)
    context = getattr(error, "ctx", None)
    where = f"`{context.command_path} --help`" if context is not None else "`apigen --help`"
    Messages().error(message[:1].lower() + message[1:], f"{where} lists what it takes")
    raise typer.Exit(EXIT_ERROR)


def _stdout_to_devnull() -> None:
    """After the reader left: what is still buffered, and all later output, goes to /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


app = typer.Typer(
    cls=ApigenGroup,
    name="apigen",
    help="Turn API definitions into verified function-calling training data (the APIGen pipeline).",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_REJECTED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"apigen {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Turn API definitions into verified function-calling training data (the APIGen pipeline)."""
    messages = Messages()
    for name, likely in unknown_variables():
        also = f" (`{likely}`?)" if likely else ""
        messages.warning(f"`{name}` is set but is not a variable apigen reads{also}; `apigen config show` lists the settings")


@contextmanager
def errors_to_exit_codes(messages: Messages, *, on_interrupt: str | None = None) -> Iterator[None]:
    """Turn what can go wrong into one message and an exit code; never a traceback unless asked.

    ``on_interrupt``: the hint after Ctrl-C (a resumable run says that the same command carries on).
    """
    debug = messages.verbose or os.environ.get("APIGEN_DEBUG") == "1"
    try:
        check_current_command_files()  # a file written that another flag names too: an error before any work
        yield
    except ApigenError as error:
        if debug:
            _print_traceback()
        messages.error(error.message, error.hint)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt as stop:  # an `Interrupted` says where the rows written so far are kept
        messages.error(str(stop) or "interrupted; every line already written is a complete row", on_interrupt)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # The reader went away (`apigen ... | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        _stdout_to_devnull()
        raise typer.Exit(EXIT_OK) from None
    except typer.Exit:
        raise
    except Exception as error:  # a bug: say so plainly, the traceback is one flag away
        if debug:
            _print_traceback()
        hint = "report it, with the traceback above" if debug else "rerun with `--verbose` to see the traceback, and report it"
        messages.error(f"unexpected {type(error).__name__}: {error}", hint)
        raise typer.Exit(EXIT_ERROR) from None


def _print_traceback() -> None:
    """`-v`: the traceback goes to stderr before the `error:` line, and the exit code stays the error's.

    Letting the exception escape instead would have Python print it and exit 1, which
    `docs/exit-codes.md` keeps for `--strict`: a script could not tell the two apart.
    """
    sys.stderr.write(traceback.format_exc())
    sys.stderr.flush()


def load_command_modules(modules: Iterable[str] = frozenset(COMMAND_MODULES.values())) -> None:
    """Import these modules of `cli/` (default: all), each of which registers its commands on `app`, and give
    every command registered so far apigen's `--help`."""
    for module in sorted(modules):
        importlib.import_module(f"{__package__}.{module}")
    use_apigen_help(app)  # once a command is registered, its `--help` reads at 80 columns


def run() -> None:
    """Console-script entry point."""
    # SIGTERM stops a command as Ctrl-C does: its files are settled (kept or left as they were), never half made.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    app()
