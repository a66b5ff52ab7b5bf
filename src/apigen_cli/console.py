"""Everything meant for people, on stderr: messages, errors, progress.

Data never passes through here. Colour and progress appear only when stderr
is a terminal, never with ``--quiet``, and colour never with ``NO_COLOR``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from .llm.chat import LLMProgress

T = TypeVar("T")


def _make_console() -> Console:
    from rich.console import Console  # here: a quiet run that has nothing to say never loads rich

    return Console(stderr=True, highlight=False, no_color=bool(os.environ.get("NO_COLOR")), soft_wrap=True)


def escape(text: str) -> str:
    """``text`` with Rich's markup characters escaped, so that it prints as it is."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


class Messages:
    """The single stderr voice of a command."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self._console: Console | None = None
        self.quiet = quiet
        self.verbose = verbose

    @property
    def console(self) -> Console:
        """stderr's console, made when there is first something to print (or to ask of the terminal)."""
        if self._console is None:
            self._console = _make_console()
        return self._console

    @console.setter
    def console(self, console: Console) -> None:
        self._console = console

    @property
    def interactive(self) -> bool:
        return not self.quiet and self.console.is_terminal

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

    def progress(
        self,
        rows: Iterable[T],
        label: str,
        *,
        total: int | None = None,
        unit: str = "rows",
        taken: Callable[[], int] | None = None,
        counters: LLMProgress | None = None,
        plan: range | None = None,
    ) -> Iterator[T]:
        """Yield ``rows`` unchanged, showing one line of progress on a terminal (see ``ProgressLines``).

        What is counted: the rows passing (by default), at most ``taken()`` (the rows a stage has
        read, when it may write several rows of one), or with ``plan`` the plan's requests the
        rows have finished (rows come in plan order). ``total``: how many there are in all, when known.
        ``counters``: an LLM stage's live counters, read at each redraw.
        """
        if not self.interactive:
            yield from rows
            return
        lines = ProgressLines(self.console, [label], counters={label: counters} if counters is not None else None)
        with lines:
            tracker = lines.track(label, total=len(plan) if plan is not None else total, unit="requests" if plan else unit)
            for row in rows:
                tracker.count(row)
                # rows out, but never more than were read (format-check may make several rows of one)
                tracker.passed(row, min(tracker.rows, taken()) if taken is not None else tracker.rows, plan)
                yield row
            tracker.finished(taken() if taken is not None else tracker.rows, plan)


class StageBars:
    """One line of progress per pipeline stage (``apigen run``), on a terminal only.

    ``observe(name, rows)`` wraps a stage's output; each line shows how many of the plan's
    requests have passed its stage, with the rows and how many the stage rejected. The LLM
    counters (requests in flight, retries, tokens) ride on the first line. Use as a context manager.
    """

    def __init__(
        self, messages: Messages, names: Iterable[str], counters: LLMProgress | None = None, plan: range | None = None
    ) -> None:
        self.messages = messages
        self.names = list(names)
        self.plan = plan
        self._lines: ProgressLines | None = None
        if messages.interactive:
            extra = {self.names[0]: counters} if counters is not None and self.names else None
            self._lines = ProgressLines(messages.console, self.names, counters=extra)

    def __enter__(self) -> StageBars:
        if self._lines is not None:
            self._lines.__enter__()
            for name in self.names:
                total, unit = (len(self.plan), "requests") if self.plan is not None else (None, "rows")
                self._lines.track(name, total=total, unit=unit)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lines is not None:
            self._lines.__exit__(*exc_info)

    def observe(self, name: str, rows: Iterator[T]) -> Iterator[T]:
        if self._lines is None or name not in self._lines.trackers:
            yield from rows
            return
        tracker = self._lines.trackers[name]
        for row in rows:  # a stage may be observed in batches (--grow-examples): the tracker keeps its counts
            tracker.count(row)
            tracker.passed(row, tracker.rows, self.plan)
            yield row
        tracker.finished(tracker.rows, self.plan)


@dataclass(frozen=True)
class Phase:
    """One line of a run made of phases one after another (``run --multi-turn``).

    Its figures are read at each redraw from counts the library keeps (a run's tallies), not
    counted here, so that a resumed run shows at once what its state carried over.
    """

    label: str
    unit: str  # what ``done`` counts, of the total the phase learns when it starts
    done: Callable[[], int]
    figures: Callable[[], Sequence[Field]] = lambda: ()  # after done/total: verified, rejected, ...
    counters: Callable[[], LLMProgress | None] = lambda: None  # the phase's LLM counters, once it has a model
    waits_for: str = "waiting"  # what the line says before its phase starts


