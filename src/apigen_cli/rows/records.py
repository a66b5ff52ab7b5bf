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

from ..problems import Problem, RowProblem, show_value
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
MISSING_PAIR = "missing_pair"  # the reason of a pair a request asked for and the model did not write
KIND = "kind"
IRRELEVANCE = "irrelevance"
MESSAGES = "messages"

STAGE_KEEP_FIELDS = {
    "format_check": "keep_row_after_format_check",
    "exec_check": "keep_row_after_execution_check",
    "semantic_check": "keep_row_after_semantic_check",
}
#: stages of the multi-turn path, whose verdicts a single-turn row does not carry
MULTI_TURN_KEEP_FIELDS = {"trajectory_check": "keep_row_after_trajectory_check"}


def is_api_definition(row: Row) -> bool:
    """Is this an entry of an API library (parameters, no query or calls) rather than a row?"""
    if any(key in row for key in (QUERY, ANSWERS, "raw_output", REJECTED_BY, TOOLS)):
        return False
    function = row.get("function")
    return "parameters" in row or (isinstance(function, dict) and "parameters" in function)


def reject(row: Row, stage: str, problem: Problem) -> Row:
    """Mark ``row`` as rejected by ``stage`` with ``problem``'s code and message."""
    keep_field = STAGE_KEEP_FIELDS.get(stage) or MULTI_TURN_KEEP_FIELDS.get(stage)
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


def read_answers(row: Row, *, strict: bool = False) -> list[Any]:
    """The row's ``answers`` list (decoding a JSON string unless ``strict``), or a ``RowProblem``.

    The one reader of a row's calls, with ``read_call`` for each: format-check
    reads leniently and writes the canonical shape back; exec-check reads
    ``strict``ly, since a row it gets should be in that shape already.
    """
    answers = row.get(ANSWERS) if strict else decode_json_field(row, ANSWERS, "unparseable_output")
    if answers is None:
        raise RowProblem("no_calls", "the row has no `answers` list")
    if not isinstance(answers, list):
        raise RowProblem("invalid_answers", f"`answers` is a {type(answers).__name__}, not a list of calls")
    return answers


def read_call(call: Any, position: int, *, strict: bool = False) -> dict[str, Any]:
    """One call as ``{"name", "arguments", ...}`` (the same dict when already so), or a ``RowProblem``.

    Unless ``strict``, OpenAI's ``{"function": {"name", "arguments"}}`` shape and
    arguments held as a JSON string (or missing) are read too.
    """
    if type(call) is not dict:
        raise RowProblem("malformed_call", f"call {position} is not an object with a `name`: {show_value(call)}")
    shaped: dict[str, Any] = call
    if not strict and shaped.get("name") is None and type(shaped.get("function")) is dict:  # OpenAI's tool_calls shape
        function = shaped["function"]
        shaped = {"name": function.get("name"), "arguments": function.get("arguments", {})}
    name = shaped.get("name")
    if type(name) is not str or not name:
        raise RowProblem("malformed_call", f"call {position} is not an object with a `name`: {show_value(shaped)}")
    arguments = shaped.get("arguments")
    if type(arguments) is dict:
        return shaped
    if arguments is None:
        arguments = {}
    elif isinstance(arguments, str) and not strict:
        try:
            arguments = loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            raise RowProblem(
                "malformed_call", f"call {position} `{name}`: `arguments` is a string that is not valid JSON"
            ) from None
    if not isinstance(arguments, dict):
        raise RowProblem("malformed_call", f"call {position} `{name}`: `arguments` is not an object: {show_value(arguments)}")
    return {**shaped, "arguments": arguments}


def calls_of(row: Row) -> list[dict[str, Any]]:
    """The row's calls as fresh ``{"name", "arguments"}`` dicts, whatever shape they came in (rows already checked)."""
    calls = []
    for position, call in enumerate(read_answers(row), start=1):
        call = read_call(call, position)
        calls.append({"name": call["name"], "arguments": call["arguments"]})
    return calls


def is_conversation(row: Row) -> bool:
    """Whether ``row`` is a multi-turn conversation (chat ``messages``) rather than a single-turn row (``query``, ``answers``)."""
    return isinstance(row.get(MESSAGES), list) and QUERY not in row and ANSWERS not in row


def verdicts_lacking(row: Row) -> list[str]:
    """The check verdicts ``row`` lacks (not ``true``); none for a negative made from a row that had them all.

    A conversation is verified by the trajectory check alone: replayed on its environment, it
    left the gold state and told what it had to (single-turn's three checks do not apply to it).
    """
    if row.get(KIND) == IRRELEVANCE and row.get("source_verified") is True:
        return []
    fields = MULTI_TURN_KEEP_FIELDS.values() if is_conversation(row) else STAGE_KEEP_FIELDS.values()
    return [field for field in fields if row.get(field) is not True]


def passed_every_check(row: Row) -> bool:
    """Whether ``row`` passed format, execution and semantic checks: what makes it training data."""
    return not verdicts_lacking(row)
