"""From verified rows to the files people fine-tune on: xlam, OpenAI chat fine-tuning, chat messages, ShareGPT.

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
- ``messages``: the layout transformers' ``apply_chat_template(messages, tools=...)`` and
  TRL read: ``{"messages": [...], "tools": [...]}`` with the call ``arguments`` as JSON
  *objects*. Chat templates that write ``arguments | tojson`` (Qwen2.5, Mistral, Llama 3.1)
  encode a string a second time, so the OpenAI layout teaches those models to emit quoted
  JSON; this one does not. Call ids are nine letters and digits (``c`` then the row in
  base 36 on five places, then the call on three), as Mistral's templates demand. An
  assistant turn that calls has ``content: ""`` (templates that add it to a string fail on
  ``null`` or a missing key). With ``with_results``, each ``tool`` message carries
  ``tool_call_id`` and ``name``, and a row's ``final_answer`` (a string), when it has one,
  becomes the closing assistant turn. ``string_arguments`` writes the arguments as JSON
  strings instead, for the templates that add them to a string (DeepSeek's).
- ``sharegpt``: the ``conversations`` layout LLaMA-Factory reads: ``human`` then one
  ``function_call`` turn whose value is the call ``{"name", "arguments"}`` as JSON, or
  the JSON list of calls for a parallel row, with the tools as a JSON string of JSON
  Schema function definitions. LLaMA-Factory drops a conversation that ends on an
  ``observation`` turn, and rows hold no closing reply to put after one, so results
  are not exported in this format.

An irrelevance row (``kind: "irrelevance"``, no calls) becomes an assistant reply
without calls in every format: ``IRRELEVANCE_REPLY`` (xlam: ``answers`` is ``"[]"``).
Rows rejected by an earlier stage are left out and counted. ``export_file`` makes training
data only of rows that passed all three checks (their ``keep_row_after_*`` verdicts are
``true``): a row without them stops it with an error, unless ``unverified`` is given, when
such rows are written as they are and counted apart. What a conversion cannot
carry is handed to a callback as a ``dialects.Note``; nothing here prints.

A multi-turn conversation row (chat ``messages``, see ``rows.records.is_conversation``) is
written by ``export_conversation`` in ``openai``, ``messages`` or ``sharegpt``; it is verified
when ``trajectory-check`` kept it. Preference pairs of conversations are ``export_preference``'s.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError, InputError
from ..problems import RowProblem
from ..rows.jsonl import STDIO, OutputFile, read_rows
from ..rows.records import (
    ID,
    IRRELEVANCE,
    KIND,
    QUERY,
    REJECTED_BY,
    TOOLS,
    Row,
    calls_of,
    is_conversation,
    tools_of,
    verdicts_lacking,
)
from ..rows.replacement import Kept, replaced_together
from ..rows.runner import Destinations, Wrapper, refusing_api_definitions
from ..schema.dialects import Note, to_json_schema, to_openai, to_xlam
from ..wording import counted
from .export_conversation import WRITERS as CONVERSATION_WRITERS
from .export_shared import EnvironmentLibrary, WriteOptions, call_id, load_environment_library

FORMATS = ("xlam", "openai", "messages", "sharegpt")
CHAT_FORMATS = ("openai", "messages")  # what a chat template can render
IRRELEVANCE_REPLY = "None of the available tools fits this request, so I cannot call any of them."
EXECUTION_RESULT = "execution_result"
FINAL_ANSWER = "final_answer"

NoteSink = Callable[[Note], None]


@dataclass
class ExportSummary:
    """What an export did: rows written, irrelevance rows among them, rows left out and why."""

    format: str
    exported: int = 0
    unverified: int = 0  # exported rows that had not passed every check (``unverified`` given)
    irrelevance: int = 0
    conversations: int = 0  # exported rows that were multi-turn conversations
    samples: int = 0  # records written for them with ``per_turn``: one per assistant turn
    rejected: int = 0
    unusable: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        text = f"export: {counted(self.exported, 'row')} written as {self.format}"
        details = [f"{self.irrelevance} irrelevance"] if self.irrelevance else []
        if self.conversations:
            details.append(counted(self.conversations, "conversation"))
        if self.samples:
            details.append(f"{counted(self.samples, 'sample')}, one per assistant turn")
        if self.unverified:
            details.append(f"{self.unverified} never verified")
        if details:
            text += f" ({', '.join(details)})"
        if self.rejected:
            text += f", {counted(self.rejected, 'rejected row')} left out"
        if self.unusable:
            reasons = ", ".join(f"{code} {count}" for code, count in self.unusable.most_common(5))
            text += f", {counted(sum(self.unusable.values()), 'row')} could not be exported ({reasons})"
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


def check_options(
    fmt: str, *, with_results: bool = False, system: str | None = None, string_arguments: bool = False, per_turn: bool = False
) -> None:
    """Refuse what cannot be written, before any row is read."""
    if fmt not in FORMATS:
        raise ConfigError(
            f"unknown export format `{fmt}`",
            hint="pass `--format xlam`, `--format openai`, `--format messages` or `--format sharegpt`",
        )
    if system is not None and fmt not in CHAT_FORMATS:
        raise ConfigError(
            f"`--system` does not apply to `--format {fmt}`", hint="use it with `--format messages` or `--format openai`"
        )
    if string_arguments and fmt != "messages":
        raise ConfigError(
            f"`--string-arguments` does not apply to `--format {fmt}`",
            hint="it is for `--format messages` (`--format openai` always writes arguments as JSON strings)",
        )
    if with_results and fmt == "sharegpt":
        raise ConfigError(
            "`--with-results` does not apply to `--format sharegpt`",
            hint="LLaMA-Factory drops a conversation that ends on an `observation` turn, and rows hold no closing reply; "
            "leave out `--with-results`, or use `--format openai --with-results`",
        )
    if with_results and fmt == "xlam":
        raise ConfigError("`--with-results` does not apply to `--format xlam`", hint="xlam rows hold no results; leave it out")
    if per_turn and fmt == "xlam":
        raise ConfigError(
            "`--per-turn` does not apply to `--format xlam`",
            hint="it splits conversations: pass `--format messages`, `--format openai` or `--format sharegpt`",
        )


def export_rows(
    rows: Iterable[Row],
    fmt: str,
    *,
    with_results: bool = False,
    system: str | None = None,
    string_arguments: bool = False,
    per_turn: bool = False,
    library: EnvironmentLibrary | None = None,
    on_note: NoteSink | None = None,
    summary: ExportSummary | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the exported records of every usable row, in input order; counts go into ``summary``.

    A single-turn row gives one record; a conversation row one, or with ``per_turn`` one per
    assistant turn (``export_conversation``), its tools taken from ``library`` when it holds none.
    """
    check_options(fmt, with_results=with_results, system=system, string_arguments=string_arguments, per_turn=per_turn)
    counts = summary if summary is not None else ExportSummary(fmt)
    notes: list[Note] = []
    sink = on_note if on_note is not None else (lambda note: None)
    options = WriteOptions(with_results, system, string_arguments, per_turn, library)
    return _export(rows, fmt, options, notes, sink, counts)


