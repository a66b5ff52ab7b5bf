"""`apigen report`: the page holds every chart with the right numbers, the card is a Hub card, and a browser renders it."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tracemalloc
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from apigen_cli.reporting import figures as report_figures
from apigen_cli.reporting.figures import collect_figures

from .conftest import PROJECT, invoke, write_jsonl
from .doc_pages import page_with
from .run_helpers import run_args


def _row(
    request: str, pair: int, model: str, style: str, apis: list[str], query: str, calls: list[Any], **extra: Any
) -> dict[str, Any]:
    pairs = 1 if request == "gen-7-00004" else 2
    return {
        "id": f"{request}-{pair}",
        "query": query,
        "answers": [{"name": name, "arguments": arguments} for name, arguments in calls],
        "tools": [{"name": name, "description": name, "parameters": {}} for name in apis],
        "request_id": request,
        "pairs_requested": pairs,
        "query_style": style,
        "category": "math",
        "sampled_apis": apis,
        "model": model,
        "prompt_template": "plain",
        "sample_seed": 1,
    } | extra


def _rejected(stage: str, reason: str) -> dict[str, Any]:
    return {"rejected_by": stage, "reason": reason, "reason_detail": "..."}


def _rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A small run whose figures are worked out by hand in the tests below."""
    verified = [
        _row("gen-7-00000", 0, "m1", "simple", ["add"], "add two and three now", [("add", {"a": 2, "b": 3})]),
        # the same calls and 5 of 6 words: a near duplicate of the row above
        _row("gen-7-00000", 1, "m1", "simple", ["add"], "add two and three now please", [("add", {"a": 2, "b": 3})]),
        _row(
            "gen-7-00001",
            0,
            "m1",
            "parallel",
            ["add"],
            "please add 1 and 2 and then also add 3 and 4 for me",
            [("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})],
        ),
        _row("gen-7-00002", 0, "m2", "multiple", ["add", "broken"], "what is 5 plus 6", [("add", {"a": 5, "b": 6})]),
    ]
    rejects = [
        _row(
            "gen-7-00001",
            1,
            "m1",
            "parallel",
            ["add"],
            "add 9 and 9",
            [("add", {"a": 9, "b": 9})],
            **_rejected("exec_check", "error_result"),
        ),
        _row(
            "gen-7-00002",
            1,
            "m2",
            "multiple",
            ["add", "broken"],
            "break it",
            [("broken", {})],
            **_rejected("exec_check", "exception"),
        ),
        {
            "id": "gen-7-00003",
            "request_id": "gen-7-00003",
            "pairs_requested": 2,
            "query_style": "parallel",
            "sampled_apis": ["broken"],
            "model": "m2",
        }
        | _rejected("generate", "llm_error"),
        _row(
            "gen-7-00004",
            0,
            "m1",
            "simple",
            ["broken"],
            "break it again",
            [("broken", {})],
            **_rejected("exec_check", "exception"),
        ),
    ]
    return verified, rejects


class _Charts(HTMLParser):
    """Reads the page back: each chart's bars, the tables' rows, the stats, the sample rows; and what would load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, list[tuple[str, str, float]]] = {}
        self.never_passed: dict[str, dict[str, str]] = {}
        self.stats: dict[str, str] = {}
        self.summary: dict[str, list[str]] = {}
        self.samples: list[str] = []
        self.scripts = 0
        self.remote: list[str] = []
        self.csp = ""
        self._chart: str | None = None
        self._summary_row: str | None = None
        self._in_cell = self._in_sample = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if key in found and not found[key].startswith("#"):
                self.remote.append(found[key])
        if tag == "meta" and found.get("http-equiv") == "Content-Security-Policy":
            self.csp = found["content"]
        if tag == "svg" and "data-chart" in found:
            self._chart = found["data-chart"]
            self.charts[self._chart] = []
        if tag == "g" and found.get("class") == "bar" and self._chart is not None:
            self.charts[self._chart].append((found["data-label"], found["data-series"], float(found["data-value"])))
        if tag == "tr" and "data-api" in found:
            self.never_passed[found["data-api"]] = found
        if tag == "tr" and "data-model" in found:
            self._summary_row = found["data-model"]
            self.summary[self._summary_row] = []
        self._in_cell = tag == "td" and self._summary_row is not None
        if "data-stat" in found:
            self.stats[found["data-stat"]] = found["data-value"]
        if tag == "pre" and found.get("class") == "sample":
            self._in_sample = True
            self.samples.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._chart = None
        if tag == "tr":
            self._summary_row = None
        if tag == "pre":
            self._in_sample = False

    def handle_data(self, data: str) -> None:
        if self._in_cell and self._summary_row is not None:
            self.summary[self._summary_row].append(data)
        if self._in_sample:
            self.samples[-1] += data


def _write_run(tmp_path: Path) -> tuple[Path, Path]:
    verified, rejects = _rows()
    return write_jsonl(tmp_path / "dataset.jsonl", verified), write_jsonl(tmp_path / "rejects.jsonl", rejects)


def _page(runner: CliRunner, tmp_path: Path, *extra: str) -> tuple[_Charts, str]:
    dataset, rejects = _write_run(tmp_path)
    page = tmp_path / "out" / "report.html"
    styles = "simple=0.5,multiple=0.25,parallel=0.25"
    result = invoke(runner, "report", str(dataset), str(rejects), "--html", str(page), "--styles", styles, *extra)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "report: 8 rows read, 4 verified of 9 requested" in result.stderr
    text = page.read_text()
    parser = _Charts()
    parser.feed(text)
    return parser, text


def test_the_page_holds_every_chart_with_the_numbers_of_the_rows(runner: CliRunner, tmp_path: Path) -> None:
    charts, _ = _page(runner, tmp_path)
    # Table 1 as a funnel: m1 asked 5 rows (2 failed execution), m2 asked 4 (a failed request of 2, 1 failed execution)
    funnel = {(label, series): value for label, series, value in charts.charts["funnel"]}
    stages = ["requested", "generated", "passed format", "passed execution", "passed semantic", "verified (after dedup)"]
    assert [funnel[(stage, "m1")] for stage in stages] == [5, 5, 5, 3, 3, 3]
    assert [funnel[(stage, "m2")] for stage in stages] == [4, 2, 2, 1, 1, 1]
    assert [funnel[(stage, "total")] for stage in stages] == [9, 7, 7, 4, 4, 4]
    assert charts.summary["m1"][1:9] == ["5", "0", "0", "0", "2", "0", "0", "3"] and charts.summary["m2"][-1] == "25.00%"
    assert charts.charts["reasons-exec_check"] == [("exception", "", 2), ("error_result", "", 1)]
    assert charts.charts["reasons-generate"] == [("llm_error", "", 1)]
    assert charts.charts["api-calls"] == [("add", "", 5)]
    assert charts.never_passed["broken"]["data-offered"] == "4"
    assert charts.never_passed["broken"]["data-top-failure"] == "exec_check: exception"
    assert charts.never_passed["broken"]["data-top-count"] == "2"
    styles = {(label, series): value for label, series, value in charts.charts["styles"]}
    assert styles == {  # "generated": the 7 rows the model wrote, not m2's failed request
        ("simple", "requested"): 50.0,
        ("simple", "generated"): 42.86,
        ("simple", "verified"): 50.0,
        ("multiple", "requested"): 25.0,
        ("multiple", "generated"): 28.57,
        ("multiple", "verified"): 25.0,
        ("parallel", "requested"): 25.0,
        ("parallel", "generated"): 28.57,
        ("parallel", "verified"): 25.0,
    }
    assert charts.charts["query-length"] == [("0-4 words", "", 0), ("5-9 words", "", 3), ("10-14 words", "", 1)]
    assert charts.charts["calls-per-row"] == [("1 call", "", 3), ("2 calls", "", 1)]
    assert charts.charts["distinct-values"] == [("add.a", "", 4), ("add.b", "", 4)]
    assert charts.charts["near-duplicates"] == [("unique", "", 3), ("duplicate", "", 0), ("near duplicate", "", 1)]
    assert charts.stats["near-duplicate-rate"] == "0.2500"
    assert len(charts.samples) == 3
    verified_ids = {row["id"] for row in _rows()[0]}
    assert all(json.loads(sample)["id"] in verified_ids for sample in charts.samples)


def test_the_page_opens_offline_and_escapes_what_the_rows_hold(runner: CliRunner, tmp_path: Path) -> None:
    hostile = _row(
        "gen-1-00000", 0, "<b>m</b>", "simple", ["add"], '<script>alert("x")</script> <img src=http://x/y>', [("add", {"a": 1})]
    )
    dataset = write_jsonl(tmp_path / "dataset.jsonl", [hostile])
    page = tmp_path / "report.html"
    assert invoke(runner, "report", str(dataset), "--html", str(page)).exit_code == 0
    text = page.read_text()
    charts = _Charts()
    charts.feed(text)
    assert charts.scripts == 0 and charts.remote == []
    assert "default-src 'none'" in charts.csp
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(" in text and "&lt;b&gt;m&lt;/b&gt;" in text
    assert '"query": "<script>alert(\\"x\\")</script> <img src=http://x/y>"' in charts.samples[0]


def test_the_json_holds_the_same_figures(runner: CliRunner, tmp_path: Path) -> None:
    dataset, rejects = _write_run(tmp_path)
    result = invoke(runner, "report", str(dataset), str(rejects), "--json", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert data["api_calls"] == {"add": 5}
    assert data["never_passed"] == {"broken": {"offered": 4, "top_failure": "exec_check: exception"}}
    assert data["distinct_values"]["add.b"] == {"uses": 5, "distinct": 4, "capped": False}
    assert data["query_length"] == {"mean": 7.5, "median": 5.0, "p90": 14.0}
    assert data["seeds"] == ["7"] and data["models"] == {"m1": 3, "m2": 1}


def test_the_card_is_a_hub_dataset_card(runner: CliRunner, tmp_path: Path) -> None:
    dataset, rejects = _write_run(tmp_path)
    (tmp_path / "run.json").write_text(
        json.dumps(
            {"seed": 7, "tokens": {"m1": {"requests": 3, "prompt_tokens": 120, "completion_tokens": 45}}, "wall_seconds": 1.5}
        )
    )
    card, run_report = tmp_path / "card" / "README.md", tmp_path / "run.json"
    card_flags = ["--card", str(card), "--license", "apache-2.0", "--run-report", str(run_report)]
    result = invoke(runner, "report", str(dataset), str(rejects), *card_flags)
    assert result.exit_code == 0, result.stderr
    text = card.read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["license"] == "apache-2.0"
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "../dataset.jsonl"}]}]
    body = text.split("---\n", 2)[2]
    assert "| m1 | 5 | 0 | 0 | 0 | 2 | 0 | 0 | 3 | 60.00% |" in body
    assert "- seed: 7" in body and "tokens, m1: 120 prompt + 45 completion in 3 requests" in body
    assert "near-duplicate rate: 25.00% of 4 verified rows" in body
    assert "APIs offered but never verified: 1: `broken` (exec_check: exception)" in body
    assert "## Row format" in body and "| `answers` | list |" in body
    sample = body.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(sample)["id"] in {row["id"] for row in _rows()[0]}


def test_size_categories_follow_the_row_count() -> None:
    from apigen_cli.reporting.dataset_card import size_category

    assert [size_category(n) for n in (0, 999, 1000, 9_999, 10_000, 250_000, 3_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "1K<n<10K",
        "10K<n<100K",
        "100K<n<1M",
        "1M<n<10M",
    ]


def test_report_says_what_it_needs(runner: CliRunner, tmp_path: Path) -> None:
    dataset, _ = _write_run(tmp_path)
    result = invoke(runner, "report", str(dataset))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: `apigen report` has nothing to write\n\nhint: pass `--html FILE`, `--card FILE` or `--json`"
    )
    missing = invoke(runner, "report", str(tmp_path / "nope.jsonl"), "--json")
    assert missing.exit_code == 2 and "nope.jsonl` does not exist" in missing.stderr and missing.stdout == ""
    (tmp_path / "run.json").write_text("[1]")
    bad = invoke(runner, "report", str(dataset), "--json", "--run-report", str(tmp_path / "run.json"))
    assert (
        bad.exit_code == 2
        and "holds no JSON object" in bad.stderr
        and "hint: give the file `apigen run --report` wrote" in bad.stderr
    )
    (tmp_path / "folder").mkdir()
    unwritable = invoke(runner, "report", str(dataset), "--html", str(tmp_path / "folder"))
    assert unwritable.exit_code == 2 and "`--html` cannot write" in unwritable.stderr


def test_memory_stays_flat_in_the_number_of_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the caps, more rows cost no more memory: the collector keeps counts, not rows."""
    monkeypatch.setattr(report_figures, "NEAR_LIMIT", 200)
    monkeypatch.setattr(report_figures, "DISTINCT_CAP", 16)

    def rows(count: int) -> Any:
        for n in range(count):  # rows from elsewhere (no request ids), all different
            yield {
                "id": str(n),
                "query": f"convert {n} metres to feet number {n % 97}",
                "answers": [{"name": f"api{n % 50}", "arguments": {"x": n}}],
            }

    def peak(count: int) -> int:
        tracemalloc.start()
        collect_figures(rows(count))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(2_000), peak(20_000)
    assert large < small * 1.3, (small, large)


# --- a real browser ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = b"", 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return width, height, zlib.decompress(chunks)


def _render(page: Path, shot: Path) -> list[str]:
    """Screenshot ``page`` in headless Chromium; return the console messages it logged."""
    home = page.parent / "chromium-home"
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={home}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=900,1400",
            "--virtual-time-budget=3000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium; .ci/run installs it)")
def test_the_page_renders_in_a_real_browser_without_console_errors(runner: CliRunner, tmp_path: Path) -> None:
    # The check can fail: a page that logs an error and loads from the network is caught.
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><meta charset="utf-8"><script>console.error("broken page")</script><p>x</p>')
    assert any("broken page" in line for line in _render(control, tmp_path / "control.png"))

    _page(runner, tmp_path)
    shot = tmp_path / "report.png"
    assert _render(tmp_path / "out" / "report.html", shot) == []
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (900, 1400)
    assert len(set(pixels)) > 50  # charts and text, not a blank page
    keep = os.environ.get("KEEP_REPORT_SCREENSHOT")
    if keep:  # for people: where to look at what the browser drew
        shutil.copy(shot, keep)


def test_the_sample_data_report_renders(runner: CliRunner, tmp_path: Path) -> None:
    """The README's example over the sample data runs, end to end, from the run to the page and card."""
    out = tmp_path / "demo"
    run = invoke(
        runner,
        *run_args(
            count=60, seed=1, out=out / "dataset.jsonl", rejects=out / "rejects.jsonl", report=out / "report.json", quiet=True
        ),
    )
    assert run.exit_code == 0, run.stderr
    result = invoke(
        runner,
        "report",
        str(out / "dataset.jsonl"),
        str(out / "rejects.jsonl"),
        "--html",
        str(out / "report.html"),
        "--card",
        str(out / "README.md"),
        "--run-report",
        str(out / "report.json"),
    )
    assert result.exit_code == 0, result.stderr
    charts = _Charts()
    charts.feed((out / "report.html").read_text())
    report = json.loads((out / "report.json").read_text())
    funnel = {(label, series): value for label, series, value in charts.charts["funnel"]}
    assert funnel[("requested", "offline")] == report["total"]["requested"] == 60
    assert funnel[("verified (after dedup)", "offline")] == report["total"]["verified"]
    assert sum(value for _, _, value in charts.charts["calls-per-row"]) == report["total"]["verified"]
    card = (out / "README.md").read_text()
    assert "configs:" in card
    assert report["judge_models"] == ["offline"] and "- judge models: `offline`" in card  # the run report names the judge
    assert "`apigen export --format xlam|openai|messages|sharegpt`" in card
    sample = json.loads(card.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert all(entry["ok"] is True for entry in sample["execution_result"])  # a verified row's calls all ran
    assert "(the run from its start to its last row, setup included" in card


def test_the_readme_examples_run(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command in the README's `apigen report` example block runs as written (a `| jq` tail is done here)."""
    import shlex

    readme = page_with("### `apigen report`")
    section = readme.split("### `apigen report`", 1)[1].split("\n### ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    (tmp_path / "sample_data").symlink_to(PROJECT / "sample_data")
    monkeypatch.chdir(tmp_path)
    commands = [line for line in block.splitlines() if line.startswith("apigen ")]
    assert len(commands) == 3
    for line in commands:
        command, _, jq = line.partition(" | jq ")
        result = invoke(runner, *shlex.split(command)[1:])
        assert result.exit_code == 0, (line, result.stderr)
        if jq:
            assert jq == ".near_duplicates"
            assert set(json.loads(result.stdout)["near_duplicates"]) == {"checked", "duplicate", "near_duplicate", "rate"}
    assert (tmp_path / "out/report.html").stat().st_size > 0
    assert (
        yaml.safe_load((tmp_path / "out/README.md").read_text().split("---\n")[1])["configs"][0]["data_files"][0]["path"]
        == "dataset.jsonl"
    )
