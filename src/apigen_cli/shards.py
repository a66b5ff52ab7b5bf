"""``apigen merge``: the shards of one run, joined into the files the unsharded run writes.

``--shard K/N`` makes the K-th of N contiguous blocks of the run's requests
(``stages.sampling.shard_requests``), so the shards' outputs, one after another
in shard order, are the unsharded run's output byte for byte, and the same for
the rejects. What makes that safe is in the shards' run states: each says which
shard it is, whether it is complete and how many bytes of its files are finished,
and all the shards of one run share its fingerprint and seed. The merged files get
a state of their own, that of a complete unsharded run, so ``apigen run`` with the
same flags (no ``--shard``) finds the run done, and the report is the shards'
counts added up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO

from .checkpoint import RunState, state_path
from .errors import ConfigError, InputError
from .report import PipelineReport, ReportBuilder, summed_counts
from .rows.replacement import Replacement


@dataclass(frozen=True)
class ShardFiles:
    """One shard's finished files, as its run state describes them."""

    output: str
    state: RunState
    rejects: str | None

    @property
    def name(self) -> str:
        index, count = self.state.shard or (0, 1)
        return f"shard {index}/{count} (`{self.output}`)"


@dataclass
class MergeOutcome:
    """What a merge wrote: the summed report, and how much of it there was."""

    report: PipelineReport
    seed: int
    shards: int
    requests: int
    rejects_left_out: int = 0  # shards whose rejects were not merged (no `--rejects`)


def read_shard(output: str) -> ShardFiles:
    """A shard's output and its state, or an error naming the file and what is wrong with it."""
    if not os.path.isfile(output):
        raise InputError(f"`{output}` does not exist or is not a file", hint="give the output file each shard's run wrote")
    state = RunState.load(state_path(output))
    if state is None:
        raise ConfigError(
            f"`{output}` has no run state beside it (`{state_path(output)}`), so it is not the output of a sharded `apigen run`",
            hint="give the output files the shards' `apigen run` commands wrote",
        )
    if state.shard is None:
        raise ConfigError(
            f"`{output}` holds a whole run, not a shard of one", hint="a whole run needs no merging: use its files as they are"
        )
    rejects = os.path.join(os.path.dirname(os.path.abspath(output)), state.rejects_file) if state.rejects_file else None
    return ShardFiles(output, state, rejects)


def check_shards(shards: Sequence[ShardFiles]) -> list[ShardFiles]:
    """The shards of one run, all there and complete, in shard order; else an error naming the one that is not."""
    if not shards:
        raise ConfigError("no shard outputs are given", hint="give every shard's output file after the merged output")
    first = shards[0]
    count = first.state.shard[1] if first.state.shard else 1
    by_index: dict[int, ShardFiles] = {}
    for shard in shards:
        index, shard_count = shard.state.shard or (0, 1)
        if (shard.state.fingerprint, shard.state.seed, shard_count) != (first.state.fingerprint, first.state.seed, count):
            raise ConfigError(
                f"{shard.name} is a shard of another run than {first.name}",
                hint="give the shards of one run: the same command, inputs and seed, the shard number aside",
            )
        if index in by_index:
            raise ConfigError(
                f"{shard.name} and `{by_index[index].output}` are both shard {index}/{count}",
                hint="give each shard's output once",
            )
        by_index[index] = shard
    missing = [index for index in range(count) if index not in by_index]
    if missing:
        names = ", ".join(f"{index}/{count}" for index in missing)
        raise ConfigError(
            f"shard {names} of the run is missing: {len(by_index)} of {count} shards are given",
            hint="run the missing shards with the same command, and give their outputs too",
        )
    ordered = [by_index[index] for index in range(count)]
    for shard in ordered:
        state = shard.state
        if not state.complete:
            raise ConfigError(
                f"{shard.name} is incomplete: {state.requests_done} of {state.requests_total} requests are done",
                hint="rerun that shard's own `apigen run` command: it resumes where it stopped",
            )
        _check_size(shard, shard.output, state.output_bytes)
    return ordered


