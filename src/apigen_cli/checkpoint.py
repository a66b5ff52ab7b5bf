"""Resumable runs: what ``apigen run`` has finished, kept beside its output.

Rows leave the pipeline in request order, and every request gives at least one
row (pairs, a raw-output row, or an ``llm_error`` row), so a change of
``request_id`` in the stream means the previous request is wholly written. At
each such boundary the writers are flushed and the state records how many
requests are done and how many bytes each file holds. After a crash (even
``kill -9``) a rerun of the same command truncates the files to those sizes,
skips the finished requests and carries on: no row lost, none duplicated, no
request repeated for rows already written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from .errors import ConfigError
from .rows.jsonl import STDIO, JsonlWriter

STATE_SUFFIX = ".apigen-run.json"


def state_path(output: str) -> str:
    return output + STATE_SUFFIX


def fingerprint(settings: dict[str, Any], files: Iterable[str] = ()) -> str:
    """A digest of everything that decides a run's rows: its settings and its input files' bytes."""
    digest = hashlib.sha256(orjson.dumps(settings, option=orjson.OPT_SORT_KEYS, default=str))
    for path in files:
        digest.update(path.encode())
        if os.path.isdir(path):
            for folder, _, names in sorted(os.walk(path)):
                for name in sorted(names):
                    if name.endswith((".py", ".txt", ".jsonl", ".json")):
                        with open(os.path.join(folder, name), "rb") as handle:
                            digest.update(name.encode() + handle.read())
        elif os.path.isfile(path):
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:32]


@dataclass
class RunState:
    """What is finished: persisted as JSON beside the output, replaced atomically."""

    fingerprint: str
    seed: int
    requests_total: int
    requests_done: int = 0
    output_bytes: int = 0
    rejects_bytes: int = 0
    complete: bool = False
    elapsed_seconds: float = 0.0
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)  # the report's counts so far (ReportBuilder.to_json)
    shard: list[int] | None = None  # [K, N] for `--shard K/N`: shards share a fingerprint, so this tells them apart
    rejects_file: str | None = None  # the rejects beside the output, relative to its folder (for `apigen merge`)

    @classmethod
    def load(cls, path: str) -> RunState | None:
        try:
            with open(path, "rb") as handle:
                data = orjson.loads(handle.read())
            return cls(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:
            raise ConfigError(
                f"the run state `{path}` is unreadable ({error})", hint="pass `--overwrite` to start the run afresh"
            ) from None

    def save(self, path: str) -> None:
        temporary = path + ".tmp"
        with open(temporary, "wb") as handle:
            handle.write(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


def resume_or_start(
    output: str,
    rejects: str | None,
    digest: str,
    seed: int,
    requests_total: int,
    *,
    overwrite: bool,
    shard: tuple[int, int] | None = None,
) -> RunState:
    """The state to run from: a matching earlier state, or a fresh one (refusing to clobber others' files)."""
    path = state_path(output)
    earlier = None if overwrite else RunState.load(path)
    if earlier is not None:
        if earlier.fingerprint != digest:
            raise ConfigError(
                f"`{output}` holds a run made with other settings or inputs",
                hint="rerun with the same flags and files to resume it, or pass `--overwrite` to start afresh",
            )
        if earlier.shard != (list(shard) if shard else None):
            raise ConfigError(
                f"`{output}` holds {shard_name(earlier.shard)} of this run, not {shard_name(shard)}",
                hint="give each shard its own `--output`, or pass `--overwrite` to start afresh",
            )
        return earlier
    if not overwrite:
        for existing in (output, rejects):
            if existing and os.path.exists(existing) and os.path.getsize(existing) > 0:
                raise ConfigError(
                    f"`{existing}` already exists and no resumable run state is beside it",
                    hint="pass `--overwrite` to replace it, or write to another file",
                )
    return RunState(
        fingerprint=digest,
        seed=seed,
        requests_total=requests_total,
        shard=list(shard) if shard else None,
        rejects_file=os.path.relpath(rejects, os.path.dirname(os.path.abspath(output))) if rejects and rejects != STDIO else None,
    )


def shard_name(shard: Sequence[int] | None) -> str:
    return f"shard {shard[0]}/{shard[1]}" if shard else "the whole run (no shard)"


def checkpoint_at_request_boundaries(
    rows: Iterable[dict[str, Any]],
    state: RunState,
    path: str,
    output: JsonlWriter,
    rejects: JsonlWriter | None,
    before_save: Callable[[RunState], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Pass rows through; at each finished request, flush the files and save the state.

    The row that starts a new request is held back until the checkpoint of the
    previous one is saved, so the saved byte counts never include a later request.
    """
    base_output = state.output_bytes - output.bytes_written
    base_rejects = state.rejects_bytes - (rejects.bytes_written if rejects else 0)
    current: Any = None

    def save() -> None:
        output.flush()
        if rejects is not None:
            rejects.flush()
        state.requests_done += 1
        state.output_bytes = base_output + output.bytes_written
        state.rejects_bytes = base_rejects + (rejects.bytes_written if rejects else 0)
        if before_save is not None:
            before_save(state)
        state.save(path)

    for row in rows:
        request = row.get("request_id")
        if current is not None and request != current:
            save()
        current = request
        yield row
    if current is not None:
        save()
