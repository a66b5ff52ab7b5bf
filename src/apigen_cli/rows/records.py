"""The row: the one JSON object per line that every stage reads and writes.

Canonical fields (see the README's "Record format"):

- ``id``: a string; kept when given (numbers become strings), else derived from the content;
- ``tools``: the tool definitions offered for this row, as a real list;
- ``query``: the user's request;
- ``answers``: a list of ``{"name", "arguments"}`` calls;
- what the checks add: ``keep_row_after_format_check``, ``execution_result``,
  ``keep_row_after_execution_check``, ``thought``, ``keep_row_after_semantic_check``;
- on a rejected row: ``rejected_by`` (the stage), ``reason`` (a stable code) and
  ``reason_detail`` (a message naming the call and the argument).

Rows people already have are read as they are: xlam-function-calling-60k rows
(``answers`` and ``tools`` as JSON strings), distilabel's APIGen columns
(``func_name``, ``func_desc``, ``answers`` as a JSON string) and BFCL-like rows.
Keys a stage does not know pass through untouched.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..problems import Problem, RowProblem
from .jsonl import loads

Row = dict[str, Any]

ID = "id"
TOOLS = "tools"
QUERY = "query"
ANSWERS = "answers"
RAW_OUTPUT = "raw_output"
REJECTED_BY = "rejected_by"
REASON = "reason"
REASON_DETAIL = "reason_detail"
KIND = "kind"
IRRELEVANCE = "irrelevance"

STAGE_KEEP_FIELDS = {
    "format_check": "keep_row_after_format_check",
    "exec_check": "keep_row_after_execution_check",
    "semantic_check": "keep_row_after_semantic_check",
}


def reject(row: Row, stage: str, problem: Problem) -> Row:
    """Mark ``row`` as rejected by ``stage`` with ``problem``'s code and message."""
    keep_field = STAGE_KEEP_FIELDS.get(stage)
    if keep_field is not None:
        row[keep_field] = False
    row[REJECTED_BY] = stage
    row[REASON] = problem.code
    row[REASON_DETAIL] = problem.message
    return row


def decode_json_field(row: Row, field: str, code: str) -> Any:
    """The value of ``field``, decoding it first when it holds JSON as a string (xlam, distilabel)."""
    value = row.get(field)
    if isinstance(value, str):
        try:
            value = loads(value)
        except (ValueError, RecursionError) as error:
            raise RowProblem(code, f"`{field}` holds a string that is not valid JSON ({error})") from None
        row[field] = value
    return value


def tools_of(row: Row) -> Any:
    """The row's tool definitions as a list, reading distilabel's ``func_name``/``func_desc`` when that is all there is."""
    if TOOLS in row:
        return decode_json_field(row, TOOLS, "invalid_tools")
    name = row.get("func_name")
    if isinstance(name, str) and name:
        tool = {"name": name, "description": str(row.get("func_desc") or "")}
        row[TOOLS] = [tool]
        return row[TOOLS]
    raise RowProblem("no_tools", "the row has no `tools` (nor distilabel's `func_name`/`func_desc`)")


def content_id(*parts: Any) -> str:
    """A stable id from content: the same query, calls and tools always give the same id."""
    data = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def ensure_id(row: Row) -> str:
    """Give the row a string ``id``: keep the one given, else derive one from its content."""
    value = row.get(ID)
    if isinstance(value, str) and value:
        return value
    if value is not None and not isinstance(value, (dict, list)) and value != "":
        row[ID] = str(value)
    else:
        row[ID] = content_id(row.get(QUERY), row.get(ANSWERS), row.get(RAW_OUTPUT), row.get(TOOLS))
    return row[ID]  # type: ignore[no-any-return]


def calls_of(row: Row) -> list[dict[str, Any]]:
    """The row's calls as fresh ``{"name", "arguments"}`` dicts, whatever shape they came in.

    Reads ``answers`` held as a JSON string (xlam, distilabel), OpenAI's
    ``{"function": {"name", "arguments"}}`` calls and arguments held as JSON strings.
    Raises ``RowProblem`` when the calls cannot be read.
    """
    answers = decode_json_field(row, ANSWERS, "unparseable_output")
    if answers is None:
        raise RowProblem("no_calls", "the row has no `answers`")
    if not isinstance(answers, list):
        raise RowProblem("invalid_answers", f"`answers` should be a list of calls, got {type(answers).__name__}")
    calls = []
    for position, call in enumerate(answers, start=1):
        if isinstance(call, dict) and "name" not in call and isinstance(call.get("function"), dict):
            call = call["function"]
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise RowProblem("malformed_call", f"call {position} should be an object with a `name` and `arguments`")
        arguments = call.get("arguments")
        if arguments is None:
            arguments = {}
        elif isinstance(arguments, str):
            try:
                arguments = loads(arguments) if arguments.strip() else {}
            except (ValueError, RecursionError):
                message = f"call {position} `{call['name']}`: `arguments` is a string that is not valid JSON"
                raise RowProblem("malformed_call", message) from None
        if not isinstance(arguments, dict):
            raise RowProblem("malformed_call", f"call {position} `{call['name']}`: `arguments` should be an object")
        calls.append({"name": call["name"], "arguments": arguments})
    return calls