def _export(
    rows: Iterable[Row],
    fmt: str,
    options: WriteOptions,
    notes: list[Note],
    sink: NoteSink,
    summary: ExportSummary,
) -> Iterator[dict[str, Any]]:
    for row in rows:
        if REJECTED_BY in row:
            summary.rejected += 1
            continue
        notes.clear()
        conversation = is_conversation(row)
        try:
            if conversation:
                if fmt not in CONVERSATION_WRITERS:
                    raise RowProblem("not_single_turn", f"a conversation cannot be written as `{fmt}`")
                records = CONVERSATION_WRITERS[fmt](row, summary.exported, options, notes)
            else:
                records = iter([_WRITERS[fmt](row, summary.exported, options, notes)])
        except RowProblem as error:
            summary.unusable[error.problem.code] += 1
            continue
        for note in notes:
            sink(note)
        summary.exported += 1
        if verdicts_lacking(row):
            summary.unverified += 1
        if row.get(KIND) == IRRELEVANCE:
            summary.irrelevance += 1
        if conversation:
            summary.conversations += 1
        for record in records:
            if conversation and options.per_turn:
                summary.samples += 1
            yield record


def export_file(
    where: Destinations,
    fmt: str,
    *,
    jsonl: bool = False,
    with_results: bool = False,
    system: str | None = None,
    string_arguments: bool = False,
    output_format: str = "json",
    render_check: RecordCheck | None = None,
    on_note: NoteSink | None = None,
    wrap: Wrapper | None = None,
    unverified: bool = False,
    per_turn: bool = False,
    tools: str | None = None,
) -> ExportSummary:
    """Read ``where.input``, write the export to ``where.output`` and return the counts.

    Rows must have passed all three checks, else the export stops with an ``InputError``
    naming the first that has not; ``unverified`` writes such rows too, counting them.

    ``output_format`` is ``json`` (JSON Lines, or xlam's array) or ``parquet``. Each record
    written first passes ``render_check`` when given (see ``chat_template``); a record it
    refuses is counted and named, and the export ends in a ``RenderCheckFailed``.

    Conversation rows (multi-turn) must have passed the trajectory check instead, and take
    their tools from ``tools`` (the environment's API library) when they hold none.
    """
    check_options(fmt, with_results=with_results, system=system, string_arguments=string_arguments, per_turn=per_turn)
    check_output_format(fmt, output_format, jsonl=jsonl, output=where.output)
    if render_check is not None and fmt not in CHAT_FORMATS:
        raise ConfigError(
            f"`--render-check` does not apply to `--format {fmt}`",
            hint="a chat template renders `--format messages` or `--format openai`; pass one of them",
        )
    where.validate()
    library = None
    if tools is not None:
        library = load_environment_library(tools)
    summary = ExportSummary(fmt)
    # The output first: a missing pyarrow is said before any input is opened.
    output = _open_output(where.output, fmt, output_format, jsonl, string_arguments)
    rows: Iterator[Row] = refusing_api_definitions(read_rows(where.input, skip_bad_lines=where.skip_bad_lines), where.input)
    if not unverified:
        rows = requiring_verdicts(rows, where.input)
    rows = checking_conversations(rows, where.input, fmt, library is not None)
    if wrap is not None:
        rows = wrap(rows)
    with replaced_together(output):  # written whole or not at all: an earlier file stays as it was
        records = export_rows(
            rows,
            fmt,
            with_results=with_results,
            system=system,
            string_arguments=string_arguments,
            per_turn=per_turn,
            library=library,
            on_note=on_note,
            summary=summary,
        )
        for record in records:
            if render_check is not None:
                render_check(record, summary.exported)
            output.write(record)
        if render_check is not None:
            render_check.finish()
    return summary


