"""From verified rows to the files people fine-tune on: xlam, OpenAI chat fine-tuning, ShareGPT.

- ``xlam``: the shape of Salesforce/xlam-function-calling-60k: one JSON array of
  ``{"id", "query", "answers", "tools"}`` whose ``answers`` and ``tools`` are JSON
  *strings* (written as the released file writes them, so an xlam row read and written
  again comes back byte for byte), tools in the xLAM dialect. ``jsonl`` gives one row
  per line instead. An ``id`` made of digits is written as a number, as there; a row
  without an ``id`` is written without one.
- ``openai``: one chat fine-tuning example per line: ``{"messages": [user, assistant with
  tool_calls], "tools": [{"type": "function", "function": {...}}]}``; call ids are
  ``call_<row>_<n>`` (``row`` counts the rows written, from 0); arguments are JSON
  strings. With ``with_results``, one ``tool`` message per call follows, holding that
  call's ``execution_result``.
- ``sharegpt``: the ``conversations`` layout LLaMA-Factory reads: ``human`` then one
  ``function_call`` turn whose value is the call ``{"name", "arguments"}`` as JSON, or
  the JSON list of calls for a parallel row, with the tools as a JSON string of JSON
  Schema function definitions. LLaMA-Factory drops a conversation that ends on an
  ``observation`` turn, and rows hold no closing reply to put after one, so results
  are not exported in this format.

An irrelevance row (``kind: "irrelevance"``, no calls) becomes an assistant reply
without calls in every format: ``IRRELEVANCE_REPLY`` (xlam: ``answers`` is ``"[]"``).
Rows rejected by an earlier stage are left out and counted. What a conversion cannot
carry is handed to a callback as a ``dialects.Note``; nothing here prints.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..problems import RowProblem
from ..rows.jsonl import OutputFile, read_rows
from ..rows.records import ID, IRRELEVANCE, KIND, QUERY, REJECTED_BY, Row, calls_of, tools_of
from ..rows.runner import Destinations, Wrapper
from ..schema.dialects import Note, to_json_schema, to_openai, to_xlam

FORMATS = ("xlam", "openai", "sharegpt")
IRRELEVANCE_REPLY = "None of the available tools fits this request, so I cannot call any of them."
EXECUTION_RESULT = "execution_result"

NoteSink = Callable[[Note], None]


@dataclass
class ExportSummary:
    """What an export did: rows written, irrelevance rows among them, rows left out and why."""

    format: str
    exported: int = 0
    irrelevance: int = 0
    rejected: int = 0
    unusable: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        text = f"export: {self.exported} rows written as {self.format}"
        if self.irrelevance:
            text += f" ({self.irrelevance} irrelevance)"
        if self.rejected:
            text += f", {self.rejected} rejected rows left out"
        if self.unusable:
            reasons = ", ".join(f"{code} {count}" for code, count in self.unusable.most_common(5))
            text += f", {sum(self.unusable.values())} rows could not be exported ({reasons})"
        return text


class NoteCollector:
    """Gathers the notes of a run so that each kind is said once, with a count and its first place."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def __call__(self, note: Note) -> None:
        self.counts[note.kind] += 1
        self.first.setdefault(note.kind, note.where)

    def lines(self) -> list[str]:
        return [
            f"not carried: {kind} ({count} {'time' if count == 1 else 'times'}, first at {self.first[kind]})"
            for kind, count in self.counts.items()
        ]


def check_options(fmt: str, *, with_results: bool = False) -> None:
    """Refuse what cannot be written, before any row is read."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format `{fmt}`", hint="pass `--format xlam`, `--format openai` or `--format sharegpt`")
    if with_results and fmt == "sharegpt":
        raise ConfigError(
            "`--with-results` does not apply to `--format sharegpt`",
            hint="LLaMA-Factory drops a conversation that ends on an `observation` turn, and rows hold no closing reply; "
            "leave out `--with-results`, or use `--format openai --with-results`",
        )
    if with_results and fmt == "xlam":
        raise ConfigError("`--with-results` does not apply to `--format xlam`", hint="xlam rows hold no results; leave it out")


def export_rows(
    rows: Iterable[Row],
    fmt: str,
    *,
    with_results: bool = False,
    on_note: NoteSink | None = None,
    summary: ExportSummary | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one exported record per usable row, in input order; counts go into ``summary``."""
    check_options(fmt, with_results=with_results)
    counts = summary if summary is not None else ExportSummary(fmt)
    notes: list[Note] = []
    sink = on_note if on_note is not None else (lambda note: None)
    return _export(rows, _WRITERS[fmt], with_results, notes, sink, counts)


def _export(
    rows: Iterable[Row],
    write: Callable[[Row, int, bool, list[Note]], dict[str, Any]],
    with_results: bool,
    notes: list[Note],
    sink: NoteSink,
    summary: ExportSummary,
) -> Iterator[dict[str, Any]]:
    for row in rows:
        if REJECTED_BY in row:
            summary.rejected += 1
            continue
        notes.clear()
        try:
            record = write(row, summary.exported, with_results, notes)
        except RowProblem as error:
            summary.unusable[error.problem.code] += 1
            continue
        for note in notes:
            sink(note)
        summary.exported += 1
        if row.get(KIND) == IRRELEVANCE:
            summary.irrelevance += 1
        yield record


