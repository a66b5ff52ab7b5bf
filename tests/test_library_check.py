"""library check and merge through the CLI, on sample_data and on libraries written by the tests."""

from __future__ import annotations

import json
import random
import shlex
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from typer.testing import CliRunner

from apigen_cli.library.regex_sample import parse_pattern
from apigen_cli.library.state_arguments import MAX_NESTING, MAX_RECORDS, read_records
from apigen_cli.library.trial_arguments import MAX_TRIES, MAX_VALUES, argument_sets, value_size
from apigen_cli.problems import RowProblem
from apigen_cli.schema.tools import compile_tool
from apigen_cli.stages.format_check import format_check

from .conftest import PROJECT, corpus, invoke, parse_stdout, read_jsonl, write_jsonl
from .doc_pages import page_with
from .test_sample_store import READS, WRITES

SAMPLE = str(PROJECT / "sample_data" / "apis.jsonl")
FUNCTIONS = str(PROJECT / "sample_data" / "functions")


def _sets(parameters: dict[str, Any], description: str = "An API.") -> list[dict[str, Any]]:
    return argument_sets(compile_tool({"name": "api", "description": description, "parameters": parameters}, 1))


def _first(schema: dict[str, Any], name: str = "p", description: str = "An API.") -> Any:
    return _sets({"type": "object", "properties": {name: schema}, "required": [name]}, description)[0][name]


