"""The run state is replaced at every finished request, but forced to disk at most once a second."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import orjson
import pytest

from apigen_cli.checkpoint import RunState, checkpoint_at_request_boundaries
from apigen_cli.rows.jsonl import OutputFile


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_every_boundary_is_saved_and_fsync_happens_at_most_once_a_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)  # the same module object checkpoint.py calls
    clock = Clock()
    state = RunState("digest", seed=1, requests_total=10)
    path = str(tmp_path / "out.jsonl.apigen-run.json")
    output = OutputFile(str(tmp_path / "out.jsonl"), in_place=True)  # as `run` writes: in place, no rename at the end
    rows = ({"id": f"r{n}", "request_id": f"gen-1-{n}"} for n in range(10))
    seen: list[tuple[int, int]] = []
    for row in checkpoint_at_request_boundaries(rows, state, path, output.writer, None, clock=clock):
        saved = RunState.load(path)
        seen.append((int(row["request_id"].rsplit("-", 1)[1]), saved.requests_done if saved else 0))
        output.writer.write(row)
        clock.now += 0.3  # a request finishes every 0.3 s
    output.close()

    # The state on disk names every request finished before the row that follows it (the contract of resume).
    assert seen == [(n, n) for n in range(10)]
    final = RunState.load(path)
    assert final is not None and final.requests_done == 10
    assert final.output_bytes == (tmp_path / "out.jsonl").stat().st_size
    # Ten saves, 0.3 s apart: forced to disk after 1.2, 2.4 s (the 4th and 8th boundary) and at the last one.
    assert len(synced) == 3


def test_a_state_saved_without_sync_reads_back_the_same(tmp_path: Path) -> None:
    report = {
        "models": {"bench": {"requested": 3, "verified": 1}},
        "reasons": {"exec_check": {"exception": 1}},
        "json_mode_downgrades": [{"model": "bench", "from": "schema", "to": "object"}],
    }
    state = RunState("digest", seed=3, requests_total=5, requests_done=2, output_bytes=120, report=report)
    path = str(tmp_path / "state.json")
    state.save(path, sync=False)
    assert RunState.load(path) == state
    # the file is the state's fields, in order, as the earlier asdict-based writer wrote them
    assert (tmp_path / "state.json").read_bytes() == orjson.dumps(asdict(state), option=orjson.OPT_INDENT_2)
    assert not (tmp_path / "state.json.tmp").exists()
