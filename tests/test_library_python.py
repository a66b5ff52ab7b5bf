"""from-python: real modules written by the tests, introspected through the real CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.schema.tools import compile_tool
from apigen_cli.schema.value_types import type_schema

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl

GOOGLE = '''
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Optional, TypedDict


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Window(TypedDict):
    start: str
    days: int


@dataclass
class Point:
    """A point on the plane."""

    x: float
    y: float = 0.0
    tags: list[str] = field(default_factory=list)


def paint(
    shape: Literal["square", "circle"],
    colour: Colour,
    corners: list[Point],
    window: Window,
    scale: dict[str, float],
    pair: tuple[int, str],
    note: Optional[str] = None,
    count: int | None = 3,
) -> str:
    """Paint a shape.

    It is drawn on the canvas.

    Args:
        shape: Which shape to draw.
        colour (Colour): The paint.
        corners: Where the corners go.

    Returns:
        str: What was drawn.
    """
    return shape


def _private(x: int) -> int:
    return x
'''

NUMPY = '''
def scale(values: list[float], factor: float = 2.0) -> list[float]:
    """Multiply values.

    Parameters
    ----------
    values : list of float
        The numbers to scale.
    factor : float
        How much bigger.
    """
    return [value * factor for value in values]
'''

REST = '''
import os.path


def greet(name: str, polite: bool = True) -> str:
    """Say hello.

    :param name: Who to greet.
    :param polite: Whether to add please.
    """
    return name


def untyped(a, *rest, **options):
    return a


def odd_type(when: complex) -> None:
    """Takes a complex number."""
'''


def _write(folder: Path, **modules: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


def _tools(runner: CliRunner, *args: str) -> tuple[dict[str, dict[str, Any]], str]:
    result = invoke(runner, "library", "from-python", *args)
    assert result.exit_code == 0, result.stderr
    return {tool["name"]: tool for tool in parse_stdout(result.stdout)}, result.stderr


def test_google_docstrings_and_every_kind_of_annotation(runner: CliRunner, tmp_path: Path) -> None:
    folder = _write(tmp_path / "lib", drawing_tools=GOOGLE)
    tools, stderr = _tools(runner, str(folder))
    assert list(tools) == ["paint"]  # _private and the classes are not tools
    paint = tools["paint"]
    assert paint["description"] == "Paint a shape.\n\nIt is drawn on the canvas."
    assert paint["category"] == "drawing"
    parameters = paint["parameters"]
    assert parameters["required"] == ["shape", "colour", "corners", "window", "scale", "pair"]
    properties = parameters["properties"]
    assert properties["shape"] == {"enum": ["square", "circle"], "type": "string", "description": "Which shape to draw."}
    assert properties["colour"] == {"enum": ["red", "blue"], "type": "string", "description": "The paint."}
    assert properties["corners"] == {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "x": {"type": "number"},
                "y": {"type": "number", "default": 0.0},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["x"],
            "description": "A point on the plane.",
        },
        "description": "Where the corners go.",
    }
    assert properties["window"] == {
        "type": "object",
        "properties": {"start": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["start", "days"],
    }
    assert properties["scale"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert properties["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
    }
    assert properties["note"] == {"type": "string"}  # `X | None = None`: null means "not given"
    assert properties["count"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 3}
    compile_tool(paint, 1)
    assert f"run them with `apigen exec-check --functions {folder}`" in stderr


def test_numpy_and_rest_docstrings_and_what_cannot_be_typed(runner: CliRunner, tmp_path: Path) -> None:
    folder = _write(tmp_path / "lib", scaling=NUMPY, words=REST)
    tools, stderr = _tools(runner, str(folder))
    assert sorted(tools) == ["greet", "scale"]
    assert tools["scale"]["parameters"]["properties"]["values"]["description"] == "The numbers to scale."
    assert tools["scale"]["parameters"]["properties"]["factor"] == {
        "type": "number",
        "default": 2.0,
        "description": "How much bigger.",
    }
    assert tools["greet"]["parameters"]["properties"]["name"] == {"type": "string", "description": "Who to greet."}
    assert tools["greet"]["parameters"]["required"] == ["name"]
    assert "`untyped` (" in stderr and "is skipped: `a` has no annotation (pass `--untyped loose`" in stderr
    assert "`odd_type` (" in stderr and "is skipped: `when`: `complex` is a class with no JSON form" in stderr
    assert "from-python: 2 APIs written, 2 skipped" in stderr

    loose, stderr = _tools(runner, str(folder), "--untyped", "loose")
    assert sorted(loose) == ["greet", "odd_type", "scale", "untyped"]
    assert loose["untyped"]["parameters"] == {
        "type": "object",
        "properties": {"a": {}},
        "required": ["a"],
        "additionalProperties": True,
    }
    assert "`*rest` is left out" in stderr and "`**options` lets a call pass any other argument" in stderr


def test_pydantic_models_become_nested_objects(runner: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("pydantic")
    folder = _write(
        tmp_path / "lib",
        orders='''
        from pydantic import BaseModel


        class Line(BaseModel):
            sku: str
            quantity: int = 1


        class Order(BaseModel):
            lines: list[Line]


        def place(order: Order) -> int:
            """Place an order."""
            return len(order.lines)
        ''',
    )
    tools, _stderr = _tools(runner, str(folder))
    order = tools["place"]["parameters"]["properties"]["order"]
    assert order["properties"]["lines"]["items"]["properties"]["sku"] == {"type": "string"}
    assert order["properties"]["lines"]["items"]["required"] == ["sku"]


def test_annotations_are_never_evaluated(runner: CliRunner, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    folder = _write(
        tmp_path / "lib",
        hostile=f'''
        from __future__ import annotations


        def f(x: __import__("pathlib").Path({str(marker)!r}).touch()) -> None:
            """Hostile annotation."""
        ''',
    )
    result = invoke(runner, "library", "from-python", str(folder))
    assert not marker.exists()
    assert result.exit_code == 2  # nothing could be imported
    assert "is not a plain type annotation" in result.stderr


def test_code_that_fails_to_import_is_an_error_naming_the_line(runner: CliRunner, tmp_path: Path) -> None:
    folder = _write(tmp_path / "lib", broken="x = 1\nraise RuntimeError('no')\n")
    result = invoke(runner, "library", "from-python", str(folder))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot import `{folder}` ({folder / 'broken.py'}, line 2): RuntimeError: no")
    assert "hint: " in result.stderr


def test_the_imported_code_does_not_see_secret_looking_variables(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_API_KEY", "k-1")
    folder = _write(
        tmp_path / "lib",
        envcheck='''
        import os

        if "SHOP_API_KEY" in os.environ:
            raise RuntimeError("saw the key")


        def ok() -> int:
            """Fine."""
            return 1
        ''',
    )
    tools, _stderr = _tools(runner, str(folder))
    assert list(tools) == ["ok"]


def test_module_names_work(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "pkg_for_test", __init__="", unit_tools=NUMPY)
    monkeypatch.chdir(tmp_path)
    tools, _stderr = _tools(runner, "pkg_for_test")
    assert list(tools) == ["scale"] and tools["scale"]["category"] == "unit"


def _compiled(path: Path) -> dict[str, Any]:
    return {tool.name: tool for tool in (compile_tool(line, n) for n, line in enumerate(read_jsonl(path), start=1))}


def _shape(schema: Any) -> Any:
    """Type only: descriptions, bounds, enums and defaults are the hand-written file's extras."""
    if isinstance(schema, dict):
        dropped = ("description", "minimum", "maximum", "enum", "default", "minItems", "maxItems")
        return {key: _shape(value) for key, value in schema.items() if key not in dropped}
    if isinstance(schema, list):
        return [_shape(item) for item in schema]
    return schema


