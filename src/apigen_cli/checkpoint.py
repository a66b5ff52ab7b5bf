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

import contextlib
import functools
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import ConfigError
from .rows.jsonl import STDIO, JsonlWriter
from .rows.side_files import NotRegularFile, read_regular, side_file_error
from .rows.state_slots import SlottedFile, is_slotted, newest_payload

STATE_SUFFIX = ".apigen-run.json"
PLAN_VERSION_KEY = "plan_version"  # among a state's settings: how its requests were drawn (``sampling.PLAN_VERSION``)
SYNC_SECONDS = 1.0  # the most time between two fsyncs of the run state


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
    """What is finished: persisted as JSON beside the output, in one of two slots written in turn (``StateSaver``)."""

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
    settings: dict[str, Any] = field(default_factory=dict)  # the settings that decide the rows, to say which differ
    counts: dict[str, int] = field(default_factory=dict)  # a command's own counts so far (resumable)

    @classmethod
    def load(cls, path: str) -> RunState | None:
        try:
            raw = read_regular(path)  # a FIFO there is an error, never a wait; a link is not followed
            if raw is None:
                return None
            data = orjson.loads(newest_payload(raw) if is_slotted(raw) else raw)  # plain JSON: an earlier apigen's
        except NotRegularFile as error:
            raise side_file_error(
                path, error, "the run state", "remove it, or pass `--overwrite` to start the run afresh"
            ) from None
        except (ValueError, TypeError, OSError) as error:
            raise ConfigError(
                f"the run state `{path}` is unreadable ({error})", hint="pass `--overwrite` to start the run afresh"
            ) from None
        return cls(**checked_state(data, path))

    def save(self, path: str, *, sync: bool = True, anew: bool = False) -> None:
        """Save the state in the file's next slot; ``sync`` also forces it to disk (``fsync``).

        ``anew``: a new file renamed over whatever is there (a fresh run's first state).
        Many saves in a row go through one ``saving(path)`` instead, which keeps the file open.
        """
        with saving(path) as saver:
            saver(self, sync=sync, anew=anew)