def test_values_come_from_examples_defaults_enums_then_placeholders() -> None:
    assert _first({"type": "string", "examples": ["x"], "default": "y"}) == "x"
    assert _first({"type": "integer", "default": 4}) == 4
    assert _first({"type": "string", "enum": ["km", "mi"]}) == "km"
    assert _first({"type": "string", "const": "fixed"}) == "fixed"
    assert _first({"type": "integer", "minimum": 5}) == 5
    assert _first({"type": "integer", "exclusiveMinimum": 1}) == 2
    assert _first({"type": "number", "maximum": 0.5}) == 0.5
    assert _first({"type": "string", "format": "date"}) == "2024-01-15"
    assert _first({"type": "string", "format": "email"}) == "user@example.com"
    assert _first({"type": "array", "items": {"type": "boolean"}}) == [True, True]
    assert _first({"type": "array", "items": {"type": "integer"}}) == [1, 2]
    assert _first({"type": "array", "items": {"type": "number"}, "maxItems": 1}) == [1.0]
    assert _first({"type": "array", "minItems": 3}) == ["example"] * 3
    assert _first({"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}}) == ["a", "b"]
    assert _first({"anyOf": [{"type": "null"}, {"type": "integer"}]}) == 1
    assert _first({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}) == {"a": "example"}
    assert _first({"type": "string", "minLength": 10}) == "exampleexa"
    assert _first({"type": "string", "maxLength": 3}) == "exa"
    assert _sets({"type": "object", "properties": {"a": {"type": "integer"}, "b": {}}, "required": ["a"]})[0] == {"a": 1}
    assert _sets({"n": {"type": "int"}, "m": {"type": "str, optional"}})[0] == {"n": 1}  # xLAM
    assert _sets({"xs": {"type": "List[float]", "description": "Numbers"}})[0] == {"xs": [1.0, 2.0]}  # not strings


def test_descriptions_and_names_give_values_that_placeholders_cannot() -> None:
    assert _first({"type": "string", "description": "Start date, YYYY-MM-DD"}) == "2024-01-15"
    assert _first({"type": "string", "description": "When, as DD/MM/YYYY HH:MM"}) == "15/01/2024 12:00"
    assert _first({"type": "string", "description": "UTC time, YYYY-MM-DDTHH:MM:SSZ"}) == "2024-01-15T12:00:00Z"
    assert _first({"type": "string", "description": "Product id, e.g. P-1002"}) == "P-1002"
    assert _first({"type": "string", "description": "Country name, e.g. United States"}) == "United States"
    assert _first({"type": "string", "description": "A coupon such as SAVE10."}) == "SAVE10"
    assert _first({"type": "string", "description": "The unit, for example 'kelvin'"}) == "kelvin"
    assert _first({"type": "string", "description": "Scale, defaults to 'linear' if not given"}) == "linear"
    assert _first({"type": "string", "description": "Symbols like `AAPL`"}) == "AAPL"
    assert _first({"type": "string", "description": "works like a charm"}) == "example"  # prose, not a value
    assert _first({"type": "string", "description": "e.g. the name of the city"}) == "example"
    assert _first({"type": "string", "description": "The scale. Default is None"}) == "example"
    assert _first({"type": "string", "description": "The day, given as 'YYYY-MM-DD'"}) == "2024-01-15"  # a mask, quoted
    assert _first({"type": "integer", "description": "How many, e.g. 12"}) == 12
    assert _first({"type": "boolean", "description": "Whether, e.g. false"}) is False
    assert _first({"type": "array", "items": {"type": "integer"}, "description": "Flows, e.g. [-1000, 300, 400]"}) == [
        -1000,
        300,
        400,
    ]
    assert _first({"type": "array", "items": {"type": "string"}, "description": "Tags, e.g. red, green or blue"}) == [
        "red",
        "green",
    ]
    lines = {"type": "array", "items": {"type": "object"}, "description": "Lines, e.g. [{'sku': 'A-1', 'qty': 2}]"}
    assert _first(lines) == [{"sku": "A-1", "qty": 2}]  # single-quoted JSON is read as JSON, never evaluated
    assert _first({"type": "string", "description": "ISO 4217 code of the currency"}) == "USD"
    assert _first({"type": "string", "description": "A two-letter country code"}) == "US"
    assert _first({"type": "string", "description": "An IANA time zone"}) == "America/New_York"
    assert _first({"type": "number", "description": "Percentile from 0 to 100"}) == 1.0  # small, inside the range
    assert _first({"type": "integer", "description": "Anything from 5 to 9"}) == 5
    assert _first({"type": "string", "description": "Book id"}, "book_id", "One book by its id, such as bk-003.") == "bk-003"
    assert _first({"type": "string"}, "city") == "London"
    assert _first({"type": "string"}, "currencyCode") == "USD"
    assert _first({"type": "string"}, "start_date") == "2024-01-15"
    assert _first({"type": "number"}, "lat") == 40.7128
    assert _first({"type": "string"}, "website") == "https://example.com"
    assert _first({"type": "string", "enum": ["a", "b"], "description": "e.g. zzz"}) == "a"  # a cue outside the enum is dropped
    assert _first({"type": "string"}, "symbol", "An element by its symbol (H, He, C).") == "H"
    assert _first({"type": "string", "description": "The date (or, when negative, before it)"}, "x") == "example"


def test_patterns_give_matching_values_and_hostile_ones_are_refused_quickly() -> None:
    assert _first({"type": "string", "pattern": "^bk-\\d{3}$"}) == "bk-111"
    assert _first({"type": "string", "pattern": "^[A-Z]{3}$", "description": "e.g. usd or EUR"}) == "EUR"
    assert _first({"type": "string", "pattern": "^(?:[a-z]+)@example\\.(com|org)$"}) == "a@example.com"
    assert parse_pattern("^(?=x)a$") is None and parse_pattern("(a)\\1") is None and parse_pattern("a{1,100000}") is None
    evil = parse_pattern("^(a+)+$")  # catastrophic for a backtracking engine; linear here
    assert evil is not None and not evil.matches("a" * 100 + "!") and evil.matches("a" * 100)
    assert not evil.matches("a" * 10_000)  # too long to test: refused, not tried
    hostile = {"type": "string", "pattern": "(x+x+)+y", "description": "e.g. " + "x" * 200_000, "minLength": 10**9}
    assert isinstance(_first(hostile), str)  # bounded: a cut description, a capped length, no regex run on it
    deep: dict[str, Any] = {"type": "array", "minItems": 10**6}
    for _ in range(30):
        deep = {"type": "array", "items": deep, "minItems": 10**6}
    made = _first(deep)
    assert isinstance(made, list) and len(made) <= 64


def test_later_argument_sets_change_guesses_and_keep_what_the_schema_said() -> None:
    parameters = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "A city"},
            "day": {"type": "string", "description": "YYYY-MM-DD"},
            "points": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["city", "day", "points"],
    }
    sets = _sets(parameters)
    assert len(sets) == MAX_TRIES == 3
    assert [one["city"] for one in sets] == ["London", "Paris", "Tokyo"]
    assert [one["day"] for one in sets] == ["2024-01-15"] * 3
    assert [len(one["points"]) for one in sets] == [2, 3, 1]
    assert _sets({"type": "object", "properties": {"x": {"type": "string", "const": "k"}}, "required": ["x"]}) == [{"x": "k"}]


