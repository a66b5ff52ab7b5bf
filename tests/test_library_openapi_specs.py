"""from-openapi on the shapes real specs take: each spec here is a small one of our own that
reproduces what a published spec does (YAML 1.2 scalars, a literal `$` in a path, YAML under a
`.json` name, an optional body with required fields, Swagger 2's boolean exclusive bounds).
Each is converted by the real CLI and its tools are held to format-check or exec-check."""

from __future__ import annotations

import json
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from .conftest import invoke, parse_stdout, read_jsonl, write_jsonl
from .json_http import JsonHandler, base_url, serving


def _convert(runner: CliRunner, path: Path, *args: str) -> list[dict[str, Any]]:
    result = invoke(runner, "library", "from-openapi", str(path), *args)
    assert result.exit_code == 0, result.stderr
    return parse_stdout(result.stdout)


def _refused(runner: CliRunner, path: Path) -> str:
    """stderr of from-openapi refusing the spec: exit code 2, nothing on stdout, a hint."""
    result = invoke(runner, "library", "from-openapi", str(path))
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert "\nhint: " in result.stderr
    return str(result.stderr)


def _format_check(runner: CliRunner, tmp_path: Path, tools: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[str]:
    """Each call in a row of its own through the real format-check: ``ok`` or the reject's reason, in order."""
    rows = [{"id": f"r{index}", "query": "q", "tools": tools, "answers": [call]} for index, call in enumerate(calls)]
    rejects = tmp_path / "rejects.jsonl"
    result = invoke(runner, "format-check", str(write_jsonl(tmp_path / "rows.jsonl", rows)), "--rejects", str(rejects))
    assert result.exit_code == 0, result.stderr
    verdicts = {row["id"]: "ok" for row in parse_stdout(result.stdout)}
    verdicts.update({row["id"]: row["reason"] for row in read_jsonl(rejects)})
    return [verdicts[row["id"]] for row in rows]


# --- YAML is YAML 1.2 ---------------------------------------------------------------

VIDEO_SPEC = """\
openapi: 3.0.0
info: {title: Video, version: "1"}
servers: [{url: "https://video.example.com"}]
paths:
  /render:
    post:
      operationId: render
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                aspectRatio: {type: string, enum: [16:9, 9:16, 1:1, 4:5]}
                subtitles: {type: string, enum: [on, off, yes, no, y, n]}
                mode: {type: string, default: 0777}
                since: {type: string, example: 2024-01-31}
                quality: {type: string, enum: [low, high], default: ~}
"""


def test_yaml_is_read_as_yaml_1_2(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "video.yaml"
    path.write_text(VIDEO_SPEC)
    [tool] = _convert(runner, path)
    properties = tool["parameters"]["properties"]
    assert properties["aspectRatio"]["enum"] == ["16:9", "9:16", "1:1", "4:5"]  # YAML 1.1: 969, 556, 61, 245
    assert properties["subtitles"]["enum"] == ["on", "off", "yes", "no", "y", "n"]  # YAML 1.1: true, false, ...
    assert properties["mode"]["default"] == 777  # an integer in YAML 1.2; YAML 1.1 read 0777 as octal (511)
    assert properties["since"]["examples"] == ["2024-01-31"]  # dates stay text, as JSON carries them
    assert properties["quality"]["default"] is None
    assert _format_check(
        runner, tmp_path, [tool], [{"name": "render", "arguments": {"aspectRatio": "16:9", "subtitles": "off"}}]
    ) == ["ok"]


BILLION_LAUGHS = """\
openapi: 3.0.0
info: {title: Laughs, version: "1"}
servers: [{url: "https://laughs.example.com"}]
x-a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
x-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
x-f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
x-g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
x-h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
x-i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
paths:
  /laugh:
    get:
      operationId: laugh
      parameters:
        - {name: how, in: query, schema: {type: string, enum: *i}}
"""


def test_a_yaml_alias_bomb_is_refused_naming_the_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 800
    stderr = _refused(runner, path)
    assert stderr.startswith(f"error: `{path}` holds ")
    assert "holds 127 values, which its YAML aliases expand to 926,177,122" in stderr and "(a 'billion laughs')" in stderr
    assert "\nhint: fix the file" in stderr


def ref_bomb(levels: int, width: int) -> dict[str, Any]:
    """A spec of a few KB whose schemas, each using the next `width` times, write out to width**levels leaves."""
    schemas: dict[str, Any] = {f"L{levels}": {"type": "string"}}
    for level in range(levels):
        schemas[f"L{level}"] = {
            "type": "object",
            "properties": {f"p{index}": {"$ref": f"#/components/schemas/L{level + 1}"} for index in range(width)},
        }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/L0"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "refs", "version": "1"},
        "servers": [{"url": "https://refs.example.com"}],
        "components": {"schemas": schemas},
        "paths": {"/grow": {"post": {"operationId": "grow", "requestBody": body}}},
    }


def test_shared_schemas_that_expand_past_the_bound_are_refused_naming_the_schema(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(ref_bomb(levels=5, width=8)))  # 37,449 schemas written out
    assert path.stat().st_size < 2500
    stderr = _refused(runner, path)
    assert stderr.startswith(f"error: `{path}` at `/components/schemas/L0`: `POST /grow`: its schemas written out")
    assert "more than 20,000" in stderr and "\nhint: " in stderr
    path.write_text(json.dumps(ref_bomb(levels=3, width=8)))  # 585: an ordinary use of shared schemas
    [tool] = _convert(runner, path)
    assert tool["parameters"]["properties"]["p7"]["properties"]["p7"]["properties"]["p7"] == {"type": "string"}


def test_anchors_within_reason_are_followed_and_a_cycle_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    shared = "openapi: 3.0.0\ninfo: {title: S, version: '1'}\nservers: [{url: 'https://s.example.com'}]\n"
    path = tmp_path / "shared.yaml"
    path.write_text(
        shared + "paths:\n  /a:\n    get:\n      operationId: a\n      parameters:\n"
        "        - &size {name: size, in: query, schema: {type: integer, maximum: 9}}\n"
        "  /b:\n    get:\n      operationId: b\n      parameters: [*size]\n"
    )
    tools = _convert(runner, path)
    assert [tool["parameters"]["properties"] for tool in tools] == [{"size": {"type": "integer", "maximum": 9}}] * 2
    path.write_text(shared + "paths:\n  /a: &item\n    get:\n      operationId: a\n      x-again: *item\n")
    stderr = _refused(runner, path)
    assert stderr.startswith(f"error: `{path}` contains itself through a YAML alias")


def test_yaml_values_json_cannot_hold_are_errors_naming_the_line(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_text("openapi: 3.0.0\ninfo: {title: B, version: '1'}\nx-logo: !!binary aGVsbG8=\npaths: {}\n")
    stderr = _refused(runner, path)
    assert stderr.startswith(f"error: `{path}` is not valid YAML at line 3, column 9: the tag ")
    assert "makes a value JSON cannot hold" in stderr


# --- read by content, not by name ---------------------------------------------------


def test_yaml_under_a_json_name_is_read_as_yaml(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "tasks-api.json"
    path.write_text(
        "openapi: 3.0.0\ninfo: {title: Tasks, version: v1}\nservers: [{url: 'https://tasks.example.com'}]\n"
        "paths:\n  /lists:\n    get:\n      operationId: tasks.lists.list\n"
    )
    [tool] = _convert(runner, path)
    assert tool["name"] == "tasks_lists_list"
    assert tool["http"] == {"method": "GET", "url": "https://tasks.example.com/lists"}


def test_a_file_neither_json_nor_yaml_is_an_error_saying_what_is_wrong(runner: CliRunner, tmp_path: Path) -> None:
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{\n  "openapi": "3.0.0",\n  "paths": {"/a": {}}},\n}\n')
    stderr = _refused(runner, broken_json)
    assert stderr.startswith(f"error: `{broken_json}` is not valid JSON: unexpected content after document at line 3, column 23")
    broken_yaml = tmp_path / "broken-yaml.json"
    broken_yaml.write_text("openapi: 3.0.0\npaths: [\n")
    stderr = _refused(runner, broken_yaml)
    assert stderr.startswith(f"error: `{broken_yaml}` is not valid YAML at line 3, column 1: ")
    assert "(read as YAML: it does not start with `{`)" in stderr


def test_flow_style_yaml_that_starts_like_json_is_read(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "{openapi: 3.0.0, info: {title: F, version: '1'}, servers: [{url: 'https://f.example.com'}],\n"
        " paths: {/a: {get: {operationId: a}}}}\n"
    )
    assert [tool["name"] for tool in _convert(runner, path)] == ["a"]


# --- a `$` in a spec is a literal -----------------------------------------------------

JOBS_SPEC = """\
openapi: 3.0.0
info: {title: Jobs, version: "1"}
servers: [{url: "BASE"}]
paths:
  /things/{thingName}/jobs/$next:
    get:
      operationId: DescribeNextJob
      parameters:
        - {name: thingName, in: path, required: true, schema: {type: string}}
        - {name: includeJobDocument, in: query, schema: {type: boolean}}
"""


class JobsHandler(JsonHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_json(200, {"raw_path": self.path})


def test_a_dollar_in_a_spec_path_is_sent_as_written(runner: CliRunner, tmp_path: Path) -> None:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), JobsHandler)) as server:
        path = tmp_path / "jobs.yaml"
        path.write_text(JOBS_SPEC.replace("BASE", base_url(server) + "/v1"))
        [tool] = _convert(runner, path)
        assert tool["http"] == {"method": "GET", "url": base_url(server) + "/v1/things/{thingName}/jobs/$$next"}
        call = {"name": "DescribeNextJob", "arguments": {"thingName": "lamp-1", "includeJobDocument": True}}
        row = {"id": "r1", "query": "q", "tools": [tool], "answers": [call]}
        result = invoke(runner, "exec-check", str(write_jsonl(tmp_path / "rows.jsonl", [row])))  # no --pass-env
    assert result.exit_code == 0, result.stderr
    [out] = parse_stdout(result.stdout)
    assert out["execution_result"][0]["result"] == {"raw_path": "/v1/things/lamp-1/jobs/$next?includeJobDocument=true"}


