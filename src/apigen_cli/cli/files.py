"""Every command's files, compared before it runs (``rows.file_roles``): one table says which
parameters name files and whether the command writes them, so no command checks its own pairs."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from ..config import SETTINGS
from ..rows.file_roles import FileUse, check_files_apart

#: parameters naming a file (or folder) the command writes
WRITTEN = frozenset({"output", "rejects", "report", "html", "card", "keep", "log_llm"})
#: parameters naming a folder apigen fills with files of its own, written as a whole
FILLED_FOLDERS = frozenset({"cache", "batch_dir"})
#: parameters naming a file (or folder) the command reads
READ = frozenset(
    {
        "input", "apis", "examples", "blueprint_examples", "prompts", "functions", "env_library", "initial_state",
        "policy", "personas", "policy_checks", "shard_outputs", "render_check", "files", "dataset", "run_report",
        "specs", "spec", "path", "library", "libraries", "tools", "rejects_in",
    }
)  # fmt: skip
#: (command, parameter) where a usually written name is only read: `batch status OUTPUT`, `report DATASET REJECTS...`,
#: `config show --log-llm FILE` (shown, not opened)
READ_HERE = frozenset({("status", "output"), ("cancel", "output"), ("report", "rejects"), ("show", "log_llm")})


def check_current_command_files() -> None:
    """``check_command_files`` for the command now running (none outside a command: nothing to check)."""
    ctx = _current_context()
    if ctx is not None and ctx.command is not None:
        check_command_files(ctx)


def _current_context() -> Any:
    """The running command's context. Typer vendors click under a private name, so its
    ``get_current_context`` is found beside ``typer.Context``'s own base class."""
    package = typer.Context.__mro__[1].__module__.rpartition(".")[0]
    return importlib.import_module(f"{package}.globals").get_current_context(silent=True)


def check_command_files(ctx: Any) -> None:
    """Refuse (``ConfigError`` naming both flags) a file the command writes that another of its parameters names.

    Settings (`--examples`, `--log-llm`, ...) count with the value they resolve to, from a
    flag, an `APIGEN_*` variable or a config file alike.
    """
    uses = []
    resolved: dict[str, Any] | None = None
    for parameter in ctx.command.params:
        name = parameter.name
        if name is None or name not in WRITTEN | READ | FILLED_FOLDERS or name not in ctx.params:
            continue
        value = ctx.params[name]
        if value is None and name in SETTINGS:
            if resolved is None:
                from .options import resolved_settings  # the settings' values, their sources aside

                resolved = resolved_settings(ctx).values
            value = resolved.get(name)
        folder = name in FILLED_FOLDERS
        writes = folder or (name in WRITTEN and (ctx.command.name, name) not in READ_HERE)
        flag = _flag(parameter)
        for path in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(path, str):
                uses.append(FileUse(flag, path, writes, folder))
    check_files_apart(uses)


def _flag(parameter: Any) -> str:
    """`--output` for an option, `APIS` for an argument."""
    if parameter.param_type_name == "option":
        return str(max(parameter.opts, key=len))
    return str(getattr(parameter, "metavar", None) or parameter.name).rstrip(".").upper()
