"""How many APIs ``apigen library check`` finds working, and how good its trial arguments are.

Baseline, measured in the same run: the rule the check had before (and the paper's
plain reading): one call per API, each required argument the schema's example, else its
default, else its first enum value, else a placeholder of its type ("example", 1).

1. Calls, through the real executor and exec-check's result policy (an error payload fails):
   ``sample_data/apis.jsonl`` and the library ``library from-python`` makes of
   ``sample_data/functions`` (no parameter descriptions). Answered APIs and calls made for
   the baseline, the new arguments with one try, and with the ``MAX_TRIES`` tries.
2. The BFCL and xLAM tools of ``../shared/corpora`` (no implementations): the share of
   argument sets that pass ``format_check``, the share of string arguments that are the bare
   "example", and the share of BFCL ground-truth arguments that the first set guesses exactly.

    python benchmarks/trial_arguments.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from apigen_cli.execution.calls import ExecutorOptions
from apigen_cli.execution.executor import Executor
from apigen_cli.library.check import Entry, call_each, read_entries
from apigen_cli.library.trial_arguments import MAX_TRIES, argument_sets
from apigen_cli.schema.tools import compile_tool, tool_parts
from apigen_cli.stages.exec_check import is_error_result
from apigen_cli.stages.format_check import format_check

PROJECT = Path(__file__).resolve().parent.parent
CORPORA = PROJECT.parent / "shared" / "corpora"
# --- the baseline: library check's argument rule before trial_arguments, verbatim -------------

_PLACEHOLDERS = {"string": "example", "integer": 1, "number": 1.0, "boolean": True, "null": None}
_FORMATS = {"date": "2024-01-15", "date-time": "2024-01-15T12:00:00Z", "email": "user@example.com", "uri": "https://example.com"}
_MAX_DEPTH = 8


def baseline_arguments(definition: dict[str, Any]) -> dict[str, Any]:
    """Arguments for one call: every required parameter, valued from its schema."""
    _body, _name, parameters = tool_parts(definition, 1)
    if not isinstance(parameters, dict):
        return {}
    if isinstance(parameters.get("properties"), dict):
        required = parameters.get("required") or []
        properties = parameters["properties"]
        return {key: baseline_value(properties[key]) for key in properties if key in required}
    # xLAM: required unless the type says optional or a default is given
    found = {}
    for key, spec in parameters.items():
        if not isinstance(spec, dict):
            continue
        kind = str(spec.get("type", ""))
        if kind.endswith("optional") or spec.get("default") not in (None, ""):
            continue
        found[key] = baseline_value({"type": _xlam_kind(kind), **{k: v for k, v in spec.items() if k != "type"}})
    return found


def _xlam_kind(text: str) -> Any:
    head = text.split("[")[0].split(",")[0].strip().lower()
    return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array", "dict": "object"}.get(
        head, head
    )


def baseline_value(schema: Any, depth: int = 0) -> Any:
    """A value for a schema: its example, default, const or first enum value, else a placeholder of its type."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "example"
    for key in ("examples",):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    for key in ("example", "default", "const"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combiner in ("anyOf", "oneOf"):
        options = schema.get(combiner)
        if isinstance(options, list) and options:
            usable = [option for option in options if not (isinstance(option, dict) and option.get("type") == "null")]
            return baseline_value((usable or options)[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind == "array" or (kind is None and "items" in schema):
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [baseline_value(item, depth + 1) for item in prefix]
        # Two items unless the schema says otherwise: a mean, a spread or a pair needs more than one.
        fewest, most = schema.get("minItems"), schema.get("maxItems")
        count = max(fewest if isinstance(fewest, int) else 2, 1)
        if isinstance(most, int) and most >= 0:
            count = min(count, most)
        item = baseline_value(schema.get("items", {"type": "string"}), depth + 1)
        return [_varied(item, index) for index in range(min(count, 8))]
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {key: baseline_value(value, depth + 1) for key, value in properties.items() if key in required}
    if kind in ("integer", "number"):
        low: Any = schema.get("minimum")
        value: Any = low if isinstance(low, (int, float)) and not isinstance(low, bool) else _PLACEHOLDERS[kind]
        high: Any = schema.get("maximum")
        if isinstance(high, (int, float)) and not isinstance(high, bool) and value > high:
            value = high
        return int(value) if kind == "integer" else value
    if kind == "string" and schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    return _PLACEHOLDERS.get(str(kind), "example")


def _varied(value: Any, index: int) -> Any:
    """The ``index``-th item of a placeholder array: numbers differ (1, 2, ...), so a spread is not zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value + index


# --- the measurement ------------------------------------------------------------------


def judge(result: Any) -> str | None:
    return "the result is an error payload" if is_error_result(result) else None


def answered_by_baseline(entries: list[Entry], executor: Executor) -> int:
    pendings = [executor.submit(entry.name, baseline_arguments(entry.definition)) for entry in entries]
    executor.wait(pendings)
    return sum(1 for pending in pendings if pending.outcome and pending.outcome.ok and not judge(pending.outcome.result))


def check_library(path: str, functions: str) -> None:
    with Executor(functions, ExecutorOptions(workers=1)) as executor:
        entries, _findings = read_entries(path)
        old = answered_by_baseline(entries, executor)
        rows = [("baseline (one call, placeholders)", old, len(entries))]
        for tries in (1, MAX_TRIES):
            fresh, _ = read_entries(path)
            started = time.perf_counter()
            call_each(fresh, executor, judge, tries)
            seconds = time.perf_counter() - started
            calls = sum(len(entry.attempts) for entry in fresh)
            label = f"trial arguments, {tries} {'try' if tries == 1 else 'tries'} ({seconds:.2f} s)"
            rows.append((label, sum(entry.status == "ok" for entry in fresh), calls))
    print(f"\n{path}: {len(entries)} APIs")
    for label, answered, calls in rows:
        print(
            f"  {label:<40} {answered:>3} answered ({answered / len(entries):.0%}), {calls} calls, x{answered / max(old, 1):.2f}"
        )


def corpus_tools() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each distinct tool with the ground-truth calls of it (BFCL's answers; none for xLAM)."""
    found: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for path in sorted((CORPORA / "bfcl").glob("*.jsonl")) + [CORPORA / "xlam" / "samples.jsonl"]:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            tools = json.loads(row["tools"]) if isinstance(row["tools"], str) else row["tools"]
            answers = row["answers"] if isinstance(row["answers"], list) and "bfcl" in str(path) else []
            for tool in tools:
                key = json.dumps(tool, sort_keys=True)
                entry = found.setdefault(key, (tool, []))
                name = tool.get("function", tool).get("name")
                entry[1].extend(answer["arguments"] for answer in answers if answer.get("name") == name)
    return list(found.values())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    return []


def corpus_figures() -> None:
    if not CORPORA.exists():
        print(f"\n{CORPORA} is absent: corpus figures skipped")
        return
    tools = corpus_tools()
    figures: dict[str, dict[str, float]] = {}
    for label in ("baseline", "trial arguments"):
        started = time.perf_counter()
        sets: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
        for position, (tool, _truth) in enumerate(tools, start=1):
            compiled = compile_tool(tool, position)
            made = [baseline_arguments(tool)] if label == "baseline" else argument_sets(compiled)
            sets.extend((tool, compiled.name, arguments) for arguments in made)
        seconds = time.perf_counter() - started
        rows = [
            {"id": str(index), "query": "q", "tools": [tool], "answers": [{"name": name, "arguments": arguments}]}
            for index, (tool, name, arguments) in enumerate(sets)
        ]
        passed = sum("rejected_by" not in row for row in format_check(rows))
        strings = [text for _tool, _name, arguments in sets for text in _strings(arguments)]
        matched = total = 0
        for position, (tool, truth) in enumerate(tools, start=1):
            first = baseline_arguments(tool) if label == "baseline" else argument_sets(compile_tool(tool, position))[0]
            for answer in truth[:1]:
                for key, value in first.items():
                    if key in answer:
                        total += 1
                        matched += json.dumps(answer[key], sort_keys=True) == json.dumps(value, sort_keys=True)
        figures[label] = {
            "sets": len(sets),
            "pass": passed / len(sets),
            "example": sum(text == "example" for text in strings) / max(len(strings), 1),
            "truth": matched / max(total, 1),
            "ms": seconds * 1000 / len(tools),
        }
    print(f"\nBFCL + xLAM: {len(tools)} distinct tools")
    for label, row in figures.items():
        print(
            f"  {label:<16} {row['sets']:>5.0f} argument sets, {row['pass']:.1%} pass format_check, "
            f'{row["example"]:.1%} of strings are "example", {row["truth"]:.1%} of ground-truth arguments guessed, '
            f"{row['ms']:.2f} ms a tool"
        )


def main() -> None:
    check_library(str(PROJECT / "sample_data" / "apis.jsonl"), str(PROJECT / "sample_data" / "functions"))
    with tempfile.TemporaryDirectory() as folder:
        made = Path(folder) / "from_python.jsonl"
        functions = str(PROJECT / "sample_data" / "functions")
        command = [sys.executable, "-m", "apigen_cli", "library", "from-python", functions, "-o", str(made), "-q"]
        subprocess.run(command, check=True)
        check_library(str(made), functions)
    corpus_figures()


if __name__ == "__main__":
    main()
