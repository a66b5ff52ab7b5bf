"""from-openapi: a spec converted through the real CLI, then checked against a real server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from apigen_cli.schema.tools import compile_tool

from .conftest import invoke, parse_stdout, read_jsonl, write_jsonl
from .json_http import JsonHandler, base_url, serving

KEY = "pets-secret-789"

SPEC = """
openapi: 3.0.3
info: {title: Pet shop, version: "1"}
servers:
  - url: "http://{host}/v1"
    variables: {host: {default: "pets.example.com"}}
components:
  securitySchemes:
    shop_key: {type: apiKey, in: header, name: X-Api-Key}
  parameters:
    PetId: {name: petId, in: path, required: true, schema: {type: integer, minimum: 1}, description: The pet's number}
  schemas:
    NewPet:
      type: object
      required: [name]
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string, example: Rex, description: What the pet is called}
        kind: {$ref: "#/components/schemas/Kind"}
        parent: {$ref: "#/components/schemas/NewPet"}
    Kind: {type: string, enum: [dog, cat], description: Dog or cat}
security: [{shop_key: []}]
paths:
  /pets:
    get:
      operationId: listPets
      summary: List the pets
      tags: [pets]
      parameters:
        - {name: limit, in: query, schema: {type: integer, default: 2}, description: How many}
        - {name: X-Trace, in: header, schema: {type: string}, description: A trace id echoed back}
    post:
      operationId: createPet
      summary: Add a pet
      tags: [pets]
      requestBody:
        required: true
        content:
          application/json: {schema: {$ref: "#/components/schemas/NewPet"}}
  /pets/{petId}:
    parameters: [{$ref: "#/components/parameters/PetId"}]
    get:
      operationId: get pet!
      summary: One pet
      tags: [pets]
    put:
      summary: Rename a pet, with an `id` in the path, the query and the body
      tags: [admin]
      parameters:
        - {name: petId, in: query, schema: {type: string, example: q-1}, description: An audit id}
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {petId: {type: string, example: b-1, description: Body id}}}
    patch:
      summary: Upload a photo
      requestBody:
        content:
          multipart/form-data: {schema: {type: object}}
