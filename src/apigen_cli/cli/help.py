"""How `--help` reads in a terminal 80 columns wide.

Click's plain help is kept (it pastes and greps as text, and `docs/cli-reference.md` is made
from it) with what it lacks for apigen: a usage line with the arguments as a person writes them
(`APIS`, `[INPUT]`, `FILE...`, not `{APIS}` or `[[APIS]]`), options in panels (`rich_help_panel`,
which Typer shows only in its Rich help), no Python types (`<str>`), text broken only between
words (never `--error-` / `pattern`), and examples laid out as a shell reads them: a long one is
broken between its options, each line but the last ending in ` \\`, so that every line pastes
as it is.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

#: the heading after which a command's help lists its examples, one a line
EXAMPLES = "Examples:"
#: the panel of the options a command does not put in one
DEFAULT_PANEL = "Options"
INPUT_OUTPUT_PANEL = "Input and output"
GENERATION_PANEL = "Generation"
LLM_PANEL = "LLM endpoint and requests"
EXECUTION_PANEL = "Execution"
JUDGE_PANEL = "Judge"
BATCH_PANEL = "Batch (half price, within 24 hours)"
ENGINE_PANEL = "Engine (past one machine)"
#: the panels in the order `--help` shows them: what a command reads and writes first, then what
#: its stages are told, in pipeline order; where the work runs last
PANEL_ORDER = (
    DEFAULT_PANEL,
    INPUT_OUTPUT_PANEL,
    GENERATION_PANEL,
    LLM_PANEL,
    EXECUTION_PANEL,
    JUDGE_PANEL,
    BATCH_PANEL,
    ENGINE_PANEL,
)
#: how much deeper a continued example line starts than its first line
CONTINUATION_INDENT = "    "
#: an option's name column is at most this wide (and at most 2/5 of a narrow terminal); a longer name
#: puts its help on the next line
NAME_COLUMN = 30
_REDIRECTIONS = frozenset({">", ">>", "<", "2>", "2>&1"})
_OPERATORS = frozenset({"|", "||", "&&", ";"}) | _REDIRECTIONS


class _Wrapper(textwrap.TextWrapper):
    """Breaks between words and after a comma inside a word (`a=1,b=2`), never at a hyphen or inside a word."""

    wordsep_simple_re = re.compile(r"(\s+|(?<=,)(?=[^\s,]))")

    def __init__(self, width: int, indent: str = "") -> None:
        super().__init__(
            width=width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
        )


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text``'s paragraphs (split at blank lines) filled to ``width``, a blank line between them."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if lines:
            lines.append("")
        lines += _Wrapper(width, indent).wrap(" ".join(paragraph.split()))
    return lines


def shell_lines(command: str, width: int) -> list[str]:
    """``command`` in lines of at most ``width`` columns that a shell reads as the one line.

    Broken only between words: before an option (with its value), or before a pipe when the
    command after it does not fit; each line but the last ends in `` \\`` and the next one is
    indented. A word longer than a line stays whole.
    """
    if len(command) <= width:
        return [command]
    room = width - len(CONTINUATION_INDENT) - 2  # a continued line holds its indent and the closing ` \`
    lines: list[str] = []
    current = ""

    def fits(more: str) -> bool:
        start = CONTINUATION_INDENT if lines else ""
        return len(start) + len(current) + 1 + len(more) + 2 <= width

    def break_line() -> None:
        nonlocal current
        lines.append(f"{CONTINUATION_INDENT if lines else ''}{current} \\")
        current = ""

    for segment in _segments(_units(_words(command))):
        if current and not fits(" ".join(" ".join(unit) for unit in segment)) and segment[0][0] in _OPERATORS:
            break_line()  # `| next-command` starts a line of its own rather than being split from its options
        for unit in segment:
            joined = " ".join(unit)
            for piece in [joined] if len(joined) <= room else unit:
                if current and not fits(piece):
                    break_line()
                current = f"{current} {piece}" if current else piece
    lines.append(f"{CONTINUATION_INDENT if lines else ''}{current}")
    return lines


def _segments(units: Iterable[list[str]]) -> Iterator[list[list[str]]]:
    """The units of each command of a pipe (or list): a new segment at each operator but a redirection."""
    segment: list[list[str]] = []
    for unit in units:
        if segment and unit[0] in _OPERATORS and unit[0] not in _REDIRECTIONS:
            yield segment
            segment = []
        segment.append(unit)
    if segment:
        yield segment


def _words(command: str) -> list[str]:
    """The shell words of ``command`` as written, quotes kept: split at blanks outside quotes."""
    words: list[str] = []
    word = ""
    quote = ""
    escaped = False
    for char in command:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            if word:
                words.append(word)
            word = ""
            continue
        word += char
    return [*words, word] if word else words


def _units(words: Iterable[str]) -> Iterator[list[str]]:
    """Words grouped as they belong: a command with its arguments, an option with its value, a pipe with its command."""
    unit: list[str] = []
    after_operator = False
    for word in words:
        starts = word in _OPERATORS or (word.startswith("-") and word != "-" and not after_operator)
        if starts and unit:
            yield unit
            unit = []
        unit.append(word)
        after_operator = word in _OPERATORS
    if unit:
        yield unit


def usage_name(argument: Any) -> str:
    """An argument as the usage line shows it: `APIS`, `[INPUT]`, `FILE...`, `[REJECTS...]`."""
    name = argument.metavar or argument.name.upper()
    if argument.nargs != 1 and "..." not in name:
        name += "..."
    return name if argument.required else f"[{name}]"


def _argument_record(argument: Any, ctx: Any) -> tuple[str, str]:
    """The argument's name as the usage line writes it (without brackets), and its help without a Python type."""
    record = argument.get_help_record(ctx)
    name = usage_name(argument)
    shown = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    return shown, record[1] if record else (argument.help or "")