# --- a body's required properties -------------------------------------------------------

ESTIMATE_SPEC = """\
openapi: 3.0.0
info: {title: Payments, version: "1"}
servers: [{url: "https://pay.example.com"}]
paths:
  /getCostEstimate:
    post:
      operationId: getCostEstimate
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [amount, merchantAccount]
              properties:
                amount: {type: integer, minimum: 0}
                merchantAccount: {type: string}
                shopperReference: {type: string}
"""


def test_a_body_keeps_its_required_properties_when_the_body_is_not_marked_required(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "payments.yaml"
    path.write_text(ESTIMATE_SPEC)
    swagger = tmp_path / "payments-2.yaml"
    swagger.write_text(
        'swagger: "2.0"\ninfo: {title: Payments, version: "1"}\nhost: pay.example.com\npaths:\n  /getCostEstimate:\n'
        "    post:\n      operationId: getCostEstimate\n      parameters:\n        - name: body\n          in: body\n"
        "          schema: {type: object, required: [amount, merchantAccount], properties:"
        " {amount: {type: integer}, merchantAccount: {type: string}, shopperReference: {type: string}}}\n"
    )
    for spec in (path, swagger):
        [tool] = _convert(runner, spec)
        assert tool["parameters"]["required"] == ["amount", "merchantAccount"], spec.name
    calls = [
        {"name": "getCostEstimate", "arguments": {"amount": 1000, "merchantAccount": "Shop1"}},
        {"name": "getCostEstimate", "arguments": {"amount": 1000, "shopperReference": "s-1"}},
    ]
    assert _format_check(runner, tmp_path, [tool], calls) == ["ok", "missing_required_argument"]


# --- exclusive bounds ----------------------------------------------------------------------

RIDES_SPEC = """\
swagger: "2.0"
info: {title: Rides, version: "1"}
host: rides.example.com
schemes: [https]
paths:
  /rides:
    get:
      operationId: listRides
      parameters:
        - {name: limit, in: query, type: integer, minimum: 0, exclusiveMinimum: true, maximum: 50}
        - {name: ratio, in: query, type: number, minimum: 0, maximum: 1, exclusiveMaximum: true}
        - {name: floor, in: query, type: integer, minimum: 0, exclusiveMinimum: false}
"""


def test_boolean_exclusive_bounds_become_numbers_that_format_check_enforces(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "rides.yaml"
    path.write_text(RIDES_SPEC)
    openapi_3_0 = tmp_path / "rides-3.yaml"
    openapi_3_0.write_text(
        "openapi: 3.0.3\ninfo: {title: Rides, version: '1'}\nservers: [{url: 'https://rides.example.com'}]\npaths:\n"
        "  /rides:\n    get:\n      operationId: listRides\n      parameters:\n"
        "        - {name: limit, in: query, schema: {type: integer, minimum: 0, exclusiveMinimum: true, maximum: 50}}\n"
        "        - {name: ratio, in: query, schema: {type: number, minimum: 0, maximum: 1, exclusiveMaximum: true}}\n"
        "        - {name: floor, in: query, schema: {type: integer, minimum: 0, exclusiveMinimum: false}}\n"
    )
    for spec in (path, openapi_3_0):
        [tool] = _convert(runner, spec)
        assert tool["parameters"]["properties"] == {
            "limit": {"type": "integer", "exclusiveMinimum": 0, "maximum": 50},
            "ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "floor": {"type": "integer", "minimum": 0},
        }, spec.name
    calls = [
        {"name": "listRides", "arguments": arguments}
        for arguments in ({"limit": 1, "ratio": 0.5, "floor": 0}, {"limit": 0}, {"ratio": 1})
    ]
    assert _format_check(runner, tmp_path, [tool], calls) == ["ok", "out_of_range", "out_of_range"]
