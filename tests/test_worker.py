"""The worker's pure parts: results as JSON values, truncation, frames."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import io
import uuid
from collections import OrderedDict, deque
from pathlib import PurePosixPath
from typing import Any

import pytest

from apigen_cli.execution.worker import decode_payload, encode_frame, read_frame, shorten, take_frame, to_json


class Size(enum.IntEnum):
    LARGE = 3


@dataclasses.dataclass
class Inner:
    when: datetime.date


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    tags: tuple[str, ...]


class WithToList:
    def tolist(self) -> list[int]:
        return [1, 2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, (2, 3)), [1, [2, 3]]),
        ({"b", "a"}, ["a", "b"]),
        (frozenset({3, 1}), [1, 3]),
        ({1, "a"}, ["a", 1]),  # unsortable: ordered by JSON text (`"a"` < `1`), still stable
        (deque([1, 2]), [1, 2]),
        (range(3), [0, 1, 2]),
        (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (datetime.time(7, 30), "07:30:00"),
        (datetime.timedelta(hours=1, seconds=1), 3601.0),
        (decimal.Decimal("0.10"), "0.10"),
        (fractions.Fraction(1, 3), "1/3"),
        (complex(1, 2), "(1+2j)"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (PurePosixPath("/tmp/x"), "/tmp/x"),
        (b"\xff\x00", "base64:/wA="),
        (bytearray(b"ok"), "ok"),
        (Size.LARGE, 3),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (OrderedDict([(None, 1), (True, 2), (2.5, 3)]), {"null": 1, "true": 2, "2.5": 3}),
        (Outer("n", Inner(datetime.date(2020, 1, 1)), ("a",)), {"name": "n", "inner": {"when": "2020-01-01"}, "tags": ["a"]}),
        (WithToList(), [1, 2]),
        (2**80, 2**80),
        (object, "<class 'object'>"),
    ],
)
def test_to_json(value: Any, expected: Any) -> None:
    assert to_json(value) == expected


def test_to_json_cuts_long_containers_and_deep_nesting() -> None:
    assert to_json(list(range(10)), max_items=3) == [0, 1, 2]
    assert to_json(iter(range(10**9)), max_items=2) == [0, 1]  # never materialised in full
    deep: list[Any] = []
    node = deep
    for _ in range(200):
        node.append([])
        node = node[0]
    assert isinstance(to_json(deep), list)


def test_shorten_cuts_strings_and_json_and_says_so() -> None:
    assert shorten("abc", 5) == ("abc", False)
    text, cut = shorten("a" * 20, 5)
    assert cut and text == "aaaaa… [truncated, 20 characters]"
    value, cut = shorten(list(range(100)), 10)
    assert cut and value.startswith("[0,1,2,3,4") and "characters of JSON" in value
    assert shorten({"a": 1}, 100) == ({"a": 1}, False)
    assert shorten(12345678901234567890, 5) == (12345678901234567890, False)


def test_frames_round_trip_including_wide_integers() -> None:
    stream = io.BytesIO(encode_frame({"a": [1, "x"]}) + encode_frame([2**70]))
    assert read_frame(stream) == {"a": [1, "x"]}
    assert read_frame(stream) == [2**70]
    assert read_frame(stream) is None
    assert decode_payload(b"[1]") == [1]


def test_frames_taken_from_a_buffer_come_whole_however_the_bytes_arrive() -> None:
    sent = encode_frame({"a": 1}) + encode_frame("two")
    buffer, taken = bytearray(), []
    for byte in sent:  # one byte per read, the worst a socket can do
        buffer.append(byte)
        while (frame := take_frame(buffer)) is not None:
            taken.append(decode_payload(frame))
    assert taken == [{"a": 1}, "two"] and not buffer
