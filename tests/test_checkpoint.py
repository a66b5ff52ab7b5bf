"""The run state is saved at every finished request, in one of two slots in turn, but forced to disk at most once a second."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import orjson
import pytest

from apigen_cli.checkpoint import RunState, checkpoint_at_request_boundaries, saving
from apigen_cli.errors import ConfigError
from apigen_cli.rows.jsonl import OutputFile
from apigen_cli.rows.state_slots import BLOCK, is_slotted, newest_payload


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
    # the newest slot holds the state's fields, in order, as the earlier asdict-based writer wrote them
    assert newest_payload((tmp_path / "state.json").read_bytes()) == orjson.dumps(asdict(state))
    assert not (tmp_path / "state.json.tmp").exists()


def _torn_at(save: int, part: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``save``-th write in place stops after ``part`` of its bytes, as a kill in the middle of ``pwrite`` leaves it."""
    real_pwrite, writes = os.pwrite, [0]

    def torn(descriptor: int, data: bytes, offset: int) -> int:
        writes[0] += 1
        if writes[0] == save:
            real_pwrite(descriptor, data[: int(len(data) * part)], offset)
            raise KeyboardInterrupt  # the process stops here
        return real_pwrite(descriptor, data, offset)

    monkeypatch.setattr(os, "pwrite", torn)


@pytest.mark.parametrize("part", [0.1, 0.5, 0.99], ids=["in-its-head", "half", "all-but-the-end"])
def test_a_slot_torn_part_way_is_read_as_the_save_before_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: float) -> None:
    path = str(tmp_path / "out.jsonl.apigen-run.json")
    state = RunState("digest", seed=1, requests_total=10)
    state.save(path, anew=True)  # as a run starts: a new file, no write in place
    _torn_at(4, part, monkeypatch)
    with pytest.raises(KeyboardInterrupt), saving(path) as save:
        for done in range(1, 10):  # the fields that change are at both ends of the record
            state.requests_done, state.output_bytes, state.counts = done, 100 * done, {"passed": done}
            save(state, sync=False)
    loaded = RunState.load(path)
    assert loaded is not None and (loaded.requests_done, loaded.output_bytes) == (3, 300)
    monkeypatch.undo()
    state.requests_done = 5  # the next session writes over the torn slot, and is read
    state.save(path, sync=False)
    assert RunState.load(path) == state


def test_a_state_that_outgrows_its_slot_moves_to_a_new_file_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    state = RunState("digest", seed=1, requests_total=10)
    with saving(path) as save:
        save(state, sync=False)
        size = os.path.getsize(path)
        state.settings = {f"setting {n}": "x" * 40 for n in range(400)}  # 20 kB: more than a slot holds
        save(state, sync=False)
        assert os.path.getsize(path) > size
        state.requests_done = 2  # and saves go on in the new file
        save(state, sync=False)
    assert RunState.load(path) == state
    assert not os.path.exists(path + ".tmp")


def test_neither_slot_whole_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl.apigen-run.json"
    RunState("digest", seed=1, requests_total=10).save(str(path))
    raw = bytearray(path.read_bytes())
    raw[-100:] = bytes(100)
    path.write_bytes(bytes(raw[: BLOCK + 40]))  # the header and a cut first slot: no whole state anywhere
    with pytest.raises(ConfigError) as refused:
        RunState.load(str(path))
    assert f"the run state `{path}` is unreadable (neither of its two slots holds a whole state" in str(refused.value)
    assert refused.value.hint is not None and "`--overwrite`" in refused.value.hint


def test_a_state_of_the_earlier_format_loads_and_the_next_save_converts_it(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl.apigen-run.json"
    state = RunState("digest", seed=3, requests_total=5, requests_done=2, output_bytes=120)
    path.write_bytes(orjson.dumps(asdict(state), option=orjson.OPT_INDENT_2))  # as apigen wrote it before the slots
    assert RunState.load(str(path)) == state
    state.requests_done = 3
    state.save(str(path), sync=False)
    assert is_slotted(path.read_bytes()) and RunState.load(str(path)) == state
