"""Table 1 from files read together in plan order: the same bytes as reading them one after another, flat in memory."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from apigen_cli.config import parse_styles
from apigen_cli.report import PipelineReport, ReportBuilder, report_from_files, report_in_plan_order
from apigen_cli.reporting import figures as report_figures
from apigen_cli.reporting.figures import collect_figures, figures_from_files
from apigen_cli.rows.jsonl import read_rows

from .conftest import invoke, write_jsonl
from .run_helpers import run_args

DEFAULT_STYLES = "simple=0.4,multiple=0.2,parallel=0.2,parallel_multiple=0.2"  # `apigen report --styles` default


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real offline run's dataset and rejects (every stage rejects some rows)."""
    folder = tmp_path_factory.mktemp("run")
    out, rejects = folder / "out.jsonl", folder / "rejects.jsonl"
    result = invoke(CliRunner(), *run_args("-q", count=120, seed=5, out=out, rejects=rejects))
    assert result.exit_code == 0, result.stderr
    return out, rejects


def _rows_of(*paths: Path) -> list[dict[str, Any]]:
    return [row for path in paths for row in read_rows(str(path))]


def _old_stats(*paths: Path) -> bytes:
    """What `stats --json` printed before: Table 1 over the files' rows one after another."""
    return orjson.dumps(PipelineReport.from_rows(_rows_of(*paths)).as_dict()) + b"\n"


def _old_report(*paths: Path) -> bytes:
    """What `report --json` printed before: every figure over the files' rows one after another, in one pass."""
    return orjson.dumps(collect_figures(_rows_of(*paths), requested_styles=parse_styles(DEFAULT_STYLES)).as_dict()) + b"\n"


def _stdout(runner: CliRunner, *args: str, input: str | None = None) -> bytes:
    result = invoke(runner, *args, input=input)
    assert result.exit_code == 0, result.stderr
    return bytes(result.stdout_bytes)


def _shuffled(path: Path, folder: Path, seed: int) -> Path:
    rows = list(read_rows(str(path)))
    random.Random(seed).shuffle(rows)
    return write_jsonl(folder / f"shuffled-{seed}-{path.name}", rows)


def test_a_runs_files_are_in_plan_order_and_read_together(run_files: tuple[Path, Path]) -> None:
    out, rejects = run_files
    assert report_in_plan_order([str(out), str(rejects)]) is not None
    assert {row.get("rejected_by") for row in read_rows(str(rejects))} >= {"format_check", "exec_check", "semantic_check"}


@pytest.mark.parametrize("order", ["dataset first", "rejects first", "dataset only", "rejects only"])
def test_stats_and_report_json_are_the_bytes_of_reading_the_files_in_turn(
    runner: CliRunner, run_files: tuple[Path, Path], order: str
) -> None:
    out, rejects = run_files
    paths = {"dataset first": [out, rejects], "rejects first": [rejects, out], "dataset only": [out], "rejects only": [rejects]}
    given = paths[order]
    names = [str(path) for path in given]
    assert _stdout(runner, "stats", *names, "--json") == _old_stats(*given)
    assert _stdout(runner, "report", *names, "--json", "-q") == _old_report(*given)


def test_shuffled_files_take_the_fallback_and_give_the_same_bytes(
    runner: CliRunner, run_files: tuple[Path, Path], tmp_path: Path
) -> None:
    out, rejects = (_shuffled(path, tmp_path, seed) for path, seed in zip(run_files, (1, 2), strict=True))
    assert report_in_plan_order([str(out), str(rejects)]) is None
    assert report_in_plan_order([str(run_files[0]), str(rejects)]) is None  # one file out of order is enough
    assert _stdout(runner, "stats", str(out), str(rejects), "--json") == _old_stats(out, rejects)
    assert _stdout(runner, "report", str(out), str(rejects), "--json", "-q") == _old_report(out, rejects)


def test_one_stream_on_standard_input_in_any_order(runner: CliRunner, run_files: tuple[Path, Path], tmp_path: Path) -> None:
    out, rejects = run_files
    for pair in ([out, rejects], [_shuffled(rejects, tmp_path, 3), out]):
        text = "".join(path.read_text() for path in pair)
        assert _stdout(runner, "stats", "-", "--json", input=text) == _old_stats(*pair)


def test_the_missing_rejects_warning_still_counts_the_rows(runner: CliRunner, run_files: tuple[Path, Path]) -> None:
    out, rejects = run_files
    alone = invoke(runner, "stats", str(out))
    assert alone.exit_code == 0 and "the files hold no rejected row" in alone.stderr
    both = invoke(runner, "stats", str(out), str(rejects))
    assert both.exit_code == 0 and "no rejected row" not in both.stderr
    seen: dict[str, int] = {}
    report_from_files([str(out), str(rejects)], seen)
    assert seen == {"rows": len(_rows_of(out, rejects)), "rejected": len(_rows_of(rejects)), "api_definitions": 0}