def _option_record(option: Any, ctx: Any) -> tuple[str, str] | None:
    """Typer's record of an option, its Python type (`<int>`) replaced by the option's name (`--seed SEED`)."""
    record = option.get_help_record(ctx)
    if record is None:
        return None
    names, help_text = record
    if option.metavar is None and not option.is_flag and not option.count:
        names = re.sub(r" <[^>]*>", f" {option.name.upper()}", names)
    return names, help_text


class HelpMixin:
    """The formatting of apigen's commands and groups (see the module's docstring)."""

    help: str | None

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        text = self.help or ""
        description, _, examples = text.partition(EXAMPLES)
        indent = " " * (formatter.current_indent + formatter.indent_increment)
        lines = wrap(description, formatter.width, indent) if description.strip() else []
        shown = [line.strip() for line in examples.splitlines() if line.strip()]
        if shown:
            lines += ["", f"{indent}{EXAMPLES}"]
            deeper = indent + " " * 4
            for example in shown:
                lines += [""] + [f"{deeper}{line}" for line in shell_lines(example, formatter.width - len(deeper))]
        if lines:
            formatter.write_paragraph()
            formatter.write("\n".join(lines) + "\n")


class ApigenCommand(HelpMixin, TyperCommand):
    """A command whose `--help` reads at 80 columns: plain usage, options in panels, examples that paste."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [usage_name(param) for param in self.get_params(ctx) if param.param_type_name == "argument"]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """The arguments, then the options by panel (``PANEL_ORDER``; others after, as they come); `--help` joins the first."""
        arguments: list[tuple[str, str]] = []
        panels: dict[str, list[tuple[str, str]]] = {}
        help_record: tuple[str, str] | None = None
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                if not getattr(param, "hidden", False):
                    arguments.append(_argument_record(param, ctx))
                continue
            record = _option_record(param, ctx)
            if record is None:
                continue
            if param.name == "help":
                help_record = record
                continue
            panels.setdefault(getattr(param, "rich_help_panel", None) or DEFAULT_PANEL, []).append(record)
        ordered = sorted(panels.items(), key=lambda panel: _panel_place(panel[0]))
        if help_record is not None:
            if not ordered:
                ordered = [(DEFAULT_PANEL, [])]
            ordered[0][1].append(help_record)
        sections = ([("Arguments", arguments)] if arguments else []) + ordered
        widest = max((len(name) for _, records in sections for name, _ in records), default=0)
        name_width = min(widest, NAME_COLUMN, (formatter.width - formatter.current_indent) * 2 // 5)
        for title, records in sections:
            with formatter.section(title):
                formatter.write("".join(line + "\n" for line in _definitions(records, name_width, formatter)))


def _panel_place(panel: str) -> int:
    return PANEL_ORDER.index(panel) if panel in PANEL_ORDER else len(PANEL_ORDER)


def _definitions(records: list[tuple[str, str]], name_width: int, formatter: Any) -> Iterator[str]:
    """Name and help in two columns, as Click lays them out, the help broken only between words."""
    indent = " " * formatter.current_indent
    column = name_width + 2
    help_width = max(formatter.width - formatter.current_indent - column, 20)
    for name, help_text in records:
        lines = _Wrapper(help_width).wrap(" ".join(help_text.split())) if help_text else []
        if len(name) > name_width and lines:
            yield f"{indent}{name}"
            lines_from = 0
        else:
            yield f"{indent}{name.ljust(column)}{lines[0] if lines else ''}".rstrip()
            lines_from = 1
        yield from (f"{indent}{' ' * column}{line}" for line in lines[lines_from:])


class HelpGroup(HelpMixin, TyperGroup):
    """A group of commands (`apigen`, `apigen library`): its description wrapped as the commands' are."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`COMMAND [ARGS...]`, not Click's `COMMAND [ARGS]...`."""
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [*pieces[:-1], "COMMAND [ARGS...]"] if pieces[-1:] == [self.subcommand_metavar] else pieces


def use_apigen_help(app: typer.Typer, group_class: type[TyperGroup] = HelpGroup) -> None:
    """Give every command of ``app``, and of its groups, apigen's help, unless it chose a class of its own.

    Done once all the command modules have registered their commands, so that a command
    added later gets it without being told.
    """
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):  # typer's own default
            command.cls = ApigenCommand
    for group in app.registered_groups:
        if group.typer_instance is None:
            continue
        if _chosen(group.cls) in (None, TyperGroup) and _chosen(group.typer_instance.info.cls) in (None, TyperGroup):
            group.cls = group_class
        use_apigen_help(group.typer_instance, group_class)


def _chosen(value: Any) -> Any:
    """A Typer setting as given, or its default when it was left to it."""
    return value.value if isinstance(value, DefaultPlaceholder) else value