class StateSaver:
    """The run state's file kept open across saves: each save is one ``pwrite`` (``rows.state_slots``).

    A kill at any instant leaves the newer whole slot, the state of the last finished save
    or of the one before it; a machine crash can lose what was saved without ``sync``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = SlottedFile(path, path + ".tmp")

    def __call__(self, state: RunState, *, sync: bool = True, anew: bool = False) -> None:
        # orjson writes a dataclass as asdict would (same bytes), without asdict's deep copy of the report
        try:
            self._file.save(orjson.dumps(state), sync=sync, anew=anew)
        except OSError as error:
            named = error.filename if isinstance(error.filename, str) else self.path  # the state or its temporary
            raise side_file_error(named, error, "the run state", "remove it, or pass another `--output`") from None

    def close(self) -> None:
        self._file.close()


@contextlib.contextmanager
def saving(path: str) -> Iterator[StateSaver]:
    """A ``StateSaver`` for the state file at ``path``, closed at the end."""
    saver = StateSaver(path)
    try:
        yield saver
    finally:
        saver.close()


def resume_or_start(
    output: str,
    rejects: str | None,
    digest: str,
    seed: int,
    requests_total: int,
    *,
    overwrite: bool,
    shard: tuple[int, int] | None = None,
    settings: Mapping[str, Any] | None = None,
    seed_given: bool = True,
    first_request: int = 0,
    request_field: str = "request_id",
) -> RunState:
    """The state to run from: a matching earlier state, or a fresh one (refusing to clobber others' files).

    ``settings`` (the values behind ``digest``) are kept in the state, so that a
    rerun with other settings is told which differ. ``seed_given``: ``seed`` is the
    user's (`--seed`), so an earlier run of another seed is refused; otherwise the
    earlier run's seed is the one to resume. ``first_request``: the index of the run's
    first request in the whole plan (a shard's start), which its rows' ids carry;
    ``request_field`` is the field that carries it (``PREFIX-SEED-INDEX``).
    """
    path = state_path(output)
    earlier = None if overwrite else RunState.load(path)
    if earlier is not None and earlier.fingerprint != digest and _wrote_nothing(earlier, output, rejects):
        earlier = None  # a run that failed before its first row holds nothing to resume: it does not lock the output
    if earlier is not None:
        if earlier.fingerprint != digest:
            _refuse_other_plan_version(output, earlier.settings, settings or {})
            raise ConfigError(
                f"`{output}` holds a run made with other {_what_differs(earlier.settings, settings or {})}",
                hint="rerun with the same flags and files to resume it, or pass `--overwrite` to start afresh",
            )
        if earlier.shard != (list(shard) if shard else None):
            raise ConfigError(
                f"`{output}` holds {shard_name(earlier.shard)} of this run, not {shard_name(shard)}",
                hint="give each shard its own `--output`, or pass `--overwrite` to start afresh",
            )
        if seed_given and earlier.seed != seed:  # the fingerprint holds `--seed`: the state's own seed was edited
            raise ConfigError(
                f"the run state `{path}` has seed {earlier.seed}, but `--seed` is {seed} (the seed the run was made with)",
                hint=f"pass `--overwrite` to start afresh with seed {seed} (the state was edited, or belongs to another run)",
            )
        check_against_files(
            earlier, path, output, rejects, requests_total, first_request=first_request, request_field=request_field
        )
        return earlier
    if not overwrite:
        for existing in (output, rejects):
            if existing and os.path.exists(existing) and os.path.getsize(existing) > 0:
                raise ConfigError(
                    f"`{existing}` already exists and no resumable run state is beside it",
                    hint="pass `--overwrite` to replace it, or write to another file",
                )
    fresh = RunState(
        fingerprint=digest,
        seed=seed,
        requests_total=requests_total,
        shard=list(shard) if shard else None,
        rejects_file=os.path.relpath(rejects, os.path.dirname(os.path.abspath(output))) if rejects and rejects != STDIO else None,
        settings=dict(settings or {}),
    )
    # Saved before the first row: a kill -9 before the first checkpoint leaves a state to resume from.
    fresh.save(path, anew=True)
    return fresh


# --- issue 12: a state file is checked, not trusted ---------------------------------------

_OVERWRITE_HINT = "pass `--overwrite` to start the run afresh (the state was edited, or belongs to other files)"
_STATE_FIELDS: dict[str, tuple[type, ...]] = {
    "fingerprint": (str,),
    "seed": (int,),
    "requests_total": (int,),
    "requests_done": (int,),
    "output_bytes": (int,),
    "rejects_bytes": (int,),
    "complete": (bool,),
    "elapsed_seconds": (int, float),
    "usage": (dict,),
    "report": (dict,),
    "shard": (list, type(None)),
    "rejects_file": (str, type(None)),
    "settings": (dict,),
    "counts": (dict,),
}
_REQUIRED = ("fingerprint", "seed", "requests_total")


def checked_state(data: object, path: str) -> dict[str, Any]:
    """The fields of a state file, each of the right type and range; ``ConfigError`` naming the name otherwise."""

    def wrong(name: str, why: str) -> ConfigError:
        return ConfigError(f"the run state `{path}`: `{name}` {why}", hint=_OVERWRITE_HINT)

    if not isinstance(data, dict):
        raise ConfigError(f"the run state `{path}` is not a JSON object", hint=_OVERWRITE_HINT)
    for name in data:
        if name not in _STATE_FIELDS:
            raise wrong(name, "is not a field of a run state")
    for name in _REQUIRED:
        if name not in data:
            raise wrong(name, "is missing")
    for name, value in data.items():
        kinds = _STATE_FIELDS[name]
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise wrong(name, f"should be {' or '.join(kind.__name__ for kind in kinds)}, not {_shown(value)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0 and name != "seed":
            raise wrong(name, f"should not be negative, got {value}")
    for model, counts in data.get("usage", {}).items():
        if not isinstance(counts, dict) or not all(
            isinstance(count, int) and not isinstance(count, bool) and count >= 0 for count in counts.values()
        ):
            raise wrong("usage", f"should map each model to counts, not {_shown(counts)} for `{model}`")
    for name, count in data.get("counts", {}).items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise wrong("counts", f"should map names to counts, not {_shown(count)} for `{name}`")
    report = data.get("report", {})
    for key, table in report.items():
        if key == "json_mode_downgrades":  # steps down of JSON mode, each a small table of strings
            if not isinstance(table, list) or not all(
                isinstance(step, dict) and all(isinstance(value, str) for value in step.values()) for step in table
            ):
                raise wrong("report", f"`json_mode_downgrades` should be a list of steps, not {_shown(table)}")
            continue
        if key not in ("models", "reasons") or not isinstance(table, dict):
            raise wrong("report", f"has `{key}`: {_shown(table)}")
        for name, counts in table.items():
            if not isinstance(counts, dict) or not all(
                isinstance(count, int) and not isinstance(count, bool) and count >= 0 for count in counts.values()
            ):
                raise wrong("report", f"`{key}.{name}` should hold counts, not {_shown(counts)}")
    return dict(data)


def check_against_files(
    state: RunState,
    path: str,
    output: str,
    rejects: str | None,
    requests_total: int,
    *,
    first_request: int = 0,
    request_field: str = "request_id",
) -> None:
    """Refuse a state that does not describe this run and these files (``ConfigError`` naming the name).

    Every line the resume keeps must be a whole JSON object: a byte count in the middle
    of a line, or damage (NUL bytes) in the part kept, is an error, never a row. The
    request counts are checked against the rows themselves (each carries its request's
    id in ``request_field``, ``gen-SEED-INDEX`` for `apigen run`, ``bp-SEED-INDEX`` for a
    blueprint): a row of another seed, or of a request the state says is not
    done (a resume would make it again: duplicates), is an error; and when the run keeps
    its rejects, where every request leaves a row, so is a finished request with no row
    (a resume would skip it: a lost request). The files are the record; the state only
    says how far they go.
    """

    def wrong(name: str, why: str) -> ConfigError:
        return ConfigError(f"the run state `{path}` does not match: `{name}` {why}", hint=_OVERWRITE_HINT)

    if state.requests_total != requests_total:
        raise wrong("requests_total", f"is {state.requests_total}, but this run makes {requests_total} requests")
    if state.requests_done > state.requests_total:
        raise wrong("requests_done", f"is {state.requests_done}, more than the run's {state.requests_total} requests")
    if state.complete and state.requests_done != state.requests_total:
        raise wrong("complete", f"is true, but only {state.requests_done} of {state.requests_total} requests are done")
    if not (state.requests_done or state.complete):
        for size, name in ((state.output_bytes, "output_bytes"), (state.rejects_bytes, "rejects_bytes")):
            if size:
                raise wrong("requests_done", f"is 0, but `{name}` is {size}: the rows of finished requests would be lost")
        return
    done = range(first_request, first_request + state.requests_done)
    seen: set[int] = set()
    misfits: list[ConfigError] = []  # said after the bytes are known to be whole rows: a cut line comes first

    def check_row(file: str, line: int, seed: int, index: int) -> None:
        seen.add(index)
        if misfits:
            return
        if seed != state.seed:
            misfits.append(wrong("seed", f"is {state.seed}, but line {line} of `{file}` is a row of seed {seed}"))
        elif index not in done:
            misfits.append(
                wrong(
                    "requests_done",
                    f"is {state.requests_done}, but line {line} of `{file}` is a row of request {index}, "
                    "which a resume would make again",
                )
            )

    for file, size, name in ((output, state.output_bytes, "output_bytes"), (rejects, state.rejects_bytes, "rejects_bytes")):
        if file is None or file == STDIO:
            continue
        actual = os.path.getsize(file) if os.path.isfile(file) else 0
        if size > actual:
            raise ConfigError(
                f"`{file}` is missing or shorter than the run state beside it says (`{name}` is {size}, "
                f"the file holds {actual} bytes), so the run cannot be resumed",
                hint="pass `--overwrite` to start the run afresh",
            )
        problem = _kept_part_problem(file, size, functools.partial(check_row, file), request_field)
        if problem:
            raise wrong(name, f"is {size}, but in `{file}` {problem}")
        if misfits:
            raise misfits[0]
    if rejects not in (None, STDIO) and state.rejects_file is not None:  # every finished request left a row
        lost = next((index for index in done if index not in seen), None)
        if lost is not None:
            raise wrong(
                "requests_done",
                f"is {state.requests_done}, but no row of request {lost} is in `{output}` or `{rejects}`, "
                "so a resume would skip it",
            )


_REQUEST_ID = re.compile(r"[a-z]+-(-?\d+)-(\d+)")  # PREFIX-SEED-INDEX: gen- for run's requests, bp- for blueprints


def _kept_part_problem(
    file: str, size: int, check_row: Callable[[int, int, int], None], request_field: str = "request_id"
) -> str | None:
    """Why the first ``size`` bytes of ``file`` are not whole rows of the run, or ``None``.

    Read line by line; each row's line number, seed and request index (from its
    ``request_field``) go to ``check_row``, which notes a row that does not belong.
    """
    if size == 0:
        return None
    done = 0
    with open(file, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if done + len(line) > size:
                return f"that cuts line {number} in the middle"
            done += len(line)
            if not line.endswith(b"\n"):
                return f"line {number} is not ended"
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                return f"line {number} is not a complete JSON object (damaged, NUL bytes?)"
            if not isinstance(value, dict):
                return f"line {number} is not a JSON object"
            found = _REQUEST_ID.fullmatch(str(value.get(request_field)))
            if found is None:
                return f"line {number} has no `{request_field}` of this run (`PREFIX-SEED-INDEX`)"
            check_row(number, int(found[1]), int(found[2]))
            if done == size:
                return None
    return f"the file ends before byte {size}"


def _shown(value: object) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 40 else text[:39] + "…"


# --- end issue 12 ---


def _wrote_nothing(state: RunState, output: str, rejects: str | None) -> bool:
    return state.requests_done == 0 and all(
        not path or not os.path.exists(path) or os.path.getsize(path) == 0 for path in (output, rejects)
    )


def _refuse_other_plan_version(output: str, before: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """A run planned by another apigen cannot be resumed: the same seed draws other requests now."""
    if not before or before.get(PLAN_VERSION_KEY) == now.get(PLAN_VERSION_KEY):
        return
    made_by = f"version {before[PLAN_VERSION_KEY]}" if PLAN_VERSION_KEY in before else "an earlier version"
    raise ConfigError(
        f"`{output}` holds a run planned by {made_by} of apigen's sampler; this one (version "
        f"{now.get(PLAN_VERSION_KEY)}) draws other APIs and examples for the same seed, so the run cannot be resumed",
        hint="pass `--overwrite` to start afresh, or finish the run with the apigen that began it",
    )


def _what_differs(before: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """``settings: `count` (was 100, now 12), ...``, or the inputs when every setting is the same."""
    if not before:
        return "settings or inputs"
    names = sorted(name for name in set(before) | set(now) if before.get(name) != now.get(name))
    if not names:
        return "inputs (the API library, `--examples`, `--functions` or `--prompts` changed since)"
    shown = ", ".join(f"`{name}` (was {_shown(before.get(name))}, now {_shown(now.get(name))})" for name in names[:6])
    return "settings: " + shown + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def shard_name(shard: Sequence[int] | None) -> str:
    return f"shard {shard[0]}/{shard[1]}" if shard else "the whole run (no shard)"


def checkpoint_at_request_boundaries(
    rows: Iterable[dict[str, Any]],
    state: RunState,
    path: str,
    output: JsonlWriter,
    rejects: JsonlWriter | None,
    before_save: Callable[[RunState], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    request_of: Callable[[dict[str, Any]], object] = lambda row: row.get("request_id"),
) -> Iterator[dict[str, Any]]:
    """Pass rows through; at each finished request, flush the files and save the state.

    ``request_of`` names a row's request (``request_id``; a blueprint is its own request).

    The row that starts a new request is held back until the checkpoint of the
    previous one is saved, so the saved byte counts never include a later request.
    The state is saved at every boundary (one ``pwrite`` into the file's next slot, see
    ``StateSaver``) but forced to disk (``fsync``, several milliseconds) at most every
    ``SYNC_SECONDS``: at one pair per request an fsync per request was most of a run's
    time (benchmarks/pipeline.py). A machine crash can then lose the last second of
    checkpoints, which a resume redoes.
    """
    base_output = state.output_bytes - output.bytes_written
    base_rejects = state.rejects_bytes - (rejects.bytes_written if rejects else 0)
    current: Any = None
    last_sync = clock()

    def save() -> None:
        output.flush()
        if rejects is not None:
            rejects.flush()
        state.requests_done += 1
        state.output_bytes = base_output + output.bytes_written
        state.rejects_bytes = base_rejects + (rejects.bytes_written if rejects else 0)
        if before_save is not None:
            before_save(state)
        nonlocal last_sync
        now = clock()
        sync = now - last_sync >= SYNC_SECONDS
        if sync:
            last_sync = now
        saver(state, sync=sync)

    with saving(path) as saver:
        for row in rows:
            request = request_of(row)
            if current is not None and request != current:
                save()
            current = request
            yield row
        if current is not None:
            last_sync = float("-inf")  # the last checkpoint always goes to disk
            save()
