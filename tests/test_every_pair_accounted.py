"""A model that writes fewer pairs than asked (issue 23): every requested pair is a row, with a name for the gap.

Small models often write 1 pair where 3 were asked for. Those left out are `missing_pair`
rejects, counted in Table 1's `missing` column (not as failed format, with no reason), and
`generated` in stats, report, the HTML page and the card is what the model really wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from .conftest import invoke, read_jsonl
from .llm_server import LLMServer
from .run_helpers import generate_args, run_args
from .scripted_model import one_pair_handler


def test_generate_writes_a_reject_for_each_pair_the_model_left_out_and_warns(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects = tmp_path / "rows.jsonl", tmp_path / "rejects.jsonl"
    with LLMServer(handler=one_pair_handler) as server:
        result = invoke(runner, *generate_args(server=server, count=30, seed=3, out=out, rejects=rejects))
    assert result.exit_code == 0, result.stderr
    rows, missing = read_jsonl(out), read_jsonl(rejects)
    assert len(rows) == 10 and len(missing) == 20
    assert {(row["rejected_by"], row["reason"]) for row in missing} == {("generate", "missing_pair")}
    assert missing[0]["reason_detail"] == "the request asked for 3 pairs and the model wrote 1"
    ids = sorted(row["id"] for row in rows + missing)
    assert ids == sorted(f"gen-3-{request:05d}-{pair}" for request in range(10) for pair in range(3))  # one row a pair
    assert "warning: the model left out 20 pairs of those asked for" in result.stderr
    assert "--pairs-per-prompt" in result.stderr
    assert "generate: 10 rows, 20 rejected (missing_pair 20)" in result.stderr.splitlines()


def test_run_stats_report_and_card_name_the_missing_pairs(runner: CliRunner, tmp_path: Path) -> None:
    out, rejects, report = tmp_path / "data.jsonl", tmp_path / "rejects.jsonl", tmp_path / "report.json"
    with LLMServer(handler=one_pair_handler) as server:
        ran = invoke(runner, *run_args(server=server, count=30, seed=3, out=out, rejects=rejects, report=report))
    assert ran.exit_code == 0, ran.stderr
    total = json.loads(report.read_text())["total"]
    assert total["requested"] == 30 and total["missing_pairs"] == 20
    assert total["failed_format"] + total["failed_execution"] + total["failed_semantic"] + total["verified"] == 10
    assert "top reasons, generate: missing_pair 20" in ran.stderr.splitlines()
    table = ran.stderr.splitlines()
    start = next(index for index, line in enumerate(table) if line.startswith("model "))
    assert [line.split()[0] for line in table[start + 2 : start + 5]] == ["failed", "missing", "failed"]
    assert table[start + 3].split() == ["missing", "20"]

    stats = invoke(runner, "stats", str(out), str(rejects), "--json")
    assert json.loads(stats.stdout)["total"] == total  # the files say what the run said

    card = tmp_path / "card.md"
    figures = invoke(runner, "report", str(out), str(rejects), "--json", "--card", str(card))
    assert figures.exit_code == 0, figures.stderr
    data = json.loads(figures.stdout)
    assert data["funnel"]["test-model"]["requested"] == 30 and data["funnel"]["test-model"]["generated"] == 10
    assert sum(data["styles"]["generated"].values()) == 10
    assert "| missing |" in card.read_text()