class PhaseLines:
    """A line per phase, on a terminal only (never with ``--quiet``), gone when the run ends.

    ``start(label, total)`` when a phase begins, ``observe(label, rows)`` on its rows so that its
    bar and rate move as they go by, ``finished(label)`` when it is done (or found done by a
    resumed run). Use as a context manager around all the phases.
    """

    def __init__(self, messages: Messages, phases: Sequence[Phase]) -> None:
        self._phases = {phase.label: phase for phase in phases}
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int] = {}  # the phases started whose lines have not begun
        self._progress: Any = None
        if not messages.interactive:
            return
        from rich.progress import Progress, ProgressColumn

        console, known = messages.console, self._phases
        label_width = max((len(label) for label in known), default=0)

        class Line(ProgressColumn):
            def render(self, task: Any) -> Text:
                fraction = task.completed / task.total if task.total else 0.0
                return progress_text(_phase_fields(task, label_width, known[task.description]), console.width - 1, fraction)

        self._progress = Progress(Line(), console=console, transient=True, refresh_per_second=4)

    def __enter__(self) -> PhaseLines:
        if self._progress is not None:
            self._progress.__enter__()
            for label in self._phases:
                self._tasks[label] = self._progress.add_task(label, total=None, start=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)

    def start(self, label: str, total: int) -> None:
        """The phase begins, with ``total`` to do. Its line starts when its rows begin, or when it is found
        finished: by then a resumed run has restored the counts it carries over, and they give no rate."""
        self._totals[label] = total

    def _begin(self, label: str) -> None:
        if label in self._totals:
            self._progress.reset(self._tasks[label], total=self._totals.pop(label), completed=self._phases[label].done())

    def observe(self, label: str, rows: Iterator[T]) -> Iterator[T]:
        if self._progress is None:
            yield from rows
            return
        self._begin(label)
        last = 0.0
        for row in rows:  # the counts move as rows are written, after this one was made: read before the next
            now = time.monotonic()
            if now - last >= 0.1:
                last = now
                self._update(label)
            yield row
        self._update(label)

    def finished(self, label: str) -> None:
        if self._progress is not None:
            self._begin(label)
            self._update(label)

    def _update(self, label: str) -> None:
        self._progress.update(self._tasks[label], completed=self._phases[label].done())


# --- progress lines: laid out to the terminal's width, fields dropped rather than cut ----------

#: the bar's width: the room a terminal leaves past 70 columns, within these bounds; the same on every
#: line, so that the bars and the figures after them line up
BAR_WIDTH = (10, 30)
_GAP = "  "


def bar_width(width: int) -> int:
    return max(BAR_WIDTH[0], min(BAR_WIDTH[1], width - 70))


@dataclass(frozen=True)
class Field:
    """A piece of a progress line. When the line is too narrow the fields of the highest ``rank`` go first;
    rank 0 stays (the label, the count). ``bar``: the field is the bar (``bar_width`` wide)."""

    text: str
    rank: int
    bar: bool = False


def fit_fields(fields: Sequence[Field], width: int) -> list[Field]:
    """The fields that fit in ``width`` columns, in their order: dropped whole, the highest rank first,
    so that a number is never cut."""
    kept = list(fields)
    bar = bar_width(width)

    def needed() -> int:
        return sum(bar if field.bar else len(field.text) for field in kept) + len(_GAP) * (len(kept) - 1)

    while needed() > width:
        droppable = [field for field in kept if field.rank > 0]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda field: field.rank))
    return kept


def progress_text(fields: Sequence[Field], width: int, fraction: float = 0.0) -> Text:
    """A progress line of at most ``width`` columns: the fields that fit, the bar filled to ``fraction``."""
    from rich.text import Text

    bar = bar_width(width)
    line = Text(no_wrap=True, overflow="crop")
    for index, field in enumerate(fit_fields(fields, width)):
        if index:
            line.append(_GAP)
        if field.bar:
            filled = min(bar, int(bar * max(fraction, 0.0)))  # a bar never shows more than is done
            line.append("━" * filled, style="green")
            line.append("─" * (bar - filled), style="bright_black")
        else:
            line.append(field.text)
    return line


class Tracker:
    """The counts of one progress line, put on its task at most ten times a second."""

    def __init__(self, progress: Any, task: Any, label: str) -> None:
        self._progress, self._task = progress, task
        self._stage = label.replace("-", "_")  # as rows name it in `rejected_by`
        self.completed = 0
        self.rows = 0
        self.rejected = 0
        self._started_at: int | None = None  # with a plan: where this session began in it (a resumed run skips some)
        self._last_index: int | None = None  # with a plan: the index of the latest row's request
        self._last = 0.0

    def count(self, row: object) -> None:
        """A row out of the stage: one more row, and one more rejected if the stage rejected it."""
        self.rows += 1
        if isinstance(row, dict) and row.get("rejected_by") == self._stage:
            self.rejected += 1

    def passed(self, row: object, count: int, plan: range | None) -> None:
        """After ``row`` (the ``count``-th): with a plan, the requests before the row's own are finished."""
        if plan is not None:
            position = _plan_index(row)
            if position is None:
                return
            self._last_index = position
            done = position - plan.start
            if self._started_at is None:  # where the run (re)starts: no rate from requests done before
                self._started_at = done
                self._progress.reset(self._task, completed=done)
                self.completed = done
                return
            self.completed = max(self.completed, done)
        else:
            self.completed = count
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self.flush()

    def finished(self, count: int, plan: range | None) -> None:
        """The rows have all passed: with a plan, the last row's request is finished too.

        (A stage observed in batches, `--grow-examples`, ends each batch at a request's end.)
        """
        if plan is not None:
            if self._last_index is not None:
                self.completed = max(self.completed, self._last_index - plan.start + 1)
        else:
            self.completed = count
        self.flush()

    def flush(self) -> None:
        self._progress.update(self._task, completed=self.completed, rows=self.rows, rejected=self.rejected)


