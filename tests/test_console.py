"""Progress lines: a bar with the total where it is known, percent, rate and time left, fitted to the
terminal's width by dropping fields whole (never a cut number); on stderr, only on a terminal, never
with `-q`."""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from apigen_cli.cli.stages import RowsTaken, rows_in_file
from apigen_cli.console import Field, Messages, StageBars, fit_fields, progress_text
from apigen_cli.llm.chat import LLMProgress

from .llm_server import LLMServer
from .run_helpers import APIGEN, cli_env, run_args
from .scripted_model import pipeline_handler

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal(width: int) -> Messages:
    messages = Messages()
    messages.console = Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)
    return messages


def drawn(messages: Messages) -> list[str]:
    """Every line the live display drew, its control sequences taken out."""
    text = messages.console.file.getvalue()  # type: ignore[attr-defined]
    return [line for line in re.split(r"[\r\n]", _CONTROL.sub("\n", text)) if line.strip()]


def planned_rows(requests: int, pairs: int = 3, first: int = 0) -> Iterator[dict[str, object]]:
    for index in range(first, requests):
        for pair in range(pairs):
            rejected = {"rejected_by": "generate", "reason": "missing_pair"} if pair == 2 and index % 4 == 0 else {}
            yield {"id": f"{index}-{pair}", "request_id": f"gen-7-{index}", **rejected}


def test_without_a_terminal_rows_pass_through_and_nothing_is_shown() -> None:
    messages = Messages()
    messages.console = Console(file=io.StringIO(), force_terminal=False)
    assert list(messages.progress(iter(range(5)), "generate", counters=LLMProgress())) == [0, 1, 2, 3, 4]
    assert messages.console.file.getvalue() == ""  # type: ignore[attr-defined]
    assert list(StageBars(messages, ["generate"], plan=range(9)).observe("generate", iter(range(3)))) == [0, 1, 2]


def test_quiet_shows_nothing_even_on_a_terminal() -> None:
    messages = Messages(quiet=True)
    messages.console = Console(file=io.StringIO(), force_terminal=True)
    assert list(messages.progress(iter(range(3)), "generate", counters=LLMProgress())) == [0, 1, 2]
    with StageBars(messages, ["generate", "format-check"], plan=range(9)) as bars:
        assert list(bars.observe("format-check", bars.observe("generate", iter(range(3))))) == [0, 1, 2]
    assert messages.console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_on_a_wide_terminal_the_line_reads_the_counters_live() -> None:
    messages = terminal(150)
    counters = LLMProgress(in_flight=7, retries=2, cached=3, prompt_tokens=1000, completion_tokens=234)
    assert len(list(messages.progress(planned_rows(4), "generate", counters=counters, plan=range(10)))) == 12
    last = drawn(messages)[-1]
    assert re.match(r"generate  ━+─+   40%  4/10 requests  ", last), last
    assert last.endswith("12 rows  1 rejected  7 in flight  2 retries  3 cached  1,234 tokens")


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_at_any_width_a_line_drops_fields_whole_and_never_cuts_a_number(width: int) -> None:
    messages = terminal(width)
    counters = LLMProgress(in_flight=64, retries=12, cached=345, prompt_tokens=12_345_678, completion_tokens=9_876_543)
    list(messages.progress(planned_rows(300), "semantic-check", counters=counters, plan=range(1000)))
    lines = drawn(messages)
    assert lines
    for line in lines:
        assert len(line) < width, line
        assert "…" not in line
        assert re.search(r"\b\d{1,3}/1,000 requests\b", line), line  # the count stays, whole
        for figure in re.findall(r"[\d,.]+(?= (?:rows|rejected|in flight|tokens|retries|cached)\b)", line):
            assert figure in ("900", "75", "64", "22,222,221", "12", "345") or figure.isdigit(), line
    if width >= 80:
        assert all(re.search(r"[━─]{10,}  +\d+%", line) for line in lines)  # the bar and percent at 80 columns


def test_fields_go_in_rank_order_and_the_label_and_count_stay() -> None:
    fields = [
        Field("exec-check", 0),
        Field("", 3, bar=True),
        Field(" 45%", 1),
        Field("4,500/10,000 rows", 0),
        Field("0:01:12 left", 2),
        Field("312 rows/s", 5),
        Field("40 rejected", 4),
    ]
    assert [field.text for field in fit_fields(fields, 200)] == [
        "exec-check",
        "",
        " 45%",
        "4,500/10,000 rows",
        "0:01:12 left",
        "312 rows/s",
        "40 rejected",
    ]
    assert [field.text for field in fit_fields(fields, 80)] == [
        "exec-check",
        "",
        " 45%",
        "4,500/10,000 rows",
        "0:01:12 left",
        "40 rejected",
    ]
    assert [field.text for field in fit_fields(fields, 70)] == ["exec-check", "", " 45%", "4,500/10,000 rows", "0:01:12 left"]
    assert [field.text for field in fit_fields(fields, 50)] == ["exec-check", " 45%", "4,500/10,000 rows", "0:01:12 left"]
    assert [field.text for field in fit_fields(fields, 10)] == ["exec-check", "4,500/10,000 rows"]  # too narrow: cut nothing
    assert progress_text(fields, 80, 0.45).plain.startswith("exec-check  ━━━━──────   45%  4,500/10,000 rows")


def test_without_a_total_the_line_counts_and_shows_the_time_so_far() -> None:
    messages = terminal(80)
    list(messages.progress(iter([{"id": n} for n in range(500)]), "format-check"))
    last = drawn(messages)[-1]
    assert re.fullmatch(r"format-check  500 rows(  [\d,.]+ rows/s)?  \d:\d\d:\d\d  0 rejected", last.rstrip()), last
    assert "%" not in last and "━" not in last