"""


class PetServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PetHandler)

    @property
    def base(self) -> str:
        return f"{base_url(self)}/v1"


class PetHandler(JsonHandler):
    """The spec above, implemented: it refuses calls without the key."""

    def handle_any(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        body = self.read_json()
        if self.headers.get("X-Api-Key") != KEY:
            self.send_json(401, {"error": "no key"})
            return
        segments = parts.path.split("/")[2:]
        if segments == ["pets"] and self.command == "GET":
            self.send_json(
                200, {"pets": ["Rex", "Tom"][: int(query.get("limit", ["2"])[0])], "trace": self.headers.get("X-Trace")}
            )
        elif segments == ["pets"] and self.command == "POST":
            self.send_json(201, {"created": body})
        elif len(segments) == 2 and self.command == "GET":
            self.send_json(200, {"id": int(segments[1])})
        elif len(segments) == 2 and self.command == "PUT":
            self.send_json(200, {"path": segments[1], "query": query, "body": body})
        else:
            self.send_json(404, {"error": "no route"})

    do_GET = do_POST = do_PUT = handle_any


@pytest.fixture(scope="module")
def server() -> Iterator[PetServer]:
    with serving(PetServer()) as running:
        yield running


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "pets.yaml"
    path.write_text(SPEC)
    return path


def _convert(runner: CliRunner, *args: str) -> tuple[list[dict[str, Any]], str]:
    result = invoke(runner, "library", "from-openapi", *args)
    assert result.exit_code == 0, result.stderr
    return parse_stdout(result.stdout), result.stderr


def test_each_operation_becomes_a_tool_with_an_http_binding(runner: CliRunner, spec: Path) -> None:
    tools, stderr = _convert(runner, str(spec), "--auth", "shop_key=PETS_KEY")
    by_name = {tool["name"]: tool for tool in tools}
    assert list(by_name) == ["listPets", "createPet", "get_pet", "put_pets_petId"]
    for position, tool in enumerate(tools, start=1):
        compile_tool(tool, position)  # every line loads
    listing = by_name["listPets"]
    assert listing["category"] == "pets" and listing["description"] == "List the pets"
    assert listing["http"] == {
        "method": "GET",
        "url": "http://pets.example.com/v1/pets",
        "headers": {"X-Trace": "{X_Trace}", "X-Api-Key": "${PETS_KEY}"},
    }
    assert listing["parameters"]["properties"]["limit"] == {"type": "integer", "default": 2, "description": "How many"}
    created = by_name["createPet"]["parameters"]
    assert created["required"] == ["name"] and "id" not in created["properties"]  # readOnly is the server's
    assert created["properties"]["kind"] == {"type": "string", "enum": ["dog", "cat"], "description": "Dog or cat"}
    assert created["properties"]["parent"] == {}  # the cycle is cut
    clash = by_name["put_pets_petId"]
    assert list(clash["parameters"]["properties"]) == ["petId", "query_petId", "body_petId"]
    assert clash["http"]["rename"] == {"query_petId": "petId", "body_petId": "petId"}
    assert clash["http"]["query"] == ["query_petId"]
    assert clash["category"] == "admin"
    assert "`PATCH /pets/{petId}` (/paths/~1pets~1{petId}/patch) is skipped: its body is a multipart form" in stderr
    assert "`#/components/schemas/NewPet` contains itself" in stderr
    assert "`GET /pets/{petId}` is named `get_pet`" in stderr
    assert stderr.rstrip().endswith("from-openapi: 4 APIs written, 1 skipped")


def test_converted_spec_passes_check_and_exec_check_against_the_real_server(
    runner: CliRunner, spec: Path, server: PetServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_KEY", KEY)
    library = tmp_path / "apis.jsonl"
    result = invoke(
        runner, "library", "from-openapi", str(spec), "--base-url", server.base, "--auth", "shop_key=PETS_KEY", "-o", str(library)
    )
    assert result.exit_code == 0, result.stderr
    keep = tmp_path / "working.jsonl"
    checked = invoke(
        runner, "library", "check", str(library), "--pass-env", "PETS_KEY", "--keep", str(keep), "--http-retries", "0"
    )
    assert checked.exit_code == 0, checked.stderr
    assert "check: 4 of 4 APIs answered" in checked.stderr
    assert KEY not in checked.stderr
    assert [tool["name"] for tool in read_jsonl(keep)] == ["listPets", "createPet", "get_pet", "put_pets_petId"]
    # The same tools in a row, through exec-check: the renamed arguments reach the server under their own names.
    tools = read_jsonl(library)
    row = {
        "id": "r1",
        "query": "rename pet 7",
        "tools": tools,
        "answers": [
            {"name": "put_pets_petId", "arguments": {"petId": 7, "query_petId": "q-9", "body_petId": "b-9"}},
            {"name": "listPets", "arguments": {"limit": 1, "X_Trace": "t-1"}},
        ],
    }
    rows = write_jsonl(tmp_path / "rows.jsonl", [row])
    executed = invoke(runner, "exec-check", str(rows), "--pass-env", "PETS_KEY")
    assert executed.exit_code == 0, executed.stderr
    [out] = parse_stdout(executed.stdout)
    results = [entry["result"] for entry in out["execution_result"]]
    assert results[0] == {"path": "7", "query": {"petId": ["q-9"]}, "body": {"petId": "b-9"}}
    assert results[1] == {"pets": ["Rex"], "trace": "t-1"}


def test_without_the_key_the_check_reports_each_http_status_and_strict_exits_1(
    runner: CliRunner, spec: Path, server: PetServer, tmp_path: Path
) -> None:
    library = tmp_path / "apis.jsonl"
    invoke(runner, "library", "from-openapi", str(spec), "--base-url", server.base, "-o", str(library))
    checked = invoke(runner, "library", "check", str(library), "--strict", "--http-retries", "0")
    assert checked.exit_code == 1
    lines = [line for line in checked.stderr.splitlines() if line.startswith("listPets ")]
    assert lines and " error " in lines[0] and " 401 " in lines[0]
    assert "check: 0 of 4 APIs answered" in checked.stderr


def test_swagger_2_and_json_are_read(runner: CliRunner, tmp_path: Path) -> None:
    swagger = {
        "swagger": "2.0",
        "info": {"title": "Old", "version": "1"},
        "host": "old.example.com",
        "basePath": "/api",
        "schemes": ["https"],
        "securityDefinitions": {"token": {"type": "apiKey", "in": "query", "name": "api_key"}},
        "security": [{"token": []}],
        "paths": {
            "/items/{item-id}": {
                "post": {
                    "operationId": "saveItem",
                    "parameters": [
                        {"name": "item-id", "in": "path", "required": True, "type": "string"},
                        {"name": "body", "in": "body", "required": True, "schema": {"$ref": "#/definitions/Item"}},
                    ],
                }
            },
            "/upload": {"post": {"parameters": [{"name": "file", "in": "formData", "type": "file"}]}},
        },
        "definitions": {"Item": {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer"}}}},
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(swagger))
    tools, stderr = _convert(runner, str(path), "--auth", "token=OLD_TOKEN")
    [tool] = tools
    assert tool["http"] == {"method": "POST", "url": "https://old.example.com/api/items/{item_id}?api_key=${OLD_TOKEN}"}
    assert tool["parameters"] == {
        "type": "object",
        "properties": {"item_id": {"type": "string"}, "size": {"type": "integer"}},
        "required": ["item_id", "size"],
    }
    assert "`POST /upload` (/paths/~1upload/post) is skipped: it takes a form" in stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("openapi: 3.0.0\npaths: {/a: {get: {x: [1, 2}}}\n", "is not valid YAML at line 2, column"),
        (
            "openapi: 3.0.0\nservers: [{url: 'http://h'}]\npaths:\n  /a:\n    get:\n      parameters: [{$ref: '#/components/parameters/Nope'}]\n",
            "at `/paths/~1a/get/parameters/0`: the $ref `#/components/parameters/Nope` points to nothing",
        ),
        (
            "openapi: 3.0.0\nservers: [{url: 'http://h'}]\npaths: {/a: {get: {operationId: ''}}}\n",
            "at `/paths/~1a/get/operationId`: `operationId` should be a non-empty string",
        ),
        ("info: {title: x}\n", "this is not an OpenAPI 3 or Swagger 2 document"),
        ("openapi: 3.0.0\npaths: {/a: {get: {}}}\n", "gives no absolute server URL for `GET /a`"),
        (
            "openapi: 3.0.0\nservers: [{url: /api/v3}]\npaths: {/a: {get: {}}}\n",
            "at `/servers`: the spec gives no absolute server URL for `GET /a` (its server URL is `/api/v3`",
        ),
    ],
)
def test_a_bad_spec_is_an_error_naming_the_file_and_where(runner: CliRunner, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = invoke(runner, "library", "from-openapi", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: `{path}`")
    assert message in result.stderr
    assert "\nhint: " in result.stderr


def test_an_unknown_auth_scheme_is_an_error(runner: CliRunner, spec: Path) -> None:
    result = invoke(runner, "library", "from-openapi", str(spec), "--auth", "other=X")
    assert result.exit_code == 2
    assert "there is no security scheme `other` (the spec has: shop_key)" in result.stderr
    assert "hint: pass `--auth SCHEME=ENV_VAR`" in result.stderr


def test_openapi_3_1_types_bearer_basic_and_cookies(runner: CliRunner, tmp_path: Path) -> None:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "New", "version": "1"},
        "servers": [{"url": "https://new.example.com"}],
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "login": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sid"},
            },
            "schemas": {"Note": {"type": ["string", "null"], "description": "Any note"}},
        },
        "paths": {
            "/a": {
                "get": {
                    "operationId": "a",
                    "security": [{"token": []}],
                    "parameters": [
                        {"name": "note", "in": "query", "schema": {"$ref": "#/components/schemas/Note", "description": "Why"}},
                        {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
                        {"name": "theme", "in": "cookie", "schema": {"type": "string"}},
                    ],
                }
            },
            "/b": {"get": {"operationId": "b", "security": [{"login": []}, {"session": []}]}},
            "/c": {"get": {"operationId": "c", "security": [{"session": []}]}},
            "/d": {"get": {"operationId": "d", "parameters": [{"name": "sid", "in": "cookie", "required": True}]}},
        },
    }
    path = tmp_path / "new.json"
    path.write_text(json.dumps(spec))
    tools, stderr = _convert(runner, str(path), "--auth", "token=NEW_TOKEN", "--auth", "login=NEW_BASIC")
    by_name = {tool["name"]: tool for tool in tools}
    assert list(by_name) == ["a", "b", "c"]
    assert by_name["a"]["parameters"]["properties"] == {"note": {"type": ["string", "null"], "description": "Why"}}
    assert by_name["a"]["http"]["headers"] == {"Authorization": "Bearer ${NEW_TOKEN}"}
    assert by_name["b"]["http"]["headers"] == {"Authorization": "Basic ${NEW_BASIC}"}
    assert "http" in by_name["c"] and "headers" not in by_name["c"]["http"]
    assert (
        "operations such as `GET /c` need the security scheme `session` (an API key in cookie `sid`): pass `--auth session=ENV_VAR`"
        in stderr
    )
    assert "`GET /a`: the cookie parameter `theme` is left out" in stderr
    assert "`GET /d` (/paths/~1d/get) is skipped: it needs the cookie `sid`, which the http binding cannot set" in stderr


def test_an_importer_pipes_into_check_and_merge(tmp_path: Path, spec: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pipe = f"apigen library from-openapi {spec} -q | apigen library merge - {spec.parent / 'none.jsonl'}"
    (spec.parent / "none.jsonl").write_text("")
    merged = subprocess.run(["bash", "-c", pipe], env=env, capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stderr
    assert len(merged.stdout.splitlines()) == 4
    lint = f"apigen library from-openapi {spec} -q | apigen library check - --lint-only --strict"
    checked = subprocess.run(["bash", "-c", lint], env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1  # createPet has no description of `parent`; the lint says so
    assert "lint: line 2 `createPet`: parameter(s) without a description: `parent`" in checked.stderr