class ProgressLines:
    """Live progress lines on stderr (transient: they go when done), one per label, each fitted to the
    terminal's width as it is at each redraw: fields are dropped whole, never cut (see ``fit_fields``).

    A line shows, where a total is known: the label, a bar, the percent, done/total, the time left and
    the rate; without one, the count, the rate and the time so far; then rows, rejected and, for an
    LLM stage, its live counters (requests in flight, retries, cached replies, tokens).
    """

    def __init__(self, console: Console, labels: Sequence[str], counters: dict[str, LLMProgress] | None = None) -> None:
        from rich.progress import Progress, ProgressColumn

        label_width = max((len(label) for label in labels), default=0)
        llm = counters or {}
        line_fields = _line_fields

        class Line(ProgressColumn):
            def render(self, task: Any) -> Text:
                fields = line_fields(task, label_width, llm.get(task.description))
                fraction = task.completed / task.total if task.total else 0.0
                return progress_text(fields, console.width - 1, fraction)

        self._progress = Progress(Line(), console=console, transient=True, refresh_per_second=4)
        self.trackers: dict[str, Tracker] = {}

    def __enter__(self) -> ProgressLines:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._progress.__exit__(*exc_info)

    def track(self, label: str, *, total: int | None, unit: str) -> Tracker:
        task = self._progress.add_task(label, total=total, unit=unit, rows=0, rejected=0)
        self.trackers[label] = Tracker(self._progress, task, label)
        return self.trackers[label]


def _line_fields(task: Any, label_width: int, counters: LLMProgress | None) -> list[Field]:
    """The fields of a task's line, in display order, ranked by what goes first when room is short."""
    unit = task.fields.get("unit", "rows")
    completed = int(task.completed)
    speed = task.speed
    fields = [Field(task.description.ljust(label_width), 0)]
    if task.total:
        total = int(task.total)
        fields += [
            Field("", 3, bar=True),
            Field(f"{min(completed / total, 1.0):>4.0%}", 1),
            Field(f"{completed:,}/{total:,} {unit}", 0),
        ]
        left = task.time_remaining
        if left is not None and completed < total:
            fields.append(Field(f"{_clock(left)} left", 2))
    else:
        fields.append(Field(f"{completed:,} {unit}", 0))
    if speed:
        fields.append(Field(f"{speed:,.1f} {unit}/s" if speed < 100 else f"{speed:,.0f} {unit}/s", 5))
    if not task.total and task.elapsed:
        fields.append(Field(_clock(task.elapsed), 6))
    rows, rejected = task.fields.get("rows", 0), task.fields.get("rejected", 0)
    if unit != "rows" and rows:
        fields.append(Field(f"{rows:,} rows", 7))
    if rows:
        fields.append(Field(f"{rejected:,} rejected", 4))
    return fields + _llm_fields(counters, 8)


def _phase_fields(task: Any, label_width: int, phase: Phase) -> list[Field]:
    """A phase's line: the label, then the phase's wait, or its bar, done/total, time left and rate;
    then its figures and its LLM counters."""
    fields = [Field(task.description.ljust(label_width), 0)]
    if not task.started:
        return [*fields, Field(phase.waits_for, 1)]
    completed, total = int(task.completed), int(task.total or 0)
    if total:
        fields += [Field("", 3, bar=True), Field(f"{min(completed / total, 1.0):>4.0%}", 1)]
    fields.append(Field(f"{completed:,}/{total:,} {phase.unit}", 0))
    if completed < total:
        if task.time_remaining is not None:
            fields.append(Field(f"{_clock(task.time_remaining)} left", 2))
        if task.speed:
            fields.append(Field(f"{task.speed:,.1f} {phase.unit}/s", 8))
    return fields + list(phase.figures()) + _llm_fields(phase.counters(), 9)


def _llm_fields(counters: LLMProgress | None, rank: int) -> list[Field]:
    """An LLM stage's live counters (requests in flight, retries, cached replies, tokens), from ``rank`` down."""
    if counters is None:
        return []
    fields = [Field(f"{counters.in_flight} in flight", rank)]
    if counters.retries:
        fields.append(Field(f"{counters.retries} retries", rank + 2))
    if counters.cached:
        fields.append(Field(f"{counters.cached} cached", rank + 3))
    return fields + [Field(f"{counters.tokens:,} tokens", rank + 1)]


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _plan_index(row: object) -> int | None:
    """The plan index of a row's request (``gen-SEED-INDEX``), or None for a row of no plan."""
    from .report import plan_position

    request_id = row.get("request_id") if isinstance(row, dict) else None
    position = plan_position(request_id) if isinstance(request_id, str) else None
    return position[1] if position is not None else None
