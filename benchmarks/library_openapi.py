"""Seconds of ``apigen library from-openapi`` on a generated spec, against loading the spec alone.

Generates an OpenAPI 3.0 spec of N operations (default 1,000: N/2 paths with a GET
and a POST each, path, query and header parameters, a JSON body with a shared
``$ref`` schema) as YAML, then times in the same run, best of R rounds:

- baseline: loading the file with the YAML 1.2 reader from-openapi uses (ruamel.yaml, safe, pure Python);
- for comparison, PyYAML's libyaml loader, which from-openapi used before (fast, but YAML 1.1);
- from-openapi: read, convert and write the library (``from_openapi`` + ``write_library``
  to /dev/null), as ``apigen library from-openapi spec.yaml -o /dev/null`` does;

and prints both and their ratio (conversion on top of parsing should be small). The rounds
are interleaved, best of each kept, since the machine is shared.

    python benchmarks/library_openapi.py [--operations 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from apigen_cli.library.from_openapi import OpenApiImport, from_openapi
from apigen_cli.library.output import write_library
from apigen_cli.library.spec_file import _yaml_reader


def build_spec(operations: int) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for index in range(operations // 2):
        paths[f"/things{index}/{{thing_id}}"] = {
            "parameters": [{"name": "thing_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {
                "operationId": f"getThing{index}",
                "summary": f"Read thing {index}",
                "tags": [f"group{index % 20}"],
                "parameters": [
                    {"name": "fields", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                    {"name": "X-Request-Id", "in": "header", "schema": {"type": "string"}},
                ],
            },
            "post": {
                "operationId": f"updateThing{index}",
                "summary": f"Update thing {index}",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                },
            },
        }
    thing = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "example": "widget"},
            "size": {"type": "integer", "minimum": 1},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "parent": {"$ref": "#/components/schemas/Thing"},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Bench", "version": "1"},
        "servers": [{"url": "https://bench.example.com/v1"}],
        "components": {
            "schemas": {"Thing": thing},
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}},
        },
        "security": [{"key": []}],
        "paths": paths,
    }


def seconds(function: Any) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def best_interleaved(*functions: Any, repeat: int) -> list[float]:
    """Best time of each, their rounds interleaved so that a busy spell of the machine hits all alike."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeat):
        for index, function in enumerate(functions):
            times[index].append(seconds(function))
    return [min(each) for each in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.yaml"
        spec.write_text(yaml.safe_dump(build_spec(args.operations), sort_keys=False))
        text = spec.read_text()
        options = OpenApiImport(auth={"key": "BENCH_KEY"})

        def baseline() -> None:
            _yaml_reader().load(text)

        def libyaml() -> None:
            yaml.load(text, Loader=yaml.CSafeLoader)

        def convert() -> None:
            imported = from_openapi(str(spec), options)
            assert len(imported.tools) == args.operations
            write_library(imported.tools, "/dev/null")

        floor, full, before = best_interleaved(baseline, convert, libyaml, repeat=args.repeat)
        size = spec.stat().st_size / 1024
    print(f"spec: {args.operations} operations, {size:.0f} KB of YAML; best of {args.repeat}")
    print(f"PyYAML libyaml load (YAML 1.1):  {before:.2f} s")
    print(f"baseline (YAML 1.2 load):        {floor:.2f} s")
    print(f"library from-openapi:            {full:.2f} s")
    print(f"ratio: {full / floor:.2f}x the baseline (conversion and writing: {full - floor:.2f} s)")


if __name__ == "__main__":
    main()