def requiring_verdicts(rows: Iterable[Row], source: str) -> Iterator[Row]:
    """``rows``, stopped at the first kept one that has not passed the format, execution and semantic checks.

    A generated row that never ran, or a hand-made one calling a tool it does not offer,
    would otherwise become training data without a word.
    """
    for number, row in enumerate(rows, start=1):
        if REJECTED_BY not in row:
            lacking = verdicts_lacking(row)
            if lacking:
                kept = (
                    "the conversations `apigen trajectory-check`"
                    if is_conversation(row)
                    else "the rows `apigen run` or `apigen semantic-check`"
                )
                raise InputError(
                    f"row {number} of {_shown(source)} has not passed the checks: it has no "
                    + ", ".join(f"`{field}: true`" for field in lacking),
                    hint=f"export {kept} kept; or pass `--unverified` "
                    "to export rows that were never checked, giving up the verification",
                )
        yield row


def checking_conversations(rows: Iterable[Row], source: str, fmt: str, library: bool) -> Iterator[Row]:
    """``rows``, stopped at the first conversation the export cannot write whole: in xlam, or with no tools."""
    for number, row in enumerate(rows, start=1):
        if REJECTED_BY not in row and is_conversation(row):
            if fmt == "xlam":
                raise InputError(
                    f"row {number} of {_shown(source)} is a conversation, which `--format xlam` cannot hold",
                    hint="pass `--format messages`, `--format openai` or `--format sharegpt`",
                )
            if TOOLS not in row and not library:
                raise InputError(
                    f"row {number} of {_shown(source)} is a conversation without `tools`, "
                    "and no `--tools` names the environment's library",
                    hint="pass `--tools FILE`, the environment's API library as "
                    "`apigen library from-python FILE_OR_FOLDER --class NAME` writes it",
                )
        yield row


def _shown(source: str) -> str:
    return "standard input" if source == STDIO else f"`{source}`"