# The one deliberate difference (see the README): cart_total's `items` is annotated
# list[dict[str, object]], so the generated schema is looser than the hand-written one.
LOOSER_IN_CODE = {("cart_total", "items")}


def test_sample_functions_give_the_hand_written_library(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "apis.jsonl"
    result = invoke(runner, "library", "from-python", str(PROJECT / "sample_data" / "functions"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    generated = _compiled(out)
    written = _compiled(PROJECT / "sample_data" / "apis.jsonl")
    assert sorted(generated) == sorted(written)
    for name, tool in written.items():
        mine = generated[name].parameters
        assert mine.required == tool.parameters.required, name
        assert list(mine.properties) == list(tool.parameters.properties), name
        for key, compiled in tool.parameters.properties.items():
            if (name, key) in LOOSER_IN_CODE:
                assert type_schema(mine.properties[key])["type"] == "array"
                continue
            assert _shape(type_schema(mine.properties[key])) == _shape(type_schema(compiled)), (name, key)
    assert json.loads(out.read_text().splitlines()[0])["category"] == "books"


def test_a_name_defined_in_two_modules_is_named_by_its_module(runner: CliRunner, tmp_path: Path) -> None:
    one = 'def size(x: int) -> int:\n    """One."""\n    return x\n'
    folder = _write(tmp_path / "lib", first=one, second=one.replace("One", "Two"))
    tools, stderr = _tools(runner, str(folder))
    assert sorted(tools) == ["first.size", "second.size"]
    assert "`size` is defined in several modules (first.size, second.size): each is named by its module" in stderr
    assert "the name `first.size` has characters some endpoints refuse" in stderr


WRAPPED = '''
def ordinal(number: int) -> str:
    """
    Return the suffix that should be added to a number to denote the position
    in an ordered sequence such as 1st, 2nd, 3rd, 4th.

    Examples::

        >>> ordinal(1)
        'st'
    """
    return "st"


def humanize(word: str) -> str:
    """Capitalize the first word and turn underscores into spaces and strip a
    trailing "_id", if any.
    Like titleize, this is meant for creating pretty output.

    :param word: The word to humanize.
    """
    return word


def pluralize(word: str) -> str:
    """Return the plural form of a word.

    :param word: The word to pluralize.
    """
    return word
'''


def test_a_first_sentence_wrapped_onto_the_next_line_is_one_paragraph(runner: CliRunner, tmp_path: Path) -> None:
    tools, _ = _tools(runner, str(_write(tmp_path / "lib", inflect=WRAPPED)))
    assert tools["ordinal"]["description"] == (
        "Return the suffix that should be added to a number to denote the position in an ordered sequence such as"
        " 1st, 2nd, 3rd, 4th.\n\nExamples::\n\n    >>> ordinal(1)\n    'st'"
    )
    assert tools["humanize"]["description"] == (
        'Capitalize the first word and turn underscores into spaces and strip a trailing "_id", if any.'
        " Like titleize, this is meant for creating pretty output."
    )
    assert tools["pluralize"]["description"] == "Return the plural form of a word."


def test_an_import_that_hangs_is_stopped_at_the_time_limit(runner: CliRunner, tmp_path: Path) -> None:
    folder = _write(tmp_path / "lib", slow="import threading\nthreading.Event().wait()\n")
    result = invoke(runner, "library", "from-python", str(folder), "--import-timeout", "0.5")
    assert result.exit_code == 2
    assert f"error: cannot import `{folder}`: importing `{folder}` took longer than 0.5 s" in result.stderr