def _request(index: int, pair: int, *, model: str = "m", asked: int = 2, **extra: Any) -> dict[str, Any]:
    row = {"id": f"{index}-{pair}", "request_id": f"gen-1-{index:05d}", "pairs_requested": asked, "model": model}
    return row | {"query": f"q {index} {pair}", "answers": [{"name": "f", "arguments": {}}]} | extra


def test_where_order_shows_the_first_file_decides(runner: CliRunner, tmp_path: Path) -> None:
    """Ties of the top reasons and a request's model and size come out as if the files were read in turn."""
    kept = [_request(0, 0), _request(2, 0), _request(5, 0, model="b", asked=4)]
    first = [  # reasons seen late in plan order but first in file order
        _request(6, 0, rejected_by="exec_check", reason=f"late{n}") for n in range(6)
    ]
    second = [  # the same request as in `kept`, told differently, and reasons early in plan order
        _request(1, 0, rejected_by="exec_check", reason=f"early{n}") for n in range(6)
    ] + [_request(5, 1, model="c", asked=9, rejected_by="semantic_check", reason="x")]
    files = [write_jsonl(tmp_path / name, rows) for name, rows in (("k", kept), ("a", first), ("b", second))]
    assert report_in_plan_order([str(path) for path in files]) is not None
    printed = _stdout(runner, "stats", *map(str, files), "--json")
    assert printed == _old_stats(*files)
    assert list(orjson.loads(printed)["top_reasons"]["exec_check"]) == [f"late{n}" for n in range(5)]


def test_a_reason_in_several_files_counts_where_the_first_file_has_it(runner: CliRunner, tmp_path: Path) -> None:
    def rejected(index: int, reason: str) -> dict[str, Any]:
        return _request(index, 0, rejected_by="format_check", reason=reason)

    one = write_jsonl(tmp_path / "one.jsonl", [rejected(3, "y"), rejected(4, "x")])
    two = write_jsonl(tmp_path / "two.jsonl", [rejected(1, "x"), rejected(2, "y")])
    printed = _stdout(runner, "stats", str(one), str(two), "--json")
    assert printed == _old_stats(one, two)
    assert list(orjson.loads(printed)["top_reasons"]["format_check"]) == ["y", "x"]


def test_a_file_error_is_the_one_reading_in_turn_meets_first(runner: CliRunner, tmp_path: Path) -> None:
    stray = {"name": "f"}  # neither a dataset row nor an API definition
    late = write_jsonl(tmp_path / "late.jsonl", [_request(n, 0) for n in range(5)] + [stray])
    early = write_jsonl(tmp_path / "early.jsonl", [stray])
    result = invoke(runner, "stats", str(late), str(early))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: row 6 of `{late}` is not a dataset row")


def test_settle_below_gives_the_same_table_and_keeps_only_requests_in_flight() -> None:
    rows = [_request(n, pair, asked=3) for n in range(50) for pair in range(n % 3)]
    builder = ReportBuilder(plan_order=True)
    for row in rows:
        builder.add(row)
        builder.settle_below((1, int(row["id"].split("-")[0])))
        assert builder.pending_requests <= 1
    assert builder.build().as_dict() == PipelineReport.from_rows(rows).as_dict()
    with pytest.raises(ValueError, match="plan_order"):
        ReportBuilder().settle_below((1, 0))


def test_memory_of_files_in_plan_order_stays_flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twice as many requests as the smaller case, ten times: what is kept does not grow with them."""

    def peak(requests: int, count: Callable[[list[str]], PipelineReport]) -> int:
        kept = write_jsonl(tmp_path / f"kept{requests}.jsonl", [_request(n, 0) for n in range(requests)])
        rejected = write_jsonl(
            tmp_path / f"rejected{requests}.jsonl",
            [_request(n, 1, rejected_by="exec_check", reason="timeout") for n in range(0, requests, 2)],
        )
        tracemalloc.start()
        report = count([str(kept), str(rejected)])
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert report.total().requested == 2 * requests
        return top

    def figures_table(paths: list[str]) -> PipelineReport:
        return figures_from_files(paths).table

    monkeypatch.setattr(report_figures, "NEAR_LIMIT", 200)  # past the caps of the other figures
    for count in (report_from_files, figures_table):
        small, large = peak(2_000, count), peak(20_000, count)
        assert large < small * 1.5, (count, small, large)
