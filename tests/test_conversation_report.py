"""APIGen-MT's table: `apigen stats` and `apigen report` on simulate's files (and blueprint's).

The real CLI on the files real offline runs of `apigen blueprint` and `apigen simulate` wrote; every
figure is checked against the rows themselves, counted here another way.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.conversations.conversation_report import conversation_report

from .conftest import PROJECT, invoke, read_jsonl, write_jsonl
from .doc_pages import run_section_example
from .test_cli_report import CHROMIUM, _png_pixels, _render

STORE = PROJECT / "sample_data" / "store"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A blueprint run with revisions, then simulate on its kept blueprints: the four files of the guide's example."""
    folder = tmp_path_factory.mktemp("mt")
    runner = CliRunner()
    tools = folder / "store_tools.jsonl"
    assert invoke(runner, "library", "from-python", str(STORE), "--class", "OnlineStore", "-o", str(tools), "-q").exit_code == 0
    made = invoke(
        runner,
        "blueprint", str(tools), "--functions", str(STORE), "--initial-state", str(STORE / "initial_state.json"),
        "--policy-checks", str(STORE / "policy_checks.py"), "-m", "offline", "-J", "offline", "-n", "12", "--seed", "23",
        "-O", "offline_error_rate=0.3", "--max-revisions", "2", "--negative-share", "0.2",
        "-o", str(folder / "bp.jsonl"), "--rejects", str(folder / "bp_rejected.jsonl"), "-q",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    simulated = invoke(
        runner,
        "simulate", str(folder / "bp.jsonl"), "--functions", str(STORE), "--policy", str(STORE / "policy.md"),
        "-m", "offline", "--seed", "4", "-O", "offline_error_rate=0.5",
        "-o", str(folder / "conv.jsonl"), "--rejects", str(folder / "failed.jsonl"), "-q",
    )  # fmt: skip
    assert simulated.exit_code == 0, simulated.stderr
    return folder


def files(run: Path, *names: str) -> list[str]:
    return [str(run / name) for name in names]


def stats_json(run: Path, *names: str) -> dict[str, Any]:
    result = invoke(CliRunner(), "stats", *files(run, *names), "--json")
    assert result.exit_code == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def test_stats_on_simulate_files_give_apigen_mt_s_table_counted_from_the_rows(run: Path) -> None:
    kept, failed = read_jsonl(run / "conv.jsonl"), read_jsonl(run / "failed.jsonl")
    attempts = kept + failed
    assert kept and failed  # the run has both, so each figure means something
    figures = stats_json(run, "conv.jsonl", "failed.jsonl")
    assert figures["blueprints"] is None  # blueprint's files not given: its funnel is not guessed
    assert figures["conversations"] == {
        "attempted": len(attempts),
        "verified": len(kept),
        "pass_rate": round(len(kept) / len(attempts), 4),
        "attempts_per_verified": round(len(attempts) / len(kept), 4),
    }
    assert figures["blueprints_simulated"] == len({row["blueprint_id"] for row in attempts})
    assert figures["blueprints_with_a_verified_conversation"] == len({row["blueprint_id"] for row in kept})
    for name in ("turns", "tool_calls"):
        for series, rows in (("verified", kept), ("attempted", attempts)):
            values = [row["simulation"][name] for row in rows]
            assert figures[name][series] == {"mean": round(mean(values), 2), "min": min(values), "max": max(values)}
    reasons: dict[str, dict[str, int]] = {}
    for row in failed:
        stage = reasons.setdefault(row["rejected_by"], {})
        stage[row["reason"]] = stage.get(row["reason"], 0) + 1
    assert figures["reasons"] == reasons
    flagged = [row for row in attempts if row["simulation"]["user_errors"]]
    assert figures["user_simulator"]["flagged"] == len(flagged) and figures["user_simulator"]["rate"] == round(
        len(flagged) / len(attempts), 4
    )
    assert sum(figures["ended_by"].values()) == len(attempts)
    assert all(row["simulation"]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0} for row in attempts)
    assert figures["tokens_per_verified"] == 0.0  # the offline backend counts no tokens
    assert figures["rows"]["read"] == len(attempts)

    text = invoke(CliRunner(), "stats", *files(run, "conv.jsonl", "failed.jsonl"))
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["blueprints", "simulated", f"{figures['blueprints_simulated']};", "with", "a", "verified", "conversation", str(figures["blueprints_with_a_verified_conversation"])]  # fmt: skip
    assert any(
        line.startswith("tokens per verified conversation") and "0: no request cost a token (the offline backend" in line
        for line in lines
    )
    assert "reasons per stage:" in lines


