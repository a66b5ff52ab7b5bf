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
from .test_sample_store import load_store_module

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


def test_the_imported_code_sees_only_what_pass_env_names_a_glob_too(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_API_KEY", "k-1")
    monkeypatch.setenv("SHOP_REGION", "eu")
    folder = _write(
        tmp_path / "lib",
        envcheck='''
        import os

        if "SHOP_API_KEY" in os.environ:
            raise RuntimeError("saw the key")
        REGION = os.environ["SHOP_REGION"]


        def ok() -> int:
            """Fine."""
            return 1
        ''',
    )
    refused = invoke(runner, "library", "from-python", str(folder))
    assert refused.exit_code == 2 and "KeyError: 'SHOP_REGION'" in refused.stderr
    for passed in ("SHOP_REGION", "SHOP_R*"):
        tools, _stderr = _tools(runner, str(folder), "--pass-env", passed)
        assert list(tools) == ["ok"]
    every = invoke(runner, "library", "from-python", str(folder), "--pass-env", "SHOP_*")  # the key too, as asked
    assert every.exit_code == 2 and "RuntimeError: saw the key" in every.stderr


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


STORE = PROJECT / "sample_data" / "store"


def test_the_sample_store_gives_one_tool_per_public_method(runner: CliRunner, tmp_path: Path) -> None:
    import inspect

    out = tmp_path / "store_tools.jsonl"
    result = invoke(runner, "library", "from-python", str(STORE / "online_store.py"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    tools = {tool["name"]: tool for tool in read_jsonl(out)}
    store = load_store_module().OnlineStore
    methods = {name for name, value in vars(store).items() if inspect.isfunction(value) and not name.startswith("_")}
    assert set(tools) == methods - {"state", "load_state"} and len(tools) == 14
    for name, tool in tools.items():
        compile_tool(tool, 1)
        assert tool["class"] == "OnlineStore" and tool["category"] == "online store"
        signature = inspect.signature(getattr(store, name))
        parameters = [parameter for parameter in signature.parameters.values() if parameter.name != "self"]
        assert list(tool["parameters"]["properties"]) == [parameter.name for parameter in parameters], name
        assert tool["parameters"]["required"] == [p.name for p in parameters if p.default is p.empty], name
        assert all(schema["description"] for schema in tool["parameters"]["properties"].values()), name
    cancel = tools["cancel_pending_order"]
    assert cancel["description"] == (
        "Cancel a pending order: its items go back to stock and what was paid is refunded to how it was paid."
    )
    assert cancel["parameters"]["properties"]["reason"]["enum"] == ["no longer needed", "ordered by mistake"]
    assert tools["modify_pending_order_address"]["parameters"]["properties"]["country"]["default"] == "USA"
    assert tools["list_user_orders"]["parameters"]["properties"]["status"]["enum"][-1] == "exchange requested"
    assert "the methods of `OnlineStore` are tools of a stateful environment" in result.stderr
    assert "exec-check --functions" not in result.stderr  # exec-check's function library does not call them
    assert "from-python: 14 APIs written\n" in result.stderr


BFCL_STYLE = '''
from copy import deepcopy
from typing import Dict, List, Optional, Union


class Note:
    def __init__(self, title: str, body: str = "") -> None:
        self.title = title
        self.body = body

    def _edit(self, body: str) -> None:
        self.body = body

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Note) and (self.title, self.body) == (other.title, other.body)


class BoardError(Exception):
    def explain(self) -> str:
        return str(self)


DEFAULT_STATE = {"notes": {}, "pinned": None}


class NoteBoard:
    def __init__(self) -> None:
        """
        Initialise an empty board.
        """
        self.notes: Dict[str, Note] = {}
        self.pinned: Optional[str] = None
        self._api_description = "A board of notes."

    def _load_scenario(self, scenario: dict, long_context: bool = False) -> None:
        """
        Load a scenario into the board.

        Args:
            scenario (dict): The notes to start with.
        """
        state = deepcopy(DEFAULT_STATE)
        state.update(scenario)
        self.notes = {title: Note(title, body) for title, body in state["notes"].items()}
        self.pinned = state["pinned"]

    def add_note(self, title: str, body: str = "") -> Dict[str, Union[bool, str]]:
        """
        Add a note to the board.

        Args:
            title (str): The title of the note. Titles are unique.
            body (str): [Optional] The text of the note. Defaults to an empty string.

        Returns:
            added (bool): True if the note was added.
        """
        if title in self.notes:
            return {"error": f"note '{title}' already exists"}
        self.notes[title] = Note(title, body)
        return {"added": True}

    def list_titles(self) -> Dict[str, List[str]]:
        """
        List the titles of every note.
        Args:
            None
        Returns:
            titles (List[str]): The titles, in the order they were added.
        """
        return {"titles": list(self.notes)}

    def pin(self, title, loudly: bool = False) -> Dict[str, str]:
        """
        Pin a note to the top of the board.

        Args:
            title (str): The note to pin.
        """
        self.pinned = title
        return {"pinned": title}

    @staticmethod
    def word_count(text: str) -> int:
        """
        Count the words of a text.

        Args:
            text (str): The text.
        """
        return len(text.split())

    @classmethod
    def from_titles(cls, titles: List[str]) -> "NoteBoard":
        """Make a board from titles."""
        return cls()

    @property
    def size(self) -> int:
        return len(self.notes)

    def state(self) -> dict:
        """The board as JSON."""
        return {"notes": {title: note.body for title, note in self.notes.items()}, "pinned": self.pinned}
'''


def test_a_bfcl_style_class_gives_its_public_methods_and_nothing_else(runner: CliRunner, tmp_path: Path) -> None:
    folder = _write(tmp_path / "envs", note_board=BFCL_STYLE)
    tools, stderr = _tools(runner, str(folder))
    assert list(tools) == [
        "add_note",
        "list_titles",
        "word_count",
    ]  # _load_scenario, state, the helpers and the error are not tools
    add = tools["add_note"]
    assert add["class"] == "NoteBoard" and add["category"] == "note board"
    assert add["description"] == "Add a note to the board."
    assert add["parameters"] == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "The title of the note. Titles are unique."},
            "body": {
                "type": "string",
                "default": "",
                "description": "[Optional] The text of the note. Defaults to an empty string.",
            },
        },
        "required": ["title"],
    }
    assert tools["list_titles"]["parameters"] == {"type": "object", "properties": {}, "required": []}
    assert tools["word_count"]["parameters"]["required"] == ["text"]  # a static method has no self to leave out
    assert "`NoteBoard.pin` (" in stderr and "is skipped: `title` has no annotation (pass `--untyped loose`" in stderr
    assert "note: `NoteBoard.from_titles` is a classmethod, not a tool" in stderr
    assert "from-python: 3 APIs written, 1 skipped" in stderr
    loose, _ = _tools(runner, str(folder), "--untyped", "loose", "--category", "notes")
    assert loose["pin"]["parameters"]["properties"] == {
        "title": {"description": "The note to pin."},
        "loudly": {"type": "boolean", "default": False},
    }
    assert loose["pin"]["class"] == "NoteBoard" and loose["pin"]["category"] == "notes"