def test_hostile_schemas_give_values_without_errors_and_within_bounds() -> None:
    generator = random.Random(7)
    pieces = [
        "e.g. ",
        "such as ",
        "YYYY-MM-DD ",
        "'x' ",
        "[1,2] ",
        "{'a': ",
        "ISO 4217 ",
        "(a, b) ",
        "from 5 to 1 ",
        "[[[[",
        "1e999 ",
    ]
    hostile_values: list[tuple[str, list[Any]]] = [
        ("minimum", [0, 5, 1e308, -1e308, 0.5]),
        ("maximum", [0, 1, 0.6, -5]),
        ("multipleOf", [1e-300, 3, 0.25]),
        ("exclusiveMinimum", [0, 10]),
        ("pattern", ["^(a+)+$", "[A-Z]{2,3}", "(?=x)", "\\d{100}", "^$", "(" * 50]),
        ("minLength", [0, 5, 10**9]),
        ("maxLength", [0, 2]),
        ("enum", [[], [1, "a"], ["x"]]),
        ("default", [None, "", 5, [1]]),
        ("format", ["date", "uuid", "weird"]),
    ]

    def schema(depth: int) -> dict[str, Any]:
        kind = generator.choice(["string", "integer", "number", "boolean", "array", "object", "null", "any", "anyOf", "list"])
        made: dict[str, Any] = {"type": kind}
        if kind == "anyOf":
            made = {"anyOf": [schema(depth + 1) for _ in range(generator.randint(1, 3))] if depth < 4 else [{}]}
        elif kind == "list":
            made = {"type": generator.sample(["string", "integer", "null", "number"], 2)}
        elif kind == "array" and depth < 5:
            made.update(items=schema(depth + 1), minItems=generator.choice([0, 1, 3, 10**9]))
        elif kind == "object" and depth < 5:
            made["properties"] = {f"p{index}": schema(depth + 1) for index in range(generator.randint(0, 3))}
        for key, values in hostile_values:
            if generator.random() < 0.15:
                made[key] = generator.choice(values)
        made["description"] = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 8)))
        return made

    made_sets = 0
    for _ in range(300):
        properties = {f"a{index}": schema(0) for index in range(generator.randint(1, 4))}
        definition: dict[str, Any] = {"name": "t", "description": "".join(generator.choice(pieces) for _ in range(6))}
        definition["parameters"] = {"type": "object", "properties": properties, "required": list(properties)}
        try:
            tool = compile_tool(definition, 1)
        except RowProblem:
            continue
        for arguments in argument_sets(tool):
            made_sets += 1
            assert set(arguments) == set(properties)
            assert value_size(arguments, 10**7) <= 4 * MAX_VALUES
    assert made_sets > 300


