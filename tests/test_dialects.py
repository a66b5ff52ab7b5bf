"""Converting tool definitions between the xLAM dialect and JSON Schema: tables, notes, the real corpora."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from apigen_cli import format_check
from apigen_cli.problems import RowProblem
from apigen_cli.schema.dialects import SPELLING_KEY, dialect_of, to_json_schema, to_openai, to_xlam
from apigen_cli.schema.tools import compile_tool

from .conftest import corpus, read_jsonl

# xLAM type string -> (the JSON Schema of the parameter, without its description; required?)
XLAM_TO_SCHEMA: list[tuple[str, dict[str, Any], bool]] = [
    ("str", {"type": "string"}, True),
    ("int", {"type": "integer"}, True),
    ("float", {"type": "number"}, True),
    ("bool", {"type": "boolean"}, True),
    ("List[int]", {"type": "array", "items": {"type": "integer"}}, True),
    ("List[Dict[str, Any]]", {"type": "array", "items": {"type": "object"}}, True),
    ("Dict[str, int]", {"type": "object", "additionalProperties": {"type": "integer"}}, True),
    ("Dict[str, List[str]]", {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}, True),
    ("Union[int, float]", {"anyOf": [{"type": "integer"}, {"type": "number"}]}, True),
    ("Optional[str]", {"anyOf": [{"type": "string"}, {"type": "null"}]}, False),
    ("Union[str, None]", {"anyOf": [{"type": "string"}, {"type": "null"}]}, True),
    ("Optional[List[int]]", {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]}, False),
    ("Tuple[float, float]", {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": False}, True),
    ("Literal['a', 'b']", {"enum": ["a", "b"]}, True),
    ("List[Literal[1, 2]]", {"type": "array", "items": {"enum": [1, 2]}}, True),
    ("str, optional", {"type": "string"}, False),
    ("List[str], optional", {"type": "array", "items": {"type": "string"}}, False),
    ("Any", {}, True),
]


def xlam_tool(**specs: dict[str, Any]) -> dict[str, Any]:
    return {"name": "f", "description": "does f", "parameters": specs}


def schema_tool(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": "f",
        "description": "does f",
        "parameters": {"type": "object", "properties": properties, "required": required, **extra},
    }


@pytest.mark.parametrize(("xlam_type", "schema", "required"), XLAM_TO_SCHEMA, ids=[row[0] for row in XLAM_TO_SCHEMA])
def test_xlam_types_become_json_schema_and_come_back(xlam_type: str, schema: dict[str, Any], required: bool) -> None:
    tool = xlam_tool(p={"description": "a p", "type": xlam_type})
    converted = to_json_schema(tool)
    assert converted.notes == []
    assert converted.tool["parameters"] == {
        "type": "object",
        "properties": {"p": {**schema, "description": "a p"}},
        "required": ["p"] if required else [],
    }
    back = to_xlam(converted.tool)
    assert back.notes == []
    assert back.tool == tool


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("list", "List[Any]"),
        ("Dict", "Dict[str, Any]"),
        ("set", "List[Any]"),
        ("Tuple[int, ...]", "List[int]"),
        ("Callable", "str"),
    ],
)
def test_other_spellings_come_back_canonical_or_kept_with_the_hint(spelling: str, canonical: str) -> None:
    tool = xlam_tool(p={"description": "a p", "type": spelling})
    assert to_xlam(to_json_schema(tool).tool).tool["parameters"]["p"]["type"] == canonical
    hinted = to_json_schema(tool, keep_xlam_spelling=True).tool
    assert hinted["parameters"]["properties"]["p"][SPELLING_KEY] == spelling
    assert to_xlam(hinted).tool == tool


@pytest.mark.parametrize(
    ("spec", "required"),
    [
        ({"type": "str", "default": "game"}, False),  # a usable default: may be omitted
        ({"type": "int", "default": ""}, True),  # "" is no default at all
        ({"type": "int, optional", "default": ""}, False),
        ({"type": "int, optional", "default": "1"}, False),
        ({"type": "int", "required": False}, False),
    ],
)
def test_optional_and_defaults(spec: dict[str, Any], required: bool) -> None:
    converted = to_json_schema(xlam_tool(p={"description": "d", **spec})).tool["parameters"]
    assert converted["required"] == (["p"] if required else [])
    assert converted["properties"]["p"].get("default", "absent") == spec.get("default", "absent")


def test_optional_beside_a_default_needs_the_hint_to_come_back_spelled_alike() -> None:
    tool = xlam_tool(page={"description": "page", "type": "int, optional", "default": "1"})
    plain = to_xlam(to_json_schema(tool).tool).tool
    assert plain["parameters"]["page"] == {"description": "page", "type": "int", "default": "1"}  # same meaning
    hinted = to_json_schema(tool, keep_xlam_spelling=True).tool
    assert hinted["parameters"]["properties"]["page"][SPELLING_KEY] == "int, optional"
    assert to_xlam(hinted).tool == tool


def test_a_stale_hint_is_ignored_and_said() -> None:
    tool = schema_tool({"p": {"type": "integer", SPELLING_KEY: "List[str]"}}, ["p"])
    converted = to_xlam(tool)
    assert converted.tool["parameters"]["p"]["type"] == "int"
    assert [note.kind for note in converted.notes] == [f"an `{SPELLING_KEY}` that no longer matches the schema (ignored)"]


def test_enums_and_defaults_are_kept_both_ways() -> None:
    tool = xlam_tool(unit={"description": "unit", "type": "str, optional", "enum": ["c", "f"], "default": "c"})
    schema = to_json_schema(tool).tool["parameters"]["properties"]["unit"]
    assert schema == {"type": "string", "description": "unit", "enum": ["c", "f"], "default": "c"}
    assert to_xlam(to_json_schema(tool).tool).tool["parameters"]["unit"] == {
        "description": "unit",
        "type": "str",
        "default": "c",
        "enum": ["c", "f"],
    }


# JSON Schema (and BFCL) property -> xLAM type, when required
SCHEMA_TO_XLAM: list[tuple[dict[str, Any], str]] = [
    ({"type": "string"}, "str"),
    ({"type": "integer"}, "int"),
    ({"type": "float"}, "float"),
    ({"type": "number"}, "float"),
    ({"type": "boolean"}, "bool"),
    ({"type": "any"}, "Any"),
    ({"type": "array", "items": {"type": "integer"}}, "List[int]"),
    ({"type": "tuple", "items": {"type": "float"}}, "List[float]"),
    ({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}, "Tuple[str, int]"),
    ({"type": "dict", "additionalProperties": {"type": "float"}}, "Dict[str, float]"),
    ({"type": ["string", "null"]}, "Union[str, None]"),
    ({"type": "string", "nullable": True}, "Union[str, None]"),
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "Union[str, int]"),
    ({"type": "array", "items": {"type": "string", "enum": ["x", "y"]}}, "List[Literal['x', 'y']]"),
]


@pytest.mark.parametrize(("schema", "xlam_type"), SCHEMA_TO_XLAM, ids=[row[1] for row in SCHEMA_TO_XLAM])
def test_json_schema_and_bfcl_types_become_xlam(schema: dict[str, Any], xlam_type: str) -> None:
    converted = to_xlam(schema_tool({"p": schema}, ["p"]))
    assert converted.tool["parameters"]["p"]["type"] == xlam_type
    assert converted.notes == []


def test_not_required_becomes_optional_and_a_default_is_kept() -> None:
    tool = schema_tool({"a": {"type": "string", "description": "a"}, "b": {"type": "integer", "default": 3}}, [])
    assert to_xlam(tool).tool["parameters"] == {
        "a": {"description": "a", "type": "str, optional"},
        "b": {"type": "int", "default": 3},
    }


def test_what_xlam_cannot_say_is_noted() -> None:
    nested = {
        "type": "dict",
        "description": "where",
        "properties": {"city": {"type": "string", "description": "the city"}, "zip": {"type": "integer", "minimum": 0}},
        "required": ["city"],
    }
    tool = schema_tool(
        {"n": {"type": "integer", "minimum": 1, "maximum": 9}, "place": nested, "d": {"type": "integer", "default": 2}},
        ["n", "place", "d"],
    )
    converted = to_xlam(tool)
    assert converted.tool["parameters"]["n"] == {"type": "int"}
    assert converted.tool["parameters"]["place"] == {"description": "where", "type": "Dict[str, Any]"}
    kinds = {(note.kind, note.where) for note in converted.notes}
    assert kinds == {
        ("`minimum` (xLAM has no way to say it)", "tool `f`, parameter `n`"),
        ("`maximum` (xLAM has no way to say it)", "tool `f`, parameter `n`"),
        ("the keys of a nested object (xLAM writes it as `Dict[str, Any]`)", "tool `f`, parameter `place`"),
        ("which keys of a nested object are required", "tool `f`, parameter `place`"),
        ("descriptions of nested values", "tool `f`, parameter `place`"),
        ("`minimum` inside a parameter (xLAM has no way to say it)", "tool `f`, parameter `place`"),
        ("a required parameter's default (xLAM reads a usable default as 'may be omitted')", "tool `f`, parameter `d`"),
    }


def test_bfcl_names_become_standard_json_schema_names() -> None:
    tool: dict[str, Any] = {
        "name": "g",
        "description": "G.",
        "parameters": {
            "type": "dict",
            "properties": {
                "point": {"type": "tuple", "items": {"type": "float"}, "description": "lat, lon"},
                "data": {"type": "any"},
                "options": {"type": "dict", "properties": {"x": {"type": "float"}}, "required": ["x"]},
            },
            "required": ["point"],
        },
    }
    converted = to_openai(tool)
    assert converted.notes == []
    assert converted.tool == {
        "type": "function",
        "function": {
            "name": "g",
            "description": "G.",
            "parameters": {
                "type": "object",
                "properties": {
                    "point": {"type": "array", "items": {"type": "number"}, "description": "lat, lon"},
                    "data": {},
                    "options": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
                },
                "required": ["point"],
            },
        },
    }
    assert tool["parameters"]["type"] == "dict"  # the input is not modified


def test_every_dialect_tools_reads_is_read() -> None:
    properties = {"q": {"type": "string"}}
    bare = schema_tool(properties, ["q"])
    wrapped = {"type": "function", "function": bare}
    anthropic = {"name": "f", "description": "does f", "input_schema": bare["parameters"]}
    xlam = xlam_tool(q={"type": "str"})
    for definition in (bare, wrapped, anthropic, xlam):
        assert to_xlam(definition).tool == {"name": "f", "description": "does f", "parameters": {"q": {"type": "str"}}}
        assert to_json_schema(definition).tool["parameters"]["properties"]["q"]["type"] == "string"
    assert [dialect_of(d) for d in (bare, wrapped, anthropic, xlam)] == ["json_schema", "json_schema", "json_schema", "xlam"]
    no_parameters = {"name": "ping", "description": "Ping."}
    assert to_xlam(no_parameters).tool == {"name": "ping", "description": "Ping.", "parameters": {}}
    assert to_json_schema(no_parameters).tool["parameters"] == {"type": "object", "properties": {}}


def test_keys_beyond_name_description_parameters_are_noted() -> None:
    tool = {**xlam_tool(q={"type": "str"}), "http": {"method": "GET", "url": "https://x"}}
    converted = to_json_schema(tool)
    assert "http" not in converted.tool
    assert [note.kind for note in converted.notes] == ["tool key `http` (only name, description and parameters are written)"]


def test_unusable_definitions_raise_tool_error() -> None:
    with pytest.raises(RowProblem) as caught:
        to_json_schema(xlam_tool(p={"type": "Frobnicator[int]"}))
    assert caught.value.problem.code == "unsupported_type"


# --- the real corpora -----------------------------------------------------------------


@pytest.mark.corpus
def test_xlam_samples_go_to_json_schema_and_back_unchanged() -> None:
    count = 0
    for row in read_jsonl(corpus("xlam/samples.jsonl")):
        for tool in json.loads(row["tools"]):
            original = copy.deepcopy(tool)
            there = to_json_schema(tool, keep_xlam_spelling=True)
            back = to_xlam(there.tool)
            assert (there.notes, back.notes) == ([], [])
            assert back.tool == original
            assert tool == original
            count += 1
    assert count == 24


@pytest.mark.corpus
def test_xlam_samples_converted_still_accept_their_answers() -> None:
    for row in read_jsonl(corpus("xlam/samples.jsonl")):
        tools = [to_openai(tool).tool for tool in json.loads(row["tools"])]
        [checked] = format_check([{**row, "tools": tools}])
        assert "rejected_by" not in checked, checked.get("reason_detail")


BFCL_SLIPS = {"parallel_multiple_12", "parallel_multiple_26", "parallel_multiple_21", "parallel_multiple_94", "simple_python_307"}


def _type_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        declared = schema.get("type")
        names.update(declared if isinstance(declared, list) else [declared] if isinstance(declared, str) else [])
        for value in schema.values():
            names |= _type_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= _type_names(item)
    return names


@pytest.mark.corpus
@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "parallel_multiple"])
def test_bfcl_tools_in_either_dialect_still_accept_their_answers(category: str) -> None:
    for row in read_jsonl(corpus(f"bfcl/{category}.jsonl")):
        if row["id"] in BFCL_SLIPS:
            continue
        as_openai = [to_openai(tool).tool for tool in row["tools"]]
        assert _type_names(as_openai) <= {"object", "string", "integer", "number", "boolean", "array", "null", "function"}
        as_xlam = [to_xlam(tool).tool for tool in row["tools"]]
        assert all(compile_tool(tool, 1).dialect == "xlam" or not tool["parameters"] for tool in as_xlam)
        for tools in (as_openai, as_xlam):
            [checked] = format_check([{**row, "tools": tools}])
            assert "rejected_by" not in checked, (row["id"], checked.get("reason_detail"))
