"""Everything meant for people, on stderr: messages, errors, progress.

Data never passes through here. Colour and progress appear only when stderr
is a terminal, never with ``--quiet``, and colour never with ``NO_COLOR``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from .llm.chat import LLMProgress

T = TypeVar("T")


def _make_console() -> Console:
    return Console(stderr=True, highlight=False, no_color=bool(os.environ.get("NO_COLOR")), soft_wrap=True)


class Messages:
    """The single stderr voice of a command."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.console = _make_console()
        self.quiet = quiet
        self.verbose = verbose

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and not self.quiet

    def info(self, text: str) -> None:
        """A plain line for people; suppressed by ``--quiet``."""
        if not self.quiet:
            self.console.print(escape(text))

    def warning(self, text: str) -> None:
        self.console.print(f"[yellow bold]warning[/]: {escape(text)}")

    def error(self, text: str, hint: str | None = None) -> None:
        """``error: …`` then, after a blank line, ``hint: …``; always printed."""
        self.console.print(f"[red bold]error[/]: {escape(text)}")
        if hint:
            self.console.print()
            self.console.print(f"[cyan bold]hint[/]: {escape(hint)}")

    def waiting_for_stdin(self, path: str) -> None:
        if path == "-" and sys.stdin.isatty():
            self.info("apigen: reading rows from standard input (end with Ctrl-D, or pass a file)")

    def progress(self, rows: Iterable[T], label: str) -> Iterator[T]:
        """Yield ``rows`` unchanged, showing a count and rate on a terminal."""
        if not self.interactive:
            yield from rows
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed} rows"),
            TextColumn("{task.fields[rate]:.0f} rows/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(label, rate=0.0)
            started = time.monotonic()
            count = 0
            for count, row in enumerate(rows, start=1):
                if count % 256 == 0:
                    elapsed = time.monotonic() - started
                    bar.update(task, completed=count, rate=count / elapsed if elapsed else 0.0)
                yield row
            bar.update(task, completed=count)

    def llm_progress(self, rows: Iterable[T], label: str, counters: LLMProgress) -> Iterator[T]:
        """Yield ``rows`` unchanged, showing a live bar of an LLM stage on a terminal.

        Rows out and their rate come from the rows passing through; requests in
        flight, retries and tokens are read live from ``counters`` (a chat service's
        ``progress``) each time the bar redraws, so they move while rows wait.
        """
        if not self.interactive:
            yield from rows
            return
        from rich.progress import Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.text import Text

        class Requests(ProgressColumn):
            def render(self, task: Any) -> Text:
                retries = f" · {counters.retries} retries" if counters.retries else ""
                cached = f" · {counters.cached} cached" if counters.cached else ""
                return Text(f"{counters.in_flight} in flight{retries}{cached} · {counters.tokens:,} tokens")

        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed} rows"),
            TextColumn("{task.fields[rate]:.1f} rows/s"),
            Requests(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=True, refresh_per_second=4) as bar:
            task = bar.add_task(label, rate=0.0)
            started = last = time.monotonic()
            count = 0
            for count, row in enumerate(rows, start=1):
                now = time.monotonic()
                if now - last >= 0.1:
                    last = now
                    bar.update(task, completed=count, rate=count / (now - started) if now > started else 0.0)
                yield row
            bar.update(task, completed=count)


class StageBars:
    """One progress bar per pipeline stage (``apigen run``), on a terminal only.

    ``observe(name, rows)`` wraps a stage's output; each bar counts the rows that
    left its stage and how many it rejected. The LLM counters (requests in flight,
    retries, tokens) ride on the first bar. Use as a context manager.
    """

    def __init__(self, messages: Messages, names: Iterable[str], counters: LLMProgress | None = None) -> None:
        self.messages = messages
        self.names = list(names)
        self.counters = counters
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._counts: dict[str, tuple[int, int]] = {}

    def __enter__(self) -> StageBars:
        if not self.messages.interactive:
            return self
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<15}"),
            TextColumn("{task.completed:>7} rows"),
            TextColumn("{task.fields[rejected]:>6} rejected"),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            console=self.messages.console,
            transient=True,
            refresh_per_second=4,
        )
        self._bar.__enter__()
        for name in self.names:
            self._tasks[name] = self._bar.add_task(name, rejected=0, extra="")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)

    def observe(self, name: str, rows: Iterator[T]) -> Iterator[T]:
        if self._bar is None or name not in self._tasks:
            yield from rows
            return
        task, stage, bar, counters = self._tasks[name], name.replace("-", "_"), self._bar, self.counters
        done, rejected = self._counts.get(name, (0, 0))  # a stage may be observed in batches (--grow-examples)
        last = 0.0
        for row in rows:
            done += 1
            if isinstance(row, dict) and row.get("rejected_by") == stage:
                rejected += 1
            self._counts[name] = (done, rejected)
            now = time.monotonic()
            if now - last >= 0.1:
                last = now
                extra = ""
                if counters is not None and name == self.names[0]:
                    extra = f"{counters.in_flight} in flight · {counters.retries} retries · {counters.tokens:,} tokens"
                bar.update(task, completed=done, rejected=rejected, extra=extra)
            yield row
        bar.update(task, completed=done, rejected=rejected)
