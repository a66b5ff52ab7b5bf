"""The options commands share, each declared once.

The stage commands' input and output options, and the option of every setting, derived from
its declaration in config.SETTINGS; how a command reads them back, resolved with their sources.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar, get_args, get_type_hints

import typer

from ..config import SETTINGS, LLMSettings, Resolved, resolve, settings_of, show_setting_value
from ..console import Messages
from ..rows.runner import Destinations
from ..run_settings import execution_settings_from

if TYPE_CHECKING:  # loaded by the commands that execute, not by every command
    from ..execution.executor import Executor
    from ..stages.exec_check import ExecPolicy
from .help import BATCH_PANEL, EXECUTION_PANEL, GENERATION_PANEL, JUDGE_PANEL, LLM_PANEL

# --- options shared by the stage commands ---------------------------------------------

InputArg = Annotated[str, typer.Argument(metavar="INPUT", help="JSONL (or JSON array) file of rows; `-` reads standard input.")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="Where kept rows go; `-` is standard output.")]
RejectsOpt = Annotated[
    Optional[str],
    typer.Option("--rejects", metavar="FILE", help="Write rejected rows, with `rejected_by` and `reason`, to FILE."),
]
KeepRejectedOpt = Annotated[
    bool, typer.Option("--keep-rejected", help="Keep rejected rows in the output, flagged `keep_row_after_<check>: false`.")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit 1 when any row was rejected.")]
SkipBadLinesOpt = Annotated[
    bool, typer.Option("--skip-bad-lines", help="Send lines that are not JSON objects to the rejects instead of stopping.")
]
# --- options of the commands that start user code themselves (`library from-python`, `library from-mcp`) ---
PassEnvOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--pass-env",
        metavar="NAME",
        help="Let the process it starts (the imported code's, the MCP server) see this environment variable "
        "(a glob such as `AWS_*` works); "
        "otherwise it gets only PATH, HOME, LANG and the like. Repeatable.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr but warnings and errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks of unexpected errors (also APIGEN_DEBUG=1).")]


def in_panel(alias: Any, panel: str) -> Any:
    """A shared option (``RejectsOpt``) as one command shows it in a `--help` panel:
    ``rejects: Annotated[Optional[str], in_panel(RejectsOpt, INPUT_OUTPUT_PANEL)] = None``."""
    _kind, option = get_args(alias)
    shown = copy.copy(option)
    shown.rich_help_panel = panel
    return shown


F = TypeVar("F", bound=Callable[..., Any])
OptionGroup = Mapping[str, tuple[Any, Any]]  # parameter name -> (Annotated option, default)


def with_options(*groups: OptionGroup) -> Callable[[F], F]:
    """Give a command a group of options defined once; it reads them from ``ctx.params``.

    Typer builds a command's options from its signature, so the groups are
    appended to the signature (as keyword-only parameters) instead of being
    written out again in every command that takes them.
    """

    def decorate(command: F) -> F:
        signature = inspect.signature(command)
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for group in groups
            for name, (annotation, default) in group.items()
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for parameter in added:
                kwargs.pop(parameter.name, None)
            return command(*args, **kwargs)

        hints = get_type_hints(command, include_extras=True)  # the command's own annotations, evaluated
        own = [
            parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
            for parameter in signature.parameters.values()
        ]
        wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**hints, **{parameter.name: parameter.annotation for parameter in added}}
        return wrapper  # type: ignore[return-value]

    return decorate


STAGE_IO_GROUP: OptionGroup = {
    "input": (InputArg, "-"),
    "output": (OutputOpt, "-"),
    "rejects": (RejectsOpt, None),
    "keep_rejected": (KeepRejectedOpt, False),
    "strict": (StrictOpt, False),
    "skip_bad_lines": (SkipBadLinesOpt, False),
    "quiet": (QuietOpt, False),
    "verbose": (VerboseOpt, False),
}


def destinations(params: Mapping[str, Any]) -> Destinations:
    """Where a stage command reads and writes, from its STAGE_IO_GROUP options."""
    return Destinations(params["input"], params["output"], params["rejects"], params["keep_rejected"], params["skip_bad_lines"])


# --- settings: every option below is derived from its declaration in config.SETTINGS -----
# A flag wins over its APIGEN_* variable, which wins over apigen.toml / [tool.apigen],
# the user config file and the default. Typer hands the flag's text over as it was
# typed, so a bad value gets the same message whichever of these it came from.

_PANELS = {
    "llm": LLM_PANEL,
    "generation": GENERATION_PANEL,
    "execution": EXECUTION_PANEL,
    "judge": JUDGE_PANEL,
    "batch": BATCH_PANEL,
}


def setting_options(*groups: str) -> OptionGroup:
    """The options of the settings in ``groups``, parameter named as the setting."""
    options: dict[str, tuple[Any, Any]] = {}
    for setting in settings_of(*groups):
        declarations = [setting.flag, *setting.aliases]
        kind: Any = Optional[str]
        if setting.kind in ("list", "patterns", "options"):
            kind = Optional[list[str]]
        elif setting.kind == "bool":
            kind = Optional[bool]
            declarations[0] = f"{setting.flag}/--no-{setting.flag[2:]}"
        default = show_setting_value(setting, setting.default)
        shown = f"default: {show_setting(default)}; " if default not in (None, (), [], {}) else ""
        option = typer.Option(
            *declarations,
            metavar=setting.metavar,
            rich_help_panel=_PANELS[setting.group],
            show_default=False,
            help=f"{setting.help} [{shown}env: {setting.env}]",
        )
        options[setting.name] = (Annotated[kind, option], None)
    return options


def show_setting(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, (dict, bool)):
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def resolved_settings(ctx: typer.Context) -> Resolved:
    """Every setting with its source, the command's own flags (those typed on the command line) on top."""
    flags = {}
    for name in SETTINGS:
        if name not in ctx.params:
            continue
        source = ctx.get_parameter_source(name)
        if source is not None and source.name != "COMMANDLINE":
            continue
        flags[name] = ctx.params[name]
    return resolve(flags)


def llm_settings(ctx: typer.Context) -> LLMSettings:
    """The LLMSettings for a command that declares the LLM options; raises ConfigError."""
    return resolved_settings(ctx).llm_settings()


# --- the executor the execution settings make: exec-check, `library check` and `run` share it ---


def function_output(messages: Messages) -> Callable[[str], None] | None:
    """With `--verbose`, what the user's functions print is shown on stderr."""
    return (lambda line: messages.info(f"function output: {line}")) if messages.verbose else None


def executor_and_policy(ctx: typer.Context, messages: Messages) -> tuple[Executor, ExecPolicy]:
    """The executor and policy the execution settings ask for (not started)."""
    execution = execution_settings_from(resolved_settings(ctx).values)
    return execution.executor(function_output(messages)), execution.policy