def test_with_blueprint_s_files_the_table_starts_from_the_blueprints_requested(run: Path) -> None:
    blueprints, rejected = read_jsonl(run / "bp.jsonl"), read_jsonl(run / "bp_rejected.jsonl")
    figures = stats_json(run, "bp.jsonl", "bp_rejected.jsonl", "conv.jsonl", "failed.jsonl")  # any order
    assert figures == stats_json(run, "conv.jsonl", "failed.jsonl", "bp.jsonl", "bp_rejected.jsonl")
    assert figures["blueprints"]["requested"] == 12 == len(blueprints) + len(rejected)
    assert figures["blueprints"]["verified"] == len(blueprints)
    firsts = sum(1 for row in blueprints if not row.get("blueprint_attempts"))
    assert figures["blueprints"]["first_attempt"]["verified"] == firsts < len(blueprints)  # revisions made a difference
    rows = len(blueprints) + len(rejected) + len(read_jsonl(run / "conv.jsonl")) + len(read_jsonl(run / "failed.jsonl"))
    assert figures["rows"]["read"] == rows  # every row counted, once
    text = invoke(CliRunner(), "stats", *files(run, "conv.jsonl", "failed.jsonl", "bp.jsonl", "bp_rejected.jsonl"))
    assert text.stdout.splitlines()[0].split() == ["blueprints", "requested", "12"]
    assert f"{firsts} at the first attempt" in text.stdout and f"{len(blueprints)} after revisions" in text.stdout
    stages = text.stdout.split("reasons per stage:\n", 1)[1].splitlines()
    assert any(line.startswith("  blueprint ") for line in stages)
    assert any(line.startswith("  trajectory_check: ") for line in stages)


def test_blueprints_simulate_passed_on_or_could_not_act_out_are_counted_once(run: Path, tmp_path: Path) -> None:
    [rejected_before, *_] = read_jsonl(run / "bp_rejected.jsonl")
    good = read_jsonl(run / "bp.jsonl")[0]
    broken = {key: value for key, value in good.items() if key != "instruction"} | {"id": "no-instruction"}
    simulated = invoke(
        CliRunner(),
        "simulate", str(write_jsonl(tmp_path / "in.jsonl", [good, broken, rejected_before])), "--functions", str(STORE),
        "-m", "offline", "--seed", "1", "-O", "offline_error_rate=0",
        "-o", str(tmp_path / "conv.jsonl"), "--rejects", str(tmp_path / "failed.jsonl"), "-q",
    )  # fmt: skip
    assert simulated.exit_code == 0, simulated.stderr
    alone = stats_json(tmp_path, "conv.jsonl", "failed.jsonl")
    assert alone["not_acted_out"] == {"no_instruction": 1} and alone["rejected_before_simulate"] == 1
    assert alone["rows"]["read"] == 3  # one verified attempt, the unreadable blueprint, the one passed on
    (tmp_path / "bp_rejected.jsonl").write_text((run / "bp_rejected.jsonl").read_text())
    (tmp_path / "bp.jsonl").write_text((run / "bp.jsonl").read_text())
    both = stats_json(tmp_path, "conv.jsonl", "failed.jsonl", "bp.jsonl", "bp_rejected.jsonl")
    assert both["blueprints"]["requested"] == 12  # the blueprint passed on is in blueprint's rejects too: counted once
    assert both["rows"]["counted_once"] == 1
    assert both["rows"]["read"] == 3 + 12


def test_tokens_per_verified_conversation_when_the_rows_record_usage(run: Path, tmp_path: Path) -> None:
    kept, failed = read_jsonl(run / "conv.jsonl"), read_jsonl(run / "failed.jsonl")
    for number, row in enumerate(kept + failed):
        row["simulation"]["usage"] = {"prompt_tokens": 1000 + number, "completion_tokens": 100}
    write_jsonl(tmp_path / "conv.jsonl", kept)
    write_jsonl(tmp_path / "failed.jsonl", failed)
    figures = stats_json(tmp_path, "conv.jsonl", "failed.jsonl")
    spent = sum(1100 + number for number in range(len(kept) + len(failed)))
    assert figures["tokens_per_verified"] == round(spent / len(kept), 1)  # failed attempts' tokens included