def merge_shards(
    output: str, shard_outputs: Sequence[str], *, rejects: str | None = None, overwrite: bool = False
) -> MergeOutcome:
    """Join the shards' outputs (and rejects) into ``output`` (and ``rejects``), in plan order, with a summed state."""
    shards = check_shards([read_shard(path) for path in shard_outputs])
    if rejects is not None:
        for shard in shards:
            if shard.rejects is None:
                raise ConfigError(
                    f"{shard.name} kept no rejects file, so merged rejects would lack its rejected rows",
                    hint="leave out `--rejects`, or run that shard again with a rejects file",
                )
            _check_size(shard, shard.rejects, shard.state.rejects_bytes)
    _check_destinations(output, rejects, shards, overwrite=overwrite)

    states = [shard.state for shard in shards]
    joins = [(output, "OUT", [(shard.output, shard.state.output_bytes) for shard in shards])]
    if rejects is not None:
        joins.append((rejects, "--rejects", [(shard.rejects or "", shard.state.rejects_bytes) for shard in shards]))
    _join_all(joins)
    merged = RunState(
        fingerprint=states[0].fingerprint,
        seed=states[0].seed,
        requests_total=sum(state.requests_total for state in states),
        requests_done=sum(state.requests_done for state in states),
        output_bytes=sum(state.output_bytes for state in states),
        rejects_bytes=sum(state.rejects_bytes for state in states) if rejects is not None else 0,
        complete=True,
        elapsed_seconds=max(state.elapsed_seconds for state in states),  # shards run side by side
        usage=_summed_usage(state.usage for state in states),
        report=summed_counts(state.report for state in states),
        rejects_file=os.path.relpath(rejects, os.path.dirname(os.path.abspath(output))) if rejects is not None else None,
    )
    merged.save(state_path(output), anew=True)
    report = ReportBuilder.from_json(merged.report).build()
    report.tokens = merged.usage
    report.wall_seconds = merged.elapsed_seconds
    left_out = sum(1 for shard in shards if shard.rejects is not None) if rejects is None else 0
    return MergeOutcome(report, merged.seed, len(shards), merged.requests_total, rejects_left_out=left_out)


def _check_size(shard: ShardFiles, path: str, size: int) -> None:
    found = os.path.getsize(path) if os.path.isfile(path) else None
    if found != size:
        what = "is missing" if found is None else f"holds {found} bytes"
        raise ConfigError(
            f"`{path}` of {shard.name} {what}, but the shard's run state says it finished with {size}",
            hint="rerun that shard's own `apigen run` command over intact files, or run the shard again afresh",
        )


def _check_destinations(output: str, rejects: str | None, shards: Sequence[ShardFiles], *, overwrite: bool) -> None:
    sources = [path for shard in shards for path in (shard.output, shard.rejects) if path]
    targets = [path for path in (output, rejects) if path]
    if rejects is not None and os.path.abspath(rejects) == os.path.abspath(output):
        raise ConfigError("the merged output and `--rejects` name the same file", hint="give `--rejects` another file")
    for target in targets:
        if any(os.path.abspath(target) == os.path.abspath(source) for source in sources):
            raise ConfigError(f"`{target}` is one of the shards' own files", hint="merge into a new file")
        if not overwrite and os.path.exists(target) and os.path.getsize(target) > 0:
            raise ConfigError(f"`{target}` already exists", hint="pass `--overwrite` to replace it, or merge into a new file")


def _join_all(joins: Sequence[tuple[str, str, Sequence[tuple[str, int]]]]) -> None:
    """Write each target as the first ``size`` bytes of its parts, one after another; replace them only when all are written."""
    written: list[tuple[Replacement, IO[bytes]]] = []
    try:
        for target, flag, parts in joins:
            file = Replacement(target, flag)
            written.append((file, file.open()))
            for path, size in parts:
                with open(path, "rb") as source:
                    _copy_exactly(source, written[-1][1], size, path)
    except BaseException:
        for file, stream in written:
            file.discard(stream)
        raise
    for file, stream in written:
        file.commit(stream)


def _copy_exactly(source: BinaryIO, sink: IO[bytes], size: int, path: str) -> None:
    left = size
    while left:
        chunk = source.read(min(left, 1 << 20))
        if not chunk:
            raise InputError(f"`{path}` ended {left} bytes short while merging", hint="merge again once the shards are intact")
        sink.write(chunk)
        left -= len(chunk)


def _summed_usage(usages: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for usage in usages:
        for model, counts in usage.items():
            mine = total.setdefault(model, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
            for key, value in counts.items():
                mine[key] = mine.get(key, 0) + int(value)
    return total
