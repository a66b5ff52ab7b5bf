"""Table 1 from rows: every requested row lands in exactly one column."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apigen_cli.report import TABLE_HEADERS, ModelTable, PipelineReport

from .conftest import PROJECT, invoke, write_jsonl


def _rows() -> list[dict[str, object]]:
    def r(request: str, k: int, model: str, stage: str | None = None, reason: str = "x", n: int = 0) -> dict[str, object]:
        row: dict[str, object] = {"id": f"{request}-{n}", "request_id": request, "pairs_requested": k, "model": model}
        row |= {"query": f"query {request}-{n}", "answers": [{"name": "f", "arguments": {}}]}
        return row | ({"rejected_by": stage, "reason": reason} if stage else {})

    return [
        # request a (m1, 3 asked): 2 verified, 1 failed execution
        r("a", 3, "m1", n=0),
        r("a", 3, "m1", n=1),
        r("a", 3, "m1", "exec_check", "timeout", n=2),
        # request b (m1, 3 asked): unparseable text: one row, rejected by format-check
        r("b", 3, "m1", "format_check", "unparseable_output"),
        # request c (m2, 3 asked): the model wrote only 2 pairs, one judged wrong; the third is a `missing_pair` reject
        r("c", 3, "m2", n=0),
        r("c", 3, "m2", "semantic_check", "semantic_mismatch", n=1),
        r("c", 3, "m2", "generate", "missing_pair", n=2),
        # request d (m2, 2 asked): the request failed for good
        {"id": "d", "request_id": "d", "pairs_requested": 2, "model": "m2", "rejected_by": "generate", "reason": "llm_error"},
        # a row from elsewhere (no generation metadata), rejected at the format check
        {"id": "z", "rejected_by": "format_check", "reason": "wrong_type"},
    ]


def test_table_one_accounts_for_every_requested_row() -> None:
    report = PipelineReport.from_rows(_rows())
    m1, m2 = report.models["m1"].as_dict(), report.models["m2"].as_dict()
    assert m1 == {
        "requested": 6,
        "failed_generation": 0,
        "missing_pairs": 0,
        "failed_format": 3,
        "failed_execution": 1,
        "failed_semantic": 0,
        "duplicates": 0,
        "verified": 2,
        "pass_rate": 0.3333,
    }
    assert m2 == {
        "requested": 5,
        "failed_generation": 2,
        "missing_pairs": 1,
        "failed_format": 0,
        "failed_execution": 0,
        "failed_semantic": 1,
        "duplicates": 0,
        "verified": 1,
        "pass_rate": 0.2,
    }
    total = report.total()
    assert total.requested == 12
    assert (
        sum(
            getattr(total, c)
            for c in ("failed_generation", "missing_pairs", "failed_format", "failed_execution", "failed_semantic", "verified")
        )
        == 12
    )
    assert report.reasons["format_check"] == {"unparseable_output": 1, "wrong_type": 1}
    assert report.reasons["generate"] == {"llm_error": 1, "missing_pair": 1}


def test_files_written_before_missing_pair_rows_count_the_gap_as_missing() -> None:
    """Older files have no `missing_pair` rows: the gap is still missing, not failed format; an unreadable reply is format."""
    rows = [row for row in _rows() if row.get("reason") != "missing_pair"]
    m1, m2 = PipelineReport.from_rows(rows).models["m1"], PipelineReport.from_rows(rows).models["m2"]
    assert (m2.missing_pairs, m2.failed_format, m2.requested) == (1, 0, 5)
    assert (m1.missing_pairs, m1.failed_format) == (0, 3)  # request b's reply held no pair: all 3 failed format


def test_stats_command_reads_output_and_rejects(runner: CliRunner, tmp_path: Path) -> None:
    rows = _rows()
    kept = write_jsonl(tmp_path / "out.jsonl", [row for row in rows if "rejected_by" not in row])
    rejects = write_jsonl(tmp_path / "rej.jsonl", [row for row in rows if "rejected_by" in row])
    result = invoke(runner, "stats", str(kept), str(rejects), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total"]["requested"] == 12 and data["total"]["verified"] == 3
    text = invoke(runner, "stats", str(kept), str(rejects)).stdout
    lines = text.splitlines()
    assert lines[0].split() == ["model", "(not", "generated", "here)", "m1", "m2", "total"]
    assert [line.split("  ")[0] for line in lines[1:10]] == list(TABLE_HEADERS[1:])
    assert lines[9].split()[-3:] == ["33.33%", "20.00%", "25.00%"]  # the pass rates of m1, m2 and the total


def test_json_mode_downgrades_are_reported() -> None:
    from apigen_cli.report import PipelineReport

    report = PipelineReport()
    assert report.as_dict()["json_mode_downgrades"] == []
    step = {"endpoint": "http://h/v1", "model": "m", "from": "schema", "to": "object", "reason": "500: response_format"}
    report.json_mode_downgrades.append(step)
    assert report.as_dict()["json_mode_downgrades"] == [step]
    assert "json mode, m: schema -> object (the endpoint refused it: 500: response_format)" in report.lines()


@pytest.mark.parametrize("command", [["stats"], ["report", "--json"]])
def test_a_file_without_dataset_rows_is_an_error_not_a_pass_rate_of_100(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    apis = PROJECT / "sample_data" / "apis.jsonl"
    result = invoke(runner, *command, str(apis))
    assert result.exit_code == 2 and result.stdout == ""
    count = len(apis.read_text().splitlines())
    assert (
        result.stderr.splitlines()[0] == f"error: `{apis}` is an API library, not a dataset: its {count} rows are API definitions"
    )


@pytest.mark.parametrize("command", [["stats"], ["report", "--json"]])
def test_empty_files_and_a_file_given_twice_are_errors(runner: CliRunner, tmp_path: Path, command: list[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    nothing = invoke(runner, *command, str(empty))
    assert nothing.exit_code == 2 and nothing.stdout == ""
    assert nothing.stderr.splitlines()[0] == f"error: `{empty}` holds no rows"
    rows = write_jsonl(tmp_path / "rows.jsonl", _rows())
    again = f"{tmp_path}/./rows.jsonl"
    twice = invoke(runner, *command, str(rows), again)
    assert twice.exit_code == 2 and twice.stdout == ""
    assert twice.stderr.splitlines()[0] == f"error: `{rows}` and `{again}` name the same file: its rows would be counted twice"
    same = invoke(runner, *command, str(rows), str(rows))
    assert same.stderr.splitlines()[0] == f"error: `{rows}` is given twice: its rows would be counted twice"


@pytest.mark.parametrize("command", [["stats", "--json"], ["report", "--json"]])
def test_an_api_library_among_the_rows_is_left_out_with_a_warning(runner: CliRunner, tmp_path: Path, command: list[str]) -> None:
    """`cat out/*.jsonl | apigen stats -` catches the `*.tools.jsonl` that `run --mcp` writes beside its output."""
    library = (PROJECT / "sample_data" / "apis.jsonl").read_text()
    rows = "".join(json.dumps(row) + "\n" for row in _rows())
    alone = invoke(runner, *command, "-", input=rows)
    mixed = invoke(runner, *command, "-", input=rows + library)
    assert mixed.exit_code == 0, mixed.stderr
    assert (
        json.loads(mixed.stdout)["total" if command[0] == "stats" else "table"]
        == json.loads(alone.stdout)["total" if command[0] == "stats" else "table"]
    )
    count = len(library.splitlines())
    assert f"warning: left out {count} API definitions found among the rows" in mixed.stderr


def test_reason_lists_say_how_many_codes_they_leave_out() -> None:
    from collections import Counter

    from apigen_cli.rows.routing import StageSummary

    codes = Counter({f"code_{n}": 10 - n for n in range(7)})
    summary = StageSummary("format-check", passed=3, rejected=sum(codes.values()))
    summary.reasons = Counter({("format_check", code): count for code, count in codes.items()})
    assert summary.line() == "format-check: 3 passed, 49 rejected (code_0 10, code_1 9, code_2 8, code_3 7, code_4 6, +2 more)"
    rows = [{"id": str(n), "rejected_by": "format_check", "reason": code} for code, count in codes.items() for n in range(count)]
    assert PipelineReport.from_rows(rows).lines()[-2:] == [
        "top reasons, format_check: code_0 10, code_1 9, code_2 8, code_3 7, code_4 6,",
        "  +2 more",
    ]


def _figures(line: str) -> list[str]:
    """The figures of a line of Table 1 as text (counts and percentages)."""
    return re.findall(r"(?<!\S)\d+(?:\.\d+%)?(?!\S)", line)


def test_table_one_fits_80_columns_with_every_figure_whole() -> None:
    """The paper's ten columns side by side are over 100 characters wide: the text table gives each model a
    column under its name, in blocks that fit; a figure is never cut, a long note goes on over indented lines."""
    models = {
        "Qwen/Qwen2.5-7B-Instruct": ModelTable(100000, 3, 1200, 12000, 23000, 7000, 100, 56697),
        "meta-llama/Llama-3.3-70B-Instruct-Turbo": ModelTable(5, 0, 0, 0, 0, 0, 0, 5),
        "gpt-4o-mini": ModelTable(1000, 0, 0, 12, 23, 7, 0, 958),
        "an/endpoint/with/a/model/name/that/is/longer/than/any/line/of/eighty/columns/can/hold": ModelTable(
            1, 0, 0, 0, 0, 0, 0, 1
        ),
    }
    report = PipelineReport(models=models, wall_seconds=12.3)
    report.reasons["exec_check"].update({"error_result": 15, "exception": 8, "timeout": 3, "no_implementation": 4, "crashed": 1})
    report.tokens["Qwen/Qwen2.5-7B-Instruct"] = {
        "prompt_tokens": 123456789,
        "completion_tokens": 98765432,
        "requests": 33334,
        "cached": 100,
    }
    lines = report.lines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    table = [line for line in lines if line.startswith(TABLE_HEADERS[1:]) or line.startswith("model")]
    for model, figures in report.shown_rows():
        shown = [number for line in table if not line.startswith("model") for number in _figures(line)]
        for cell in figures.cells():
            assert cell in shown, (model, cell)
    names = "\n".join(line for line in lines if not line.startswith(TABLE_HEADERS[1:]))
    assert "Qwen/Qwen2.5-7B-Instruct" in names and "meta-llama/Llama-3.3-70B-Instruct-Turbo" in names
    # each block: the model names, then a line per column of the paper's table, in its order
    labels = [line.split("  ")[0].strip() for line in lines if line.startswith(TABLE_HEADERS[1:])]
    assert labels == list(TABLE_HEADERS[1:]) * (len(labels) // len(TABLE_HEADERS[1:]))
    assert "top reasons, exec_check: error_result 15, exception 8, no_implementation 4," in lines
    assert "  timeout 3, crashed 1" in lines  # the note's end, indented under it
    assert lines[-2:] == [
        "wall time: 12.3 s (the run from its start to its last row, setup included; a",
        "  resumed run's sessions added up)",
    ]


def test_one_model_reads_as_a_column_under_its_name() -> None:
    report = PipelineReport(models={"offline": ModelTable(120, 0, 0, 12, 23, 7, 0, 78)})
    assert report.lines() == [
        "model            offline",
        "requested            120",
        "failed gen             0",
        "missing                0",
        "failed format         12",
        "failed exec           23",
        "failed semantic        7",
        "dups                   0",
        "verified              78",
        "pass rate         65.00%",
    ]