def _tools(corpus_files: list[Path]) -> list[dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for path in corpus_files:
        for row in read_jsonl(path):
            offered = row.get("tools", [])
            for tool in json.loads(offered) if isinstance(offered, str) else offered:
                tools[json.dumps(tool, sort_keys=True)] = tool
    return list(tools.values())


def test_every_argument_set_passes_the_format_check_over_bfcl_xlam_and_sample_tools() -> None:
    files = [corpus(f"bfcl/{name}.jsonl") for name in ("simple_python", "multiple", "parallel", "parallel_multiple")]
    tools = _tools(files + [corpus("xlam/samples.jsonl")]) + read_jsonl(SAMPLE)
    assert len(tools) > 1000
    rows = []
    for position, tool in enumerate(tools, start=1):
        compiled = compile_tool(tool, position)
        for index, arguments in enumerate(argument_sets(compiled)):
            answers = [{"name": compiled.name, "arguments": arguments}]
            rows.append({"id": f"{position}-{index}", "query": "q", "tools": [tool], "answers": answers})
    checked = list(format_check(rows))
    rejected = [(row["id"], row["reason_detail"]) for row in checked if "rejected_by" in row]
    assert rejected == []
    assert len(checked) > 2000


def test_check_calls_each_sample_api_and_keeps_the_ones_that_answer(runner: CliRunner, tmp_path: Path) -> None:
    keep = tmp_path / "working.jsonl"
    result = invoke(runner, "library", "check", SAMPLE, "--functions", FUNCTIONS, "--workers", "1", "--keep", str(keep))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    header = next(line for line in lines if line.startswith("API "))
    assert header.split() == ["API", "STATUS", "HTTP", "DETAIL"]
    shown = {line.split()[0]: line for line in lines[1:-1]}
    assert shown["factorial"].split()[:3] == ["factorial", "ok", "(n=1)"]  # small, within 0..170
    # Each line says the arguments that answered: from a description's mask, "e.g." or "such as" cue.
    assert 'ok             (date="2024-01-15") -> "Monday"' in shown["day_of_week"]
    assert '(book_id="bk-003") -> {"book_id": "bk-003", "title": "Nineteen Eighty-Four"' in shown["get_book"]
    assert '(city="London", utc_time="2024-01-15T12:00") -> ' in shown["local_time"]
    assert lines[-1] == "check: 57 of 57 APIs answered, 0 lint findings"
    readme = page_with("### `apigen library check`").split("### `apigen library check`")[1].split("### ")[0]
    excerpt = readme.split("```text\n")[1].split("```")[0].splitlines()
    assert len(excerpt) == 4 and all(line in lines for line in excerpt)  # the README shows real lines
    kept = [tool.get("function", tool)["name"] for tool in read_jsonl(keep)]
    assert len(kept) == 57 and all("category" in tool for tool in read_jsonl(keep))
    strict = invoke(runner, "library", "check", SAMPLE, "--functions", FUNCTIONS, "--workers", "1", "--strict", "-q")
    assert strict.exit_code == 0 and strict.stderr == ""


FUSSY_FUNCTIONS = """
def triangle_perimeter(sides):
    if len(sides) != 3:
        raise ValueError(f"a triangle has 3 sides, not {len(sides)}")
    return sum(sides)


def lookup(code):
    if code != "abc123":
        return {"error": f"unknown code {code!r}"}
    return {"code": code, "found": True}


def never(n):
    raise RuntimeError(f"never works (n={n})")


def wants_nothing():
    return "fine"
"""


def _fussy_library(tmp_path: Path) -> tuple[Path, Path]:
    functions = tmp_path / "fussy.py"
    functions.write_text(FUSSY_FUNCTIONS)
    number_list = {"type": "array", "items": {"type": "number"}, "description": "Side lengths"}
    library = write_jsonl(
        tmp_path / "apis.jsonl",
        [
            {
                "name": "triangle_perimeter",
                "description": "Perimeter.",
                "parameters": {"type": "object", "properties": {"sides": number_list}, "required": ["sides"]},
            },
            {
                "name": "lookup",
                "description": "Look a code up.",
                "parameters": {"code": {"type": "str", "description": "A code"}},
            },
            {"name": "never", "description": "Fails.", "parameters": {"n": {"type": "int", "description": "Any number"}}},
            {"name": "wants_nothing", "description": "No arguments.", "parameters": {}},
        ],
    )
    return library, functions


def test_a_failed_call_is_tried_again_with_other_arguments_up_to_three_times(runner: CliRunner, tmp_path: Path) -> None:
    library, functions = _fussy_library(tmp_path)
    keep = tmp_path / "working.jsonl"
    result = invoke(
        runner, "library", "check", str(library), "--functions", str(functions), "--workers", "1", "--keep", str(keep)
    )
    assert result.exit_code == 0, result.stderr
    shown = {line.split()[0]: line for line in result.stderr.splitlines()[1:-1]}
    assert shown["triangle_perimeter"].endswith("ok             (sides=[10.0, 11.0, 12.0]) (try 2) -> 33.0")
    assert shown["lookup"].endswith('ok             (code="abc123") (try 2) -> {"code": "abc123", "found": true}')
    assert shown["never"].endswith("error          (n=100) (3 tries) -> never works (n=100) (at fussy.py:15 in never)")
    assert shown["wants_nothing"].endswith('ok             () -> "fine"')
    assert result.stderr.splitlines()[-1] == "check: 3 of 4 APIs answered, 0 lint findings"
    assert [tool["name"] for tool in read_jsonl(keep)] == ["triangle_perimeter", "lookup", "wants_nothing"]
    verbose = invoke(runner, "library", "check", str(library), "--functions", str(functions), "--workers", "1", "-v")
    tries = [line for line in verbose.stderr.splitlines() if line.startswith("  try ")]
    assert tries == [
        "  try 1: (sides=[1.0, 2.0]) failed -> a triangle has 3 sides, not 2 (at fussy.py:4 in triangle_perimeter)",
        "  try 2: (sides=[10.0, 11.0, 12.0]) ok -> 33.0",
        '  try 1: (code="1") failed -> the result is an error payload: {"error": "unknown code \'1\'"}',
        '  try 2: (code="abc123") ok -> {"code": "abc123", "found": true}',
        "  try 1: (n=1) failed -> never works (n=1) (at fussy.py:15 in never)",
        "  try 2: (n=10) failed -> never works (n=10) (at fussy.py:15 in never)",
        "  try 3: (n=100) failed -> never works (n=100) (at fussy.py:15 in never)",
    ]


def test_mcp_bindings_are_called_through_the_server_given_with_mcp(runner: CliRunner, tmp_path: Path) -> None:
    server = f"{shlex.quote(sys.executable)} {shlex.quote(str(PROJECT / 'sample_data' / 'mcp_server.py'))}"
    library = tmp_path / "units.jsonl"
    made = invoke(runner, "library", "from-mcp", "--name", "units", "-o", str(library), "--", *shlex.split(server))
    assert made.exit_code == 0, made.stderr
    result = invoke(runner, "library", "check", str(library), "--mcp", f"units={server}")
    assert result.exit_code == 0, result.stderr
    shown = {line.split()[0]: line for line in result.stderr.splitlines() if not line.startswith("lint: ")}
    # The symbol comes from the tool's description, "by its symbol (H, He, C, ...)".
    assert '(symbol="H") -> {"symbol": "H", "name": "hydrogen"' in shown["lookup_element"]
    assert result.stderr.splitlines()[-1] == "check: 4 of 4 APIs answered, 4 lint findings"


class _Counting(BaseHTTPRequestHandler):
    """Answers /missing with 404 and /locked with 401, whatever the arguments, and counts the calls."""

    hits: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.hits[path] = self.hits.get(path, 0) + 1
        status = {"/missing": 404, "/locked": 401}.get(path, 200)
        body = json.dumps({"detail": path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_an_http_404_is_tried_again_but_a_refused_key_is_not(runner: CliRunner, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        city = {"type": "string", "description": "A city"}  # three guesses to try: London, Paris, Tokyo
        parameters = {"type": "object", "properties": {"city": city}, "required": ["city"]}
        library = write_jsonl(
            tmp_path / "apis.jsonl",
            [
                {
                    "name": name,
                    "description": "A REST API.",
                    "parameters": parameters,
                    "http": {"url": f"{base}/{name}", "query": ["city"]},
                }
                for name in ("missing", "locked")
            ],
        )
        result = invoke(runner, "library", "check", str(library), "--http-retries", "0")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.stderr
    assert _Counting.hits == {"/missing": 3, "/locked": 1}
    shown = {line.split()[0]: line for line in result.stderr.splitlines()[1:-1]}
    assert " error    404   " in shown["missing"] and "(3 tries)" in shown["missing"]
    assert " error    401   " in shown["locked"] and "tries" not in shown["locked"]


def test_lint_finds_duplicates_bad_names_and_missing_descriptions(runner: CliRunner, tmp_path: Path) -> None:
    library = write_jsonl(
        tmp_path / "apis.jsonl",
        [
            {"name": "a.b", "description": "", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}},
            {"name": "ok", "description": "Fine.", "parameters": {"type": "object", "properties": {}}},
            {"name": "ok", "description": "x" * 2000, "parameters": {}},
            {"name": "bad", "parameters": {"type": "object", "properties": {"y": {"type": "frob"}}}},
        ],
    )
    result = invoke(runner, "library", "check", str(library), "--lint-only", "--strict")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'lint: line 4: tool `bad`: parameter `y` has type "frob", which apigen does not understand',
        "lint: line 1 `a.b`: the name is not of the form ^[A-Za-z0-9_-]{1,64}$ that endpoints accept",
        "lint: line 1 `a.b`: the description is empty",
        "lint: line 1 `a.b`: parameter(s) without a description: `x`",
        "lint: line 3 `ok`: the name is already used on line 2",
        "lint: line 3 `ok`: the description is 2000 characters (over 1024)",
        "check: 3 APIs linted, 6 lint findings",
    ]
    assert invoke(runner, "library", "check", str(library), "--lint-only").exit_code == 0


def test_check_of_a_missing_library_is_an_error(runner: CliRunner) -> None:
    result = invoke(runner, "library", "check", "no_such.jsonl")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: API library `no_such.jsonl` does not exist")


def test_merge_renames_clashes_keeps_bindings_and_drops_exact_repeats(runner: CliRunner, tmp_path: Path) -> None:
    rest = {"name": "factorial", "description": "REST factorial.", "parameters": {}, "http": {"url": "http://h/f"}}
    first = write_jsonl(tmp_path / "rest.jsonl", [rest])
    result = invoke(runner, "library", "merge", SAMPLE, str(first), SAMPLE)
    assert result.exit_code == 0, result.stderr
    merged = parse_stdout(result.stdout)
    names = [tool.get("function", tool)["name"] for tool in merged]
    assert len(names) == 58 and len(set(names)) == 58
    assert merged[-1] == {**rest, "name": "factorial_2"}
    assert (
        f"line 1 of `{first}`: `factorial` clashes with the API on line 1 of `{SAMPLE}`; renamed `factorial_2`" in result.stderr
    )
    assert f"line 1 of `{SAMPLE}`: `factorial` is the same API as on line 1 of `{SAMPLE}`; kept once" in result.stderr
    assert result.stderr.rstrip().endswith("merge: 58 APIs written, 57 skipped")
    out = tmp_path / "merged.jsonl"
    assert invoke(runner, "library", "merge", SAMPLE, str(first), "-o", str(out), "-q").exit_code == 0
    assert json.loads(out.read_text().splitlines()[-1])["name"] == "factorial_2"


def test_an_error_payload_is_an_error_unless_error_results_pass(runner: CliRunner, tmp_path: Path) -> None:
    library = write_jsonl(
        tmp_path / "apis.jsonl",
        [{"name": "get_book", "description": "One book.", "parameters": {"book_id": {"type": "str", "description": "Id"}}}],
    )
    failed = invoke(runner, "library", "check", str(library), "--functions", FUNCTIONS, "--workers", "1", "--strict")
    assert failed.exit_code == 1
    detail = 'the result is an error payload: {"error": "no book with id \'example\'"}'
    assert f'get_book  error          (book_id="example") (3 tries) -> {detail}' in failed.stderr  # "1", "abc123", "example"
    passed = invoke(
        runner, "library", "check", str(library), "--functions", FUNCTIONS, "--workers", "1", "--error-result", "pass"
    )
    assert passed.exit_code == 0
    assert "check: 1 of 1 API answered, 0 lint findings" in passed.stderr


ENVIRONMENTS = PROJECT / "tests" / "fixtures" / "environments"


def test_an_environment_s_tools_are_marked_read_or_write_by_what_their_call_did_to_the_state(
    runner: CliRunner, tmp_path: Path
) -> None:
    """The sample store's methods, each called on a fresh instance of the initial state in a worker."""
    store = PROJECT / "sample_data" / "store"
    tools, kept = tmp_path / "store_tools.jsonl", tmp_path / "kept.jsonl"
    made = invoke(runner, "library", "from-python", str(store), "--class", "OnlineStore", "-o", str(tools), "-q")
    assert made.exit_code == 0, made.stderr
    state = str(store / "initial_state.json")
    result = invoke(
        runner, "library", "check", str(tools), "--functions", str(store), "--initial-state", state, "--keep", str(kept)
    )
    assert result.exit_code == 0, result.stderr
    effects = {row["name"]: row.get("effect") for row in read_jsonl(kept)}
    assert effects == {name: "read" for name in READS} | {name: "write" for name in WRITES}  # every tool told
    lines = {line.split()[0]: line.split() for line in result.stderr.splitlines() if line.split()}
    assert lines["API"][:3] == ["API", "STATUS", "EFFECT"] and lines["update_user_address"][1:3] == ["ok", "write"]
    # The arguments are the state's own records: an order that is pending for a cancellation, one of its SKUs
    # and another variant of the same product for a swap, the order's own payment method for a refund.
    assert lines["get_order_details"][3] == '(order_id="ORD-318532")'  # an order the state holds, not the docstring's
    assert lines["find_user_by_name_zip"][1:4] == ["ok", "read", '(first_name="Maya",']  # a name and zip of one customer
    assert "check: 14 of 14 APIs answered, 0 lint findings; the environment's tools: 8 read, 6 write" in result.stderr


def test_without_a_state_the_store_s_tools_take_their_arguments_from_its_default_state(runner: CliRunner, tmp_path: Path) -> None:
    """The class's default state is read from an instance made with no arguments: its one pending order is cancelled.

    Its only pending order holds a mug whose other colour is out of stock, so a swap of its
    items cannot succeed: that one tool is left not told, as it should be.
    """
    store = PROJECT / "sample_data" / "store"
    tools, kept = tmp_path / "store_tools.jsonl", tmp_path / "kept.jsonl"
    assert invoke(runner, "library", "from-python", str(store), "--class", "OnlineStore", "-o", str(tools), "-q").exit_code == 0
    result = invoke(runner, "library", "check", str(tools), "--functions", str(store), "--keep", str(kept))
    assert result.exit_code == 0, result.stderr
    effects = {row["name"]: row.get("effect") for row in read_jsonl(kept)}
    assert effects["cancel_pending_order"] == effects["exchange_delivered_order_items"] == "write"
    cancel = next(line for line in result.stderr.splitlines() if line.startswith("cancel_pending_order"))
    assert '(order_id="ORD-100002"' in cancel  # the default state's pending order
    assert "the environment's tools: 8 read, 5 write" in result.stderr


def test_without_a_state_an_environment_s_tools_run_on_the_class_s_default(runner: CliRunner, tmp_path: Path) -> None:
    tools, kept = tmp_path / "shelf_tools.jsonl", tmp_path / "kept.jsonl"
    shelf = str(ENVIRONMENTS / "env_defaults.py")
    made = invoke(runner, "library", "from-python", shelf, "--class", "LendingShelf", "-o", str(tools), "-q")
    assert made.exit_code == 0, made.stderr
    result = invoke(runner, "library", "check", str(tools), "--functions", shelf, "--keep", str(kept))
    assert result.exit_code == 0, result.stderr
    assert {row["name"]: row["effect"] for row in read_jsonl(kept)} == {
        "list_books": "read",
        "get_book": "read",
        "find_member": "read",  # by a member's name that the default state holds
        "lend_book": "write",  # a book on the shelf and a member, both of the default state
        "return_book": "write",
    }


def test_a_state_nested_past_any_reason_or_holding_many_records_is_read_within_bounds() -> None:
    """The state's records are walked recursively: a state 5,000 objects deep, or of 50,000 records, stops at the bounds."""
    deep: dict[str, object] = {"order_id": "ORD-1"}
    for _ in range(5000):
        deep = {"child": deep}
    assert len(read_records(deep)) == MAX_NESTING + 1
    wide = {"orders": {f"ORD-{index}": {"order_id": f"ORD-{index}"} for index in range(50_000)}}
    records = read_records(wide)
    assert len(records) == MAX_RECORDS and records[2].values[0] == (("order", "id"), "ORD-0")
