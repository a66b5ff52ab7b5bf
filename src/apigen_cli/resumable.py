"""A generation command's rows written so that the same command, run again after a crash, carries on.

``apigen run`` resumes with its own machinery (``pipeline``); a command that makes one row per
request in request order (``apigen blueprint``) needs only this: the output and the rejects
written in place, a checkpoint (``checkpoint.RunState``) at each finished request, and a rerun
of the same command and files cutting them back to the last checkpoint and asking only for the
requests after it. The counts of the summary line, and any the command keeps itself, are carried
in the state, so that a resumed run ends with the figures of the whole run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .checkpoint import RunState, checkpoint_at_request_boundaries, resume_or_start, state_path
from .rows.jsonl import STDIO, OutputFile
from .rows.lock import OutputLock
from .rows.records import Row
from .rows.replacement import replaced_together
from .rows.routing import StageSummary, route_rows
from .rows.runner import Destinations, Wrapper

Counts = dict[str, int]
_REASON = "reason\t"  # a summary's reason in the state's counts: "reason\t<stage>\t<code>"


@dataclass
class ResumableRun:
    """What a resumable command is and how it keeps counts of its own across sessions."""

    command: str
    digest: str  # checkpoint.fingerprint of everything that decides the rows
    seed: int
    total: int  # requests the whole run makes
    settings: Mapping[str, Any]  # the values behind the digest, so a rerun with others is told which differ
    overwrite: bool = False
    seed_given: bool = True  # `--seed` was given; else a resumed run takes the seed its first session drew
    request_field: str = "request_id"  # the field naming a row's request, PREFIX-SEED-INDEX (a blueprint is its own: `id`)
    counts: Callable[[], Counts] | None = None  # the command's own counts, saved at each checkpoint
    restore: Callable[[Counts], None] | None = None  # given them back when the run resumes


@dataclass
class Resumed:
    """How the session went: its summary (the whole run's), and what earlier sessions had done."""

    summary: StageSummary
    seed: int
    skipped: int
    already_complete: bool = False


def is_resumable(output: str) -> bool:
    """A file output can be cut back and appended to; standard output cannot."""
    return output != STDIO


def write_resumable(
    run: ResumableRun,
    rows_from: Callable[[int, int], Iterator[Row]],
    where: Destinations,
    wrap: Wrapper | None = None,
    written: Wrapper | None = None,
) -> Resumed:
    """Write ``rows_from(seed, skip)`` to ``where``'s files, resuming the run an earlier session left there.

    ``seed`` is the earlier session's when it resumes (a run without `--seed` drew its own).
    ``wrap`` sees the rows as they are made (a progress bar); ``written`` as they are written,
    after the checkpoint of the requests before them: what it counts is what the state saves.
    """
    assert is_resumable(where.output)
    with OutputLock.acquire(where.output):
        state = resume_or_start(
            where.output,
            where.rejects,
            run.digest,
            run.seed,
            run.total,
            overwrite=run.overwrite,
            settings=dict(run.settings),
            seed_given=run.seed_given,
            request_field=run.request_field,
        )
        summary = _summary_from(run.command, state.counts)
        if run.restore is not None and (state.requests_done or state.complete):
            run.restore(state.counts)
        if state.complete:
            return Resumed(summary, state.seed, state.requests_done, already_complete=True)
        skipped = state.requests_done
        output = OutputFile(where.output, resume_at=state.output_bytes if skipped else None, in_place=True)
        rejects = (
            OutputFile(where.rejects, resume_at=state.rejects_bytes if skipped else None, in_place=True, flag="--rejects")
            if where.rejects is not None
            else None
        )

        def remember_counts(state: RunState) -> None:
            state.counts = _counts_of(summary) | (run.counts() if run.counts is not None else {})

        rows = rows_from(state.seed, skipped)
        if wrap is not None:
            rows = wrap(rows)
        path = state_path(where.output)
        with replaced_together(output, rejects):
            checked = checkpoint_at_request_boundaries(
                starting_files_on_first_row(rows, output, rejects),
                state,
                path,
                output.writer,
                rejects.writer if rejects is not None else None,
                before_save=remember_counts,
                request_of=lambda row: row.get(run.request_field),
            )
            if written is not None:
                checked = written(checked)
            route_rows(
                checked,
                summary,
                output.writer,
                rejects.writer if rejects is not None else None,
                keep_rejected=where.keep_rejected,
            )
            state.complete = True
            state.save(path)
        return Resumed(summary, state.seed, skipped)


def starting_files_on_first_row(rows: Iterator[Row], *files: OutputFile | None) -> Iterator[Row]:
    """``rows``, with the files started (a fresh run's earlier files emptied, together) before the first goes by:
    a run that fails before its first row leaves them as they were."""
    for row in rows:
        for file in files:
            if file is not None:
                file.start()
        yield row
        break
    yield from rows


def _counts_of(summary: StageSummary) -> Counts:
    counts = {"passed": summary.passed, "rejected": summary.rejected, "dropped": summary.dropped}
    counts.update({f"{_REASON}{stage}\t{code}": count for (stage, code), count in summary.reasons.items()})
    return counts


def _summary_from(command: str, counts: Counts) -> StageSummary:
    reasons: Counter[tuple[str, str]] = Counter()
    for key, count in counts.items():
        if key.startswith(_REASON):
            stage, code = key[len(_REASON) :].split("\t", 1)
            reasons[(stage, code)] = count
    return StageSummary(
        command,
        passed=counts.get("passed", 0),
        rejected=counts.get("rejected", 0),
        dropped=counts.get("dropped", 0),
        reasons=reasons,
    )
