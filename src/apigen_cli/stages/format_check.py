"""Stage 2 of the pipeline, the format check: pure, no network, no processes.

A row passes when its query is a non-empty string and every call in ``answers``
names a tool the row offers, with every required argument, no unknown
argument, and values of the declared types (and within any enum or range).
Rows that still hold the model's raw text (``raw_output``) are parsed first;
a list of ``{query, answers}`` pairs becomes one row per pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..problems import TOO_DEEP, TOO_DEEP_TEXT, Problem, RowProblem, show_value
from ..rows.records import (
    ANSWERS,
    ID,
    IRRELEVANCE,
    KIND,
    QUERY,
    RAW_OUTPUT,
    REJECTED_BY,
    TOOLS,
    Row,
    decode_json_field,
    ensure_id,
    read_answers,
    read_call,
    reject,
    tools_of,
)
from ..schema.tools import CatalogueCache, Tool
from .extract import MISSING, NOT_FOUND, TOO_DEEP_JSON, find_json, pairs_of

STAGE = "format_check"
KEEP_FIELD = "keep_row_after_format_check"


def format_check(rows: Iterable[Row], *, cache: CatalogueCache | None = None) -> Iterator[Row]:
    """Check each row and yield it with its verdict; rows rejected earlier pass through untouched."""
    catalogues = cache if cache is not None else CatalogueCache()
    for row in rows:
        if REJECTED_BY in row:
            yield row
        elif row.get(ANSWERS) is None and RAW_OUTPUT in row:
            for pair_row in split_raw_output(row):
                yield pair_row if REJECTED_BY in pair_row else check_row(pair_row, catalogues)
        else:
            yield check_row(row, catalogues)


def check_row(row: Row, catalogues: CatalogueCache) -> Row:
    """Give one row its format verdict (in place) and return it."""
    problem = find_problem(row, catalogues)
    if problem is not None:
        return reject(row, STAGE, problem)
    row[KEEP_FIELD] = True
    return row


def find_problem(row: Row, catalogues: CatalogueCache) -> Problem | None:
    """The first thing wrong with the row, or ``None``. Normalises fields in place."""
    try:
        tools = row.get(TOOLS)
        catalogue = catalogues.get(tools if type(tools) is list else tools_of(row))
        answers = row.get(ANSWERS)
        if type(answers) is str:
            answers = decode_json_field(row, ANSWERS, "unparseable_output")
    except RowProblem as error:
        ensure_id(row)
        return error.problem
    row_id = row.get(ID)
    if type(row_id) is not str or not row_id:
        ensure_id(row)
    query = row.get(QUERY)
    if not isinstance(query, str):
        if query is None:
            return Problem("empty_query", "the row has no `query`")
        return Problem("invalid_query", f"`query` should be a string, got {show_value(query)}")
    if not query.strip():
        return Problem("empty_query", "`query` is empty")
    if answers is None or not isinstance(answers, list):
        try:
            answers = read_answers(row)
        except RowProblem as error:
            return error.problem
    if row.get(KIND) == IRRELEVANCE:
        if answers:
            return Problem("unexpected_calls", "an irrelevance row must have no calls, but `answers` holds some")
        return None
    if not answers:
        return Problem("no_calls", "`answers` is an empty list")
    for position, call in enumerate(answers, start=1):
        problem = _check_call(answers, position, call, catalogue)
        if problem is not None:
            return problem
    return None


def _check_call(answers: list[Any], position: int, call: Any, catalogue: dict[str, Tool]) -> Problem | None:
    try:
        checked = read_call(call, position)
    except RowProblem as error:
        return error.problem
    if checked is not call:
        answers[position - 1] = checked  # written back in the canonical shape
    name, arguments = checked["name"], checked["arguments"]
    tool = catalogue.get(name)
    if tool is None:
        offered = ", ".join(f"`{known}`" for known in catalogue) or "none"
        return Problem("unknown_function", f"call {position} names `{name}`, which the row does not offer (offered: {offered})")
    problem = tool.parameters.check_members(arguments, "")
    if problem is not None:
        return Problem(problem.code, f"call {position} `{name}`: {problem.message}")
    return None


# --- the model's raw text -------------------------------------------------------------


def split_raw_output(row: Row) -> list[Row]:
    """Turn a row holding ``raw_output`` into one row per generated pair.

    When the text holds no usable JSON, the row comes back rejected as
    ``unparseable_output`` with its ``raw_output`` kept, so it can be inspected.
    """
    raw = row[RAW_OUTPUT]
    parsed = find_json(raw, if_too_deep=TOO_DEEP_JSON) if isinstance(raw, str) else raw
    if parsed is TOO_DEEP_JSON:
        ensure_id(row)
        return [reject(row, STAGE, Problem(TOO_DEEP, f"`raw_output` holds JSON {TOO_DEEP_TEXT}"))]
    pairs = None if parsed is NOT_FOUND else pairs_of(parsed)
    if not pairs:
        ensure_id(row)
        if parsed is NOT_FOUND:
            message = "`raw_output` holds no JSON"
        else:
            message = f"`raw_output` holds JSON, but not {{query, answers}} pairs nor calls: {show_value(parsed)}"
        return [reject(row, STAGE, Problem("unparseable_output", message))]
    parent_id = ensure_id(row)
    base = {key: value for key, value in row.items() if key != RAW_OUTPUT}
    rows = []
    for index, (query, answers) in enumerate(pairs):
        pair_row = dict(base)
        if len(pairs) > 1:
            pair_row["id"] = f"{parent_id}-{index}"
        if query is not MISSING:
            pair_row[QUERY] = query
        pair_row[ANSWERS] = None if answers is MISSING else answers
        rows.append(pair_row)
    return rows
