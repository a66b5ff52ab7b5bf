"""`apigen config`: apigen's settings and where each comes from."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer

from ..config import GROUPS, describe
from ..console import Messages
from .main import app, errors_to_exit_codes
from .options import VerboseOpt, resolved_settings, setting_options, show_setting, with_options

config_app = typer.Typer(name="config", help="Show apigen's settings and where each comes from.", no_args_is_help=True)
app.add_typer(config_app)


@config_app.command("show")
@with_options(setting_options(*GROUPS))
def config_show(
    ctx: typer.Context,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per setting: name, value, source.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print each effective setting, its value and where it comes from; keys are never shown.

    Sources, highest first: a flag, an APIGEN_* variable, ./apigen.toml (or
    [tool.apigen] in ./pyproject.toml), the user file
    $XDG_CONFIG_HOME/apigen/config.toml, the default. Every setting's flag is
    accepted too, to see what a command given it would use.

    Examples:

        apigen config show

        apigen config show --json | jq -c 'select(.source != "default")'

        APIGEN_MODEL=offline apigen config show --concurrency 64
    """
    messages = Messages(verbose=verbose)
    with errors_to_exit_codes(messages):
        entries = describe(resolved_settings(ctx))
    if json_lines:
        sys.stdout.buffer.write(b"".join(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE) for entry in entries))
        sys.stdout.flush()
        return
    shown = [(entry["name"], show_setting(entry["value"]), entry["source"]) for entry in entries]
    name_width = max(len(name) for name, _value, _source in shown)
    value_width = min(48, max(len(value) for _name, value, _source in shown))
    for name, value, source in shown:
        typer.echo(f"{name:<{name_width}}  {value:<{value_width}}  {source}")