def export_file(
    where: Destinations,
    fmt: str,
    *,
    jsonl: bool = False,
    with_results: bool = False,
    on_note: NoteSink | None = None,
    wrap: Wrapper | None = None,
) -> ExportSummary:
    """Read ``where.input``, write the export to ``where.output`` and return the counts."""
    check_options(fmt, with_results=with_results)
    where.validate()
    summary = ExportSummary(fmt)
    rows: Iterator[Row] = read_rows(where.input, skip_bad_lines=where.skip_bad_lines)
    if wrap is not None:
        rows = wrap(rows)
    output = OutputFile(where.output, array=fmt == "xlam" and not jsonl)
    try:
        for record in export_rows(rows, fmt, with_results=with_results, on_note=on_note, summary=summary):
            output.write(record)
    finally:
        output.close()
    return summary


# --- one row in each format -----------------------------------------------------------


def _parts(row: Row) -> tuple[str, list[dict[str, Any]], list[Any], bool]:
    """The row's query, calls and tool definitions, and whether it is an irrelevance row."""
    tools = tools_of(row)
    if not isinstance(tools, list):
        raise RowProblem("invalid_tools", "`tools` should be a list of tool definitions")
    calls = calls_of(row)
    query = row.get(QUERY)
    if not isinstance(query, str) or not query.strip():
        raise RowProblem("empty_query", "the row has no usable `query`")
    irrelevance = row.get(KIND) == IRRELEVANCE
    if irrelevance and calls:
        raise RowProblem("unexpected_calls", "an irrelevance row must have no calls")
    if not irrelevance and not calls:
        raise RowProblem("no_calls", "`answers` is empty")
    return query, calls, tools, irrelevance


def _converted(tools: list[Any], convert: Callable[..., Any], notes: list[Note]) -> list[dict[str, Any]]:
    result = []
    for position, tool in enumerate(tools, start=1):
        converted = convert(tool, position=position)
        notes.extend(converted.notes)
        result.append(converted.tool)
    return result


def _xlam_id(value: Any) -> Any:
    """The id as the released file writes it: a number when it is one."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and (value == "0" or not value.startswith("0")):
        return int(value)
    return value


def xlam_record(row: Row, index: int = 0, with_results: bool = False, notes: list[Note] | None = None) -> dict[str, Any]:
    query, calls, tools, _irrelevance = _parts(row)
    record: dict[str, Any] = {}
    if row.get(ID) is not None:
        record[ID] = _xlam_id(row[ID])
    record[QUERY] = query
    record["answers"] = json.dumps(calls)
    record["tools"] = json.dumps(_converted(tools, to_xlam, notes if notes is not None else []))
    return record


def _arguments_text(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False)


def openai_record(row: Row, index: int = 0, with_results: bool = False, notes: list[Note] | None = None) -> dict[str, Any]:
    notes = notes if notes is not None else []
    query, calls, tools, irrelevance = _parts(row)
    messages: list[dict[str, Any]] = [{"role": "user", "content": query}]
    if irrelevance:
        messages.append({"role": "assistant", "content": IRRELEVANCE_REPLY})
    else:
        ids = [f"call_{index}_{number}" for number in range(len(calls))]
        tool_calls = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call["name"], "arguments": _arguments_text(call["arguments"])},
            }
            for call_id, call in zip(ids, calls, strict=True)
        ]
        messages.append({"role": "assistant", "tool_calls": tool_calls})
        if with_results:
            results = _results(row, len(calls), notes)
            if results is not None:
                messages.extend(
                    {"role": "tool", "tool_call_id": call_id, "content": text} for call_id, text in zip(ids, results, strict=True)
                )
    record: dict[str, Any] = {"messages": messages}
    converted = _converted(tools, to_openai, notes)
    if converted:
        record["tools"] = converted
    return record


def _results(row: Row, count: int, notes: list[Note]) -> list[str] | None:
    """Each call's execution result as the text of a tool message, or ``None`` when the row has none for every call."""
    entries = row.get(EXECUTION_RESULT)
    if not isinstance(entries, list) or len(entries) != count:
        notes.append(
            Note(
                "execution results of rows without one result per call (their tool messages are left out)", f"row `{row.get(ID)}`"
            )
        )
        return None
    return [_result_text(entry) for entry in entries]


def _result_text(entry: Any) -> str:
    value = entry
    if isinstance(entry, dict) and ("result" in entry or "error" in entry):  # exec-check's {name, ok, result | error}
        value = entry.get("result") if entry.get("ok", "error" not in entry) else {"error": entry.get("error")}
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def sharegpt_record(row: Row, index: int = 0, with_results: bool = False, notes: list[Note] | None = None) -> dict[str, Any]:
    query, calls, tools, irrelevance = _parts(row)
    conversations = [{"from": "human", "value": query}]
    if irrelevance:
        conversations.append({"from": "gpt", "value": IRRELEVANCE_REPLY})
    else:
        value = calls[0] if len(calls) == 1 else calls
        conversations.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
    converted = _converted(tools, to_json_schema, notes if notes is not None else [])
    return {"conversations": conversations, "tools": json.dumps(converted, ensure_ascii=False)}


_WRITERS: dict[str, Callable[[Row, int, bool, list[Note]], dict[str, Any]]] = {
    "xlam": xlam_record,
    "openai": openai_record,
    "sharegpt": sharegpt_record,
}
