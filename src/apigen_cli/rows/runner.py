"""Running one stage from an input path to output paths: the part every command shares.

Kept apart from the commands (``cli/``) so that commands stay thin and so that the same
wiring can be driven from Python without Typer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, InputError
from ..wording import counted
from .file_roles import FileUse, check_files_apart
from .jsonl import STDIO, OutputFile, read_rows
from .records import is_api_definition
from .replacement import check_writable, replaced_together
from .routing import StageSummary, route_rows

Stage = Callable[[Iterable[dict[str, Any]]], Iterator[dict[str, Any]]]
Wrapper = Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]]
Check = Callable[[StageSummary], None]


@dataclass(frozen=True)
class Destinations:
    """Where a command's rows go: ``output`` for kept rows, ``rejects`` for the others."""

    input: str = STDIO
    output: str = STDIO
    rejects: str | None = None
    keep_rejected: bool = False
    skip_bad_lines: bool = False
    input_flag: str = "INPUT"  # how messages name the input (`run` reads its API library, `APIS`)

    def validate(self) -> None:
        if self.rejects is not None and self.keep_rejected:
            raise ConfigError(
                "`--rejects` and `--keep-rejected` both say where rejected rows go",
                hint="pass one of them: `--rejects FILE` to write them apart, `--keep-rejected` to keep them in the output",
            )
        paths = {"--output": self.output, "--rejects": self.rejects}
        check_files_apart(
            [
                FileUse(self.input_flag, self.input, writes=False),
                *(FileUse(flag, path, writes=True) for flag, path in paths.items() if path),
            ]
        )
        if self.rejects == STDIO and self.output == STDIO:
            raise ConfigError("`--rejects` and `--output` both name standard output", hint="give the rejects a file of their own")
        for flag, path in paths.items():
            if path is not None and path != STDIO:
                check_writable(path, flag)


def run_stage(
    command: str, stage: Stage, where: Destinations, wrap: Wrapper | None = None, check: Check | None = None
) -> StageSummary:
    """Read rows, pass them through ``stage`` and route the results; returns the counts.

    ``wrap`` sees the stage's output on its way to the files (the CLI shows progress with it).
    ``check`` judges the finished stage before its files replace the earlier ones (see ``write_rows``).
    """
    rows = refusing_api_definitions(read_rows(where.input, skip_bad_lines=where.skip_bad_lines), where.input)
    return write_rows(command, stage(rows), where, wrap, check)


def refusing_api_definitions(rows: Iterable[dict[str, Any]], source: str) -> Iterator[dict[str, Any]]:
    """``rows``, stopped with an error at the first that is an API definition rather than a row.

    An API library given where rows belong would otherwise come out as every row rejected
    (`no_tools`, duplicates of one another, nothing to export) with exit 0.
    """
    for number, row in enumerate(rows, start=1):
        if "query" not in row and is_api_definition(row):  # a row with a query is never one: one lookup a row
            shown = "standard input" if source == STDIO else f"`{source}`"
            raise InputError(
                f"row {number} of {shown} is an API definition, not a row (it has `parameters` and no `query`)",
                hint="this command reads rows; make them from an API library with `apigen generate APIS -m MODEL` "
                "or `apigen run APIS ...`",
            )
        yield row


def write_rows(
    command: str, rows: Iterator[dict[str, Any]], where: Destinations, wrap: Wrapper | None = None, check: Check | None = None
) -> StageSummary:
    """Route rows a command made (from any source) into its output and rejects; returns the counts.

    The files replace the earlier ones only when every row is routed and ``check`` (which
    may raise: the stage ran but its result is unusable) passes; otherwise they are left
    as they were, and the rows written are kept as ``FILE.partial`` (see ``replacement``).
    """
    where.validate()
    if wrap is not None:
        rows = wrap(rows)
    output = OutputFile(where.output)
    rejects = OutputFile(where.rejects, flag="--rejects") if where.rejects is not None else None
    summary = StageSummary(command)
    with replaced_together(output, rejects):
        try:  # the files are opened here, before the first row is asked for: before any request is sent
            route_rows(rows, summary, output.writer, rejects.writer if rejects else None, keep_rejected=where.keep_rejected)
        except InputError as error:  # a bad input line stopped the stage: say what of it is already written
            written = counted(summary.passed, "row") + (f" and {counted(summary.rejected, 'reject')}" if summary.rejected else "")
            verb = "was" if summary.passed + summary.rejected == 1 else "were"
            raise InputError(f"{error.message} ({written} {verb} written before it)", hint=error.hint) from None
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()  # let the stages' generators clean up now, not whenever they are collected
        if check is not None:
            check(summary)
    return summary
