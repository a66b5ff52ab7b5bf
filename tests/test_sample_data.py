"""sample_data: the API library, its Python implementations, and the seed examples that pass both checks."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apigen_cli import Executor, ExecutorOptions, exec_check, format_check
from apigen_cli.schema.tools import compile_tool

from .conftest import PROJECT, read_jsonl

SAMPLE = PROJECT / "sample_data"
APIS = read_jsonl(SAMPLE / "apis.jsonl")
EXAMPLES = read_jsonl(SAMPLE / "examples.jsonl")


def _body(tool: dict[str, Any]) -> dict[str, Any]:
    return tool["function"] if isinstance(tool.get("function"), dict) else tool


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(SAMPLE / "functions", ExecutorOptions(workers=2, timeout=5)) as running:
        yield running


@pytest.fixture(scope="module")
def functions() -> dict[str, Callable[..., Any]]:
    """The sample functions loaded in this process under private module names, for their signatures."""
    found: dict[str, Callable[..., Any]] = {}
    for path in sorted((SAMPLE / "functions").glob("[!_]*.py")):
        name = f"_apigen_sample_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        finally:
            del sys.modules[name]
        for attribute, value in vars(module).items():
            if inspect.isfunction(value) and value.__module__ == name and not attribute.startswith("_"):
                assert attribute not in found, f"{attribute} is defined twice"
                found[attribute] = value
    return found


def test_the_library_is_large_varied_and_described() -> None:
    names = [_body(tool)["name"] for tool in APIS]
    assert len(names) >= 40 and len(set(names)) == len(names)
    categories = Counter(tool["category"] for tool in APIS)
    assert len(categories) >= 8 and min(categories.values()) >= 3
    for tool in APIS:
        assert len(_body(tool)["description"]) > 20, _body(tool)["name"]
    dialects = Counter(
        compile_tool(tool, index).dialect + ("+openai" if "function" in tool else "") for index, tool in enumerate(APIS, 1)
    )
    assert set(dialects) == {"json_schema+openai", "json_schema", "xlam"}


def test_every_api_has_an_implementation_with_the_same_parameters(
    executor: Executor, functions: dict[str, Callable[..., Any]]
) -> None:
    assert executor.functions_info is not None
    for index, tool in enumerate(APIS, start=1):
        compiled = compile_tool(tool, index)
        assert compiled.name in executor.functions_info.functions, f"{compiled.name} has no implementation"
        signature = inspect.signature(functions[compiled.name])
        assert set(signature.parameters) == set(compiled.parameters.properties), compiled.name
        required = {name for name, parameter in signature.parameters.items() if parameter.default is parameter.empty}
        assert required == set(compiled.parameters.required), compiled.name
    assert set(functions) == {_body(tool)["name"] for tool in APIS}, "a function without a tool"


def test_the_examples_cover_every_style_and_pass_both_checks(executor: Executor) -> None:
    assert 6 <= len(EXAMPLES) <= 10
    assert {row["query_style"] for row in EXAMPLES} == {"simple", "multiple", "parallel", "parallel_multiple"}
    for row in EXAMPLES:
        assert {"id", "tools", "query", "answers", "query_style", "category"} <= set(row)
        offered = {_body(tool)["name"] for tool in row["tools"]}
        assert {call["name"] for call in row["answers"]} <= offered
    checked = list(exec_check(format_check(json.loads(json.dumps(EXAMPLES))), executor))
    rejected = [(row["id"], row.get("reason"), row.get("reason_detail")) for row in checked if "rejected_by" in row]
    assert rejected == []
    results = {row["id"]: [entry["result"] for entry in row["execution_result"]] for row in checked}
    assert results["ex-simple-math"] == [[2, 2, 2, 3, 3, 5]]
    assert results["ex-simple-dates"] == ["Tuesday"]
    assert results["ex-multiple-units"] == [37.0]


def test_the_implementations_are_deterministic(executor: Executor) -> None:
    calls = [call for row in EXAMPLES for call in row["answers"]]
    first = [executor.run(call["name"], call["arguments"]).result for call in calls]
    second = [executor.run(call["name"], call["arguments"]).result for call in calls]
    assert first == second