class RecordCheck(Protocol):
    """Sees every record before it is written (``number`` counts from 1); ``finish`` raises when any failed."""

    def __call__(self, record: dict[str, Any], number: int) -> None: ...

    def finish(self) -> None: ...

    def line(self) -> str: ...


class RecordSink(Protocol):
    def write(self, record: Any) -> None: ...

    def close(self) -> None: ...

    def abandon(self) -> Kept | None: ...


OUTPUT_FORMATS = ("json", "parquet")


def check_output_format(fmt: str, output_format: str, *, jsonl: bool, output: str) -> None:
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(
            f"unknown output format `{output_format}`", hint="pass `--output-format json` or `--output-format parquet`"
        )
    if output_format == "parquet":
        if jsonl:
            raise ConfigError("`--jsonl` does not apply to `--output-format parquet`", hint="leave out one of them")
        if output == "-":
            raise ConfigError(
                "Parquet is not written to standard output (it is binary, and its index comes last)",
                hint="name a file with `-o FILE.parquet`",
            )


def _open_output(path: str, fmt: str, output_format: str, jsonl: bool, string_arguments: bool) -> RecordSink:
    if output_format == "parquet":
        from .export_parquet import ParquetOutput  # pyarrow loads only when Parquet is asked for

        return ParquetOutput(path, fmt, string_arguments=string_arguments)
    return OutputFile(path, array=fmt == "xlam" and not jsonl)


# --- one row in each format -----------------------------------------------------------

Writer = Callable[[Row, int, WriteOptions, list[Note]], dict[str, Any]]


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


def xlam_record(
    row: Row, index: int = 0, options: WriteOptions = WriteOptions(), notes: list[Note] | None = None
) -> dict[str, Any]:
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


def _opening(query: str, options: WriteOptions) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [] if options.system is None else [{"role": "system", "content": options.system}]
    messages.append({"role": "user", "content": query})
    return messages


def openai_record(
    row: Row, index: int = 0, options: WriteOptions = WriteOptions(), notes: list[Note] | None = None
) -> dict[str, Any]:
    notes = notes if notes is not None else []
    query, calls, tools, irrelevance = _parts(row)
    messages = _opening(query, options)
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
        if options.with_results:
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


def messages_record(
    row: Row, index: int = 0, options: WriteOptions = WriteOptions(), notes: list[Note] | None = None
) -> dict[str, Any]:
    """The row as transformers and TRL read a conversation: arguments as objects, tools as OpenAI tool schemas."""
    notes = notes if notes is not None else []
    query, calls, tools, irrelevance = _parts(row)
    messages = _opening(query, options)
    if irrelevance:
        messages.append({"role": "assistant", "content": IRRELEVANCE_REPLY})
    else:
        ids = [call_id(index, number) for number in range(len(calls))]
        tool_calls = [
            {
                "id": identifier,
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": _arguments_text(call["arguments"]) if options.string_arguments else call["arguments"],
                },
            }
            for identifier, call in zip(ids, calls, strict=True)
        ]
        messages.append({"role": "assistant", "content": "", "tool_calls": tool_calls})
        results = _results(row, len(calls), notes) if options.with_results else None
        if results is not None:
            messages.extend(
                {"role": "tool", "tool_call_id": identifier, "name": call["name"], "content": text}
                for identifier, call, text in zip(ids, calls, results, strict=True)
            )
            final = row.get(FINAL_ANSWER)
            if isinstance(final, str) and final.strip():
                messages.append({"role": "assistant", "content": final})
    return {"messages": messages, "tools": _converted(tools, to_openai, notes)}


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


def sharegpt_record(
    row: Row, index: int = 0, options: WriteOptions = WriteOptions(), notes: list[Note] | None = None
) -> dict[str, Any]:
    query, calls, tools, irrelevance = _parts(row)
    conversations = [{"from": "human", "value": query}]
    if irrelevance:
        conversations.append({"from": "gpt", "value": IRRELEVANCE_REPLY})
    else:
        value = calls[0] if len(calls) == 1 else calls
        conversations.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
    converted = _converted(tools, to_json_schema, notes if notes is not None else [])
    return {"conversations": conversations, "tools": json.dumps(converted, ensure_ascii=False)}


_WRITERS: dict[str, Writer] = {
    "xlam": xlam_record,
    "openai": openai_record,
    "messages": messages_record,
    "sharegpt": sharegpt_record,
}
