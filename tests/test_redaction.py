"""Secrets, and every long piece of them, are cut out of what comes back (issue 12's partial echoes)."""

from __future__ import annotations

import pytest

from apigen_cli.redaction import MIN_PIECE, Redactor

KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY} end", "key *** end"),
        (f"Incorrect API key provided: {KEY[:20]}...", "Incorrect API key provided: ***..."),  # cut after 20
        (f"ends in {KEY[-MIN_PIECE:]}", "ends in ***"),  # the tail, just long enough
        (f"ends in {KEY[-(MIN_PIECE - 1) :]}", f"ends in {KEY[-(MIN_PIECE - 1) :]}"),  # one short: ordinary text
        (f"inside x{KEY[7:31]}y", "inside x***y"),  # a piece from the middle, not on a chunk boundary
        (KEY + KEY, "***"),  # two echoes side by side are one mask
        (f"{KEY[:15]} and {KEY[-15:]}", "*** and ***"),
        ("sk-proj- is only the prefix every key has", "sk-proj- is only the prefix every key has"),
    ],
)
def test_the_key_and_its_long_pieces_are_masked(text: str, expected: str) -> None:
    assert Redactor([KEY]).text(text) == expected


def test_bytes_values_and_several_secrets() -> None:
    redactor = Redactor([KEY, "tok-999999999999"])
    assert redactor.data(f'{{"a": "{KEY[3:40]}"}}'.encode()) == b'{"a": "***"}'
    assert redactor.value({f"k{KEY}": ["x tok-999999999999", 3, None]}) == {"k***": ["x ***", 3, None]}


def test_a_short_secret_is_masked_only_whole() -> None:
    redactor = Redactor(["abc123"])
    assert redactor.text("abc123 and abc12") == "*** and abc12"


def test_nothing_to_hide_changes_nothing() -> None:
    assert not Redactor(["", ""]) and Redactor([]).text(KEY) == KEY


def test_a_json_text_that_may_hold_a_piece_is_never_passed_over() -> None:
    """``may_be_in`` spares the walk over a worker's frame: it may say yes wrongly, never no wrongly."""
    import orjson

    redactor = Redactor([KEY, "abc123"])
    for start in range(len(KEY) - MIN_PIECE + 1):
        piece = KEY[start : start + MIN_PIECE]
        assert redactor.may_be_in(orjson.dumps({"result": f"x{piece}y"})), piece
    assert redactor.may_be_in(orjson.dumps(["abc123"]))
    assert not redactor.may_be_in(orjson.dumps({"result": "nothing of them here: abc12"}))
    assert Redactor(['a"quote-in-the-secret']).may_be_in(b"{}")  # JSON escapes it: always looked for