def test_rows_without_usage_say_the_tokens_are_not_recorded(run: Path, tmp_path: Path) -> None:
    """Rows of an older simulate (no `simulation.usage`): no figure is made up for them."""
    kept, failed = read_jsonl(run / "conv.jsonl"), read_jsonl(run / "failed.jsonl")
    for row in kept + failed[:1]:
        del row["simulation"]["usage"]
    write_jsonl(tmp_path / "conv.jsonl", kept)
    write_jsonl(tmp_path / "failed.jsonl", failed)
    assert stats_json(tmp_path, "conv.jsonl", "failed.jsonl")["tokens_per_verified"] is None
    text = invoke(CliRunner(), "stats", *files(tmp_path, "conv.jsonl", "failed.jsonl"))
    assert any(
        line.startswith("tokens per verified conversation") and "not recorded in the rows" in line
        for line in text.stdout.splitlines()
    )


def test_what_cannot_be_counted_is_refused(run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    twice = invoke(runner, "stats", *files(run, "conv.jsonl", "failed.jsonl", "conv.jsonl"))
    assert twice.exit_code == 2
    assert twice.stderr.startswith(f"error: `{run / 'conv.jsonl'}` is given twice: its rows would be counted twice")
    stranger = write_jsonl(tmp_path / "other.jsonl", [{"query": "q", "answers": []}])
    mixed = invoke(runner, "stats", *files(run, "conv.jsonl"), str(stranger))
    assert mixed.exit_code == 2
    assert mixed.stderr.startswith(f"error: row 1 of `{stranger}` is neither a simulated conversation")
    kept = read_jsonl(run / "conv.jsonl")
    for field, value, said in (
        ("turns", "5", "has a `simulation.turns` that is not a whole number of at least 0: 5"),
        ("tool_calls", -1, "has a `simulation.tool_calls` that is not a whole number of at least 0: -1"),
        ("user_errors", "none", "has a `simulation.user_errors` that is not a list"),
    ):
        bad = [kept[0], dict(kept[1], simulation=dict(kept[1]["simulation"], **{field: value}))]
        broken = invoke(runner, "stats", str(write_jsonl(tmp_path / f"bad-{field}.jsonl", bad)))
        assert broken.exit_code == 2
        assert broken.stderr.startswith(f"error: row 2 of `{tmp_path / f'bad-{field}.jsonl'}` {said}"), broken.stderr
    orphan = write_jsonl(tmp_path / "orphan.jsonl", [{k: v for k, v in kept[0].items() if k != "blueprint_id"}])
    assert "is a simulated conversation without the `blueprint_id`" in invoke(runner, "stats", str(orphan)).stderr
    assert "hint: give simulate's output and rejects" in mixed.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    nothing = invoke(runner, "stats", str(empty), str(empty.with_name("empty2.jsonl")))
    assert nothing.exit_code == 2 and "error:" in nothing.stderr and "Traceback" not in nothing.stderr


def test_report_writes_the_table_as_json_a_page_and_a_card(run: Path, tmp_path: Path) -> None:
    names = ("conv.jsonl", "failed.jsonl", "bp.jsonl", "bp_rejected.jsonl")
    page, card = tmp_path / "report.html", tmp_path / "README.md"
    result = invoke(CliRunner(), "report", *files(run, *names), "--html", str(page), "--card", str(card), "--json")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures == stats_json(run, *names)
    verified = figures["conversations"]["verified"]
    html, text = page.read_text(), card.read_text()
    assert f"{verified} verified conversations of {figures['conversations']['attempted']} attempted" in html
    for chart in ("size", "ended-by", "reasons-trajectory_check", "user-errors"):
        assert f'data-chart="{chart}"' in html
    assert f"| conversations verified | {verified} (" in text and "- multi-turn" in text
    assert "conv.jsonl" in text.split("---", 2)[1]  # the card's data files name the conversations
    assert f"report: {figures['rows']['read']} rows read, {verified} conversations verified" in result.stderr


def test_the_table_is_what_the_library_counts_row_by_row(run: Path) -> None:
    """The multi-turn run's end calls this: rows fed one at a time as they are written, then its lines."""
    rows = read_jsonl(run / "conv.jsonl") + read_jsonl(run / "failed.jsonl")
    text = invoke(CliRunner(), "stats", *files(run, "conv.jsonl", "failed.jsonl"))
    assert conversation_report(rows).lines() == text.stdout.splitlines()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium; .ci/run installs it)")