def test_a_stage_command_counts_the_rows_it_reads_against_the_rows_in_its_file() -> None:
    messages = terminal(80)
    read = RowsTaken()
    rows = read.counting(iter([{"id": n} for n in range(40)]))
    list(messages.progress(rows, "exec-check", total=120, taken=lambda: read.count))
    assert re.search(r"exec-check  ━+─*   33%  40/120 rows", drawn(messages)[-1]), drawn(messages)[-1]


def test_rows_in_file_counts_jsonl_lines_and_knows_when_it_cannot(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "rows.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": 3}')
    (folder / "array.json").write_text('  [{"a": 1},\n{"a": 2}]\n')
    assert rows_in_file(str(folder / "rows.jsonl")) == 3
    assert rows_in_file(str(folder / "array.json")) is None
    assert rows_in_file("-") is None
    assert rows_in_file(str(folder / "missing.jsonl")) is None


def test_a_resumed_run_starts_its_bar_where_it_stopped_without_a_rate_from_before() -> None:
    messages = terminal(100)
    with StageBars(messages, ["generate", "format-check"], plan=range(100, 200)) as bars:
        rows = bars.observe("format-check", bars.observe("generate", planned_rows(160, first=150)))
        first = next(rows)
        assert first["request_id"] == "gen-7-150"
        list(rows)
    lines = drawn(messages)
    assert all(re.search(r"\b(0|5\d|60)/100 requests", line) for line in lines if "requests" in line), lines
    assert any("50/100 requests" in line for line in lines)
    assert not any(re.search(r"\d{3,} requests/s", line) for line in lines), lines  # no burst of 50 requests at once


def on_a_terminal_held(
    server: LLMServer | None,
    command: list[str],
    shown_when: bytes,
    ends_with: bytes,
    columns: int = 80,
    measured: Callable[[str], bool] | None = None,
) -> list[str]:
    """Run ``command`` with its stderr on a pseudo-terminal ``columns`` wide (no COLUMNS: the size is the
    terminal's); once ``server`` holds a request (if there is one) and the terminal shows ``shown_when``,
    let it go on to ``ends_with``. The lines the terminal was given, control sequences taken out; each
    ``measured`` one (by default every one) within the width."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {name: value for name, value in cli_env().items() if name not in ("COLUMNS", "LINES")}
    shown = b""

    def read_until(pattern: bytes, seconds: float = 60.0) -> bool:
        """Read what the terminal shows until ``pattern`` is in it; False if the other end closes or time runs out."""
        nonlocal shown
        deadline = time.monotonic() + seconds
        while not re.search(pattern, shown):
            ready, _, _ = select.select([master], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                return False
            try:
                shown += os.read(master, 65536)
            except OSError:  # the terminal's other end is closed: all is read
                return False
        return True

    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env) as process:
        os.close(slave)
        try:
            assert server is None or server.wait_parked(1)
            assert read_until(shown_when), shown.decode(errors="replace")
            if server is not None:
                server.release()
            read_until(ends_with)
            assert process.wait(timeout=120) == 0
        finally:
            if process.poll() is None:
                process.kill()
            os.close(master)
    lines = [line for line in re.split(r"[\r\n]", _CONTROL.sub("\n", shown.decode())) if line.strip()]
    fitted = [line for line in lines if measured is None or measured(line)]
    assert fitted and max(len(line) for line in fitted) <= columns, [line for line in fitted if len(line) > columns]
    assert not any("…" in line for line in lines)
    return lines


def test_in_a_real_terminal_of_80_columns_every_progress_line_of_run_is_whole(tmp_path: Path) -> None:
    """`apigen run` held mid-run: a line per stage with the bar, the percent and done/planned requests."""
    with LLMServer(handler=pipeline_handler) as server:
        server.hold(after=4)
        out, rejects = tmp_path / "data.jsonl", tmp_path / "rejects.jsonl"
        command = [*APIGEN, *run_args(server=server, count=60, seed=2, concurrency=2, out=out, rejects=rejects)]
        lines = on_a_terminal_held(server, command, rb"/20 requests", rb"run: \d+ verified")
    progress = [line for line in lines if "/20 requests" in line]
    assert progress and all(re.search(r"[━─]{10}  +\d+%  \d+/20 requests", line) for line in progress), progress
    assert {line.split()[0] for line in progress} >= {"generate", "format-check", "exec-check", "semantic-check"}
    table = next(index for index, line in enumerate(lines) if line.startswith("model "))
    assert not any("/20 requests" in line for line in lines[table:])  # the lines are gone before Table 1 is printed


def test_in_a_real_terminal_a_stage_command_counts_the_rows_of_its_file(tmp_path: Path) -> None:
    """`apigen semantic-check FILE` held mid-file: done/total rows of the file, with the judge's live counters."""
    rows = tmp_path / "rows.jsonl"
    made = subprocess.run(
        [*APIGEN, *run_args(count=30, seed=4, out=rows, quiet=True)], env=cli_env(), capture_output=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    total = len(rows.read_text().splitlines())
    with LLMServer(handler=pipeline_handler) as server:
        server.hold(after=3)
        command = [*APIGEN, "semantic-check", str(rows), "--base-url", server.url, "-J", "test-model", "--concurrency", "2"]
        lines = on_a_terminal_held(server, command, rb"/%d rows" % total, rb"semantic-check: \d+ passed")
    progress = [line for line in lines if f"/{total} rows" in line]
    assert progress and all(re.match(rf"semantic-check  [━─]{{10}}  +\d+%  \d+/{total} rows", line) for line in progress)
    assert any("in flight" in line for line in progress), progress
