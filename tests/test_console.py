"""The LLM progress bar: live counters on a terminal, nothing otherwise."""

from __future__ import annotations

import io
from collections.abc import Iterator

from rich.console import Console

from apigen_cli.console import Messages
from apigen_cli.llm.chat import LLMProgress


def test_without_a_terminal_rows_pass_through_and_nothing_is_shown() -> None:
    messages = Messages()
    messages.console = Console(file=io.StringIO(), force_terminal=False)
    assert list(messages.llm_progress(iter(range(5)), "generate", LLMProgress())) == [0, 1, 2, 3, 4]
    assert messages.console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_quiet_shows_nothing_even_on_a_terminal() -> None:
    messages = Messages(quiet=True)
    messages.console = Console(file=io.StringIO(), force_terminal=True)
    assert list(messages.llm_progress(iter(range(3)), "generate", LLMProgress())) == [0, 1, 2]
    assert messages.console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_on_a_terminal_the_bar_reads_the_counters_live() -> None:
    messages = Messages()
    messages.console = Console(file=io.StringIO(), force_terminal=True, width=150)
    counters = LLMProgress(in_flight=7, retries=2, cached=3, prompt_tokens=1000, completion_tokens=234)

    def rows() -> Iterator[int]:
        for index in range(3):
            counters.rows_done += 1
            yield index

    assert list(messages.llm_progress(rows(), "semantic-check", counters)) == [0, 1, 2]
    shown = messages.console.file.getvalue()  # type: ignore[attr-defined]
    assert "semantic-check" in shown and "3 rows" in shown
    assert "7 in flight · 2 retries · 3 cached · 1,234 tokens" in shown