def test_the_page_renders_in_a_real_browser_without_console_errors(run: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    names = ("conv.jsonl", "failed.jsonl", "bp.jsonl", "bp_rejected.jsonl")
    result = invoke(CliRunner(), "report", *files(run, *names), "--html", str(page))
    assert result.exit_code == 0, result.stderr
    shot = tmp_path / "report.png"
    assert _render(page, shot) == []
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (900, 1400) and len(set(pixels)) > 50  # a table and charts, not a blank page


def test_the_guide_s_report_example_runs_as_written_and_prints_what_the_page_shows(tmp_path: Path) -> None:
    heading = "**The report.** `apigen stats` and `apigen report` (`--json`, `--html`, `--card`) read\nsimulate's"
    shown, _said, printed = run_section_example(heading, tmp_path)
    assert printed == shown
    assert (tmp_path / "report.html").is_file() and (tmp_path / "card.md").is_file()


def test_without_simulate_s_rejects_the_missing_attempts_are_said(run: Path) -> None:
    kept = read_jsonl(run / "conv.jsonl")
    skipped = sum(row["attempt"] - 1 for row in kept)
    assert skipped  # some blueprint took more than one attempt
    for command in (["stats"], ["report", "--json"]):
        alone = invoke(CliRunner(), *command, str(run / "conv.jsonl"))
        assert alone.exit_code == 0, alone.stderr
        assert f"skip {skipped} attempt" in alone.stderr and "give simulate's rejects file too" in alone.stderr
    whole = invoke(CliRunner(), "stats", *files(run, "conv.jsonl", "failed.jsonl"))
    assert "skip" not in whole.stderr


def test_conversations_piped_into_stats_are_refused_with_what_to_do(run: Path) -> None:
    for name in ("conv.jsonl", "failed.jsonl"):  # kept or rejected, a pipe cannot tell them from a single-turn run's rows
        result = invoke(CliRunner(), "stats", "-", input=(run / name).read_text())
        assert result.exit_code == 2
        assert result.stderr.startswith("error: row 1 of standard input is a simulated conversation (`apigen simulate` wrote it)")
        assert "hint: name the simulate run's files" in result.stderr


def test_report_reads_past_a_bad_line_only_when_told_and_counts_it(run: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "conv.jsonl"
    damaged.write_text((run / "conv.jsonl").read_text() + '{"id": "cut off\n')
    failed = str(run / "failed.jsonl")
    stopped = invoke(CliRunner(), "report", str(damaged), failed, "--json")
    assert stopped.exit_code == 2 and stopped.stderr.startswith("error: line ")
    assert f"of `{damaged}` is not valid JSON" in stopped.stderr
    result = invoke(CliRunner(), "report", str(damaged), failed, "--json", "--skip-bad-lines")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["rows"]["unreadable_lines"] == 1
    assert figures["rows"]["read"] == len(read_jsonl(run / "conv.jsonl")) + len(read_jsonl(run / "failed.jsonl")) + 1


HOSTILE = [
    '<script>console.log("INJECTED script")</script>',
    '"><img src=x onerror="console.log(\'INJECTED img\')">',
    "</td></tr></table><svg onload=\"console.log('INJECTED svg')\">",
]


def test_markup_in_the_rows_reaches_the_page_and_card_as_text(run: Path, tmp_path: Path) -> None:
    """Codes come from the rows, which anyone may have written: on the page they are text, never markup that runs."""
    failed = read_jsonl(run / "failed.jsonl")
    for number, row in enumerate(failed):
        hostile = HOSTILE[number % len(HOSTILE)]
        row["reason"] = hostile
        row["rejected_by"] = HOSTILE[(number + 1) % len(HOSTILE)]
        if isinstance(row.get("simulation"), dict):
            row["simulation"]["ended_by"] = hostile
            row["simulation"]["user_errors"] = [HOSTILE[(number + 2) % len(HOSTILE)]]
    rejects = write_jsonl(tmp_path / "failed.jsonl", failed)
    page, card = tmp_path / "report.html", tmp_path / "card.md"
    result = invoke(CliRunner(), "report", str(run / "conv.jsonl"), str(rejects), "--html", str(page), "--card", str(card))
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    for hostile in HOSTILE:
        assert hostile not in html and hostile.replace('"', "&quot;") not in html
    assert "&lt;script&gt;" in html  # there, as text
    assert [line for line in _render(page, tmp_path / "report.png") if "INJECTED" in line] == []
    assert "<script" not in card.read_text() and "<img" not in card.read_text() and "<svg" not in card.read_text()