TWO_CLASSES = '''
class Inventory:
    def count(self, sku: str) -> int:
        """Count the units of a SKU."""
        return 0


class Basket:
    def add(self, sku: str) -> None:
        """Add a SKU to the basket."""

    def count(self, sku: str) -> int:
        """Count a SKU in the basket."""
        return 0


class Shelf(Inventory):
    """Inherits count from a class of the library; its own tools come first."""

    def restock(self, sku: str, units: int) -> None:
        """Put units of a SKU on the shelf."""


class Ledger(dict):
    """What it inherits from dict is not its tool."""

    def balance(self) -> int:
        """The balance of the ledger."""
        return 0


def lookup(sku: str) -> str:
    """Look a SKU up."""
    return sku
'''


def test_a_method_two_classes_define_is_an_error_naming_both_and_class_picks(runner: CliRunner, tmp_path: Path) -> None:
    folder = _write(tmp_path / "lib", shop=TWO_CLASSES)
    result = invoke(runner, "library", "from-python", str(folder))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        f"error: `count` is a method of both `Inventory` and `Basket` in `{folder}`: an environment with both could not tell which one a call means"
    )
    assert "hint: pass `--class Basket` (or `--class Inventory`) to import one of them, or rename one method" in result.stderr

    tools, stderr = _tools(runner, str(folder), "--class", "Shelf", "--class", "Ledger")
    assert [(name, tool["class"]) for name, tool in tools.items()] == [
        ("restock", "Shelf"),
        ("count", "Shelf"),
        ("balance", "Ledger"),
    ]  # no function: `--class` imports only classes
    assert tools["count"]["description"] == "Count the units of a SKU."
    assert "the methods of `Ledger`, `Shelf` are tools of a stateful environment" in stderr

    missing = invoke(runner, "library", "from-python", str(folder), "--class", "Till")
    assert missing.exit_code == 2
    assert missing.stderr.startswith(f"error: no class `Till` in `{folder}` (classes: `Basket`, `Inventory`, `Ledger`, `Shelf`)")


MIXED = '''
def lookup(sku: str) -> str:
    """Look a SKU up."""
    return sku


class Till:
    def ring_up(self, sku: str, units: int = 1) -> int:
        """Ring up units of a SKU.

        Args:
            sku: The SKU.
            units: How many.
        """
        return units
'''


def test_functions_and_classes_of_one_module_are_both_tools(runner: CliRunner, tmp_path: Path) -> None:
    folder = _write(tmp_path / "lib", till_tools=MIXED)
    tools, stderr = _tools(runner, str(folder))
    assert {name: (tool["category"], tool.get("class")) for name, tool in tools.items()} == {
        "lookup": ("till", None),
        "ring_up": ("till", "Till"),
    }
    assert tools["ring_up"]["parameters"]["properties"]["units"] == {"type": "integer", "default": 1, "description": "How many."}
    assert f"run them with `apigen exec-check --functions {folder}`" in stderr  # for the function
    assert "the methods of `Till` are tools of a stateful environment" in stderr


def test_the_class_a_tool_runs_in_is_not_shown_to_the_model() -> None:
    from apigen_cli.schema.tools import model_view

    tool = {"name": "ring_up", "description": "Ring up.", "parameters": {}, "category": "till", "class": "Till"}
    assert model_view(tool) == {"name": "ring_up", "description": "Ring up.", "parameters": {}}


def test_pass_env_reads_the_same_in_both_commands_that_start_code() -> None:
    """The allowlist's wording is declared once, for `library from-python` and `library from-mcp` alike."""
    import typer.main

    from apigen_cli.cli import app

    library = typer.main.get_command(app).commands["library"]  # type: ignore[attr-defined]
    helps = {
        name: next(option.help for option in library.commands[name].params if "--pass-env" in option.opts)
        for name in ("from-python", "from-mcp")
    }
    assert helps["from-python"] == helps["from-mcp"] and "a glob such as `AWS_*` works" in helps["from-python"]
