"""Exported records as a Parquet file, the form the Hugging Face Hub serves and previews.

Each format has one fixed Arrow schema for single-turn rows (and one for conversations, one
for their per-turn samples, see ``shapes_of``), so a file never depends on which rows came
first and never fails on a value whose type changes from row to row. Two things in these records
have no fixed shape: a tool's ``parameters`` (a JSON Schema) and a call's ``arguments`` in
``messages`` (an object whose keys are the tool's). Inferring a struct for them would merge
the keys of every tool into one sparse struct and fill the missing ones with ``null`` (a
model trained on that learns to send ``"unit": null``), or fail where two tools give one
key different types. They are written as JSON text in columns of Arrow's JSON type (the
canonical ``arrow.json`` extension, stored with Parquet's JSON logical type), which says
to a reader that the text is JSON; everything else is a plain typed column. ``id`` is a
string column. Rows are written in row groups of ``ROW_GROUP`` as they come.

pyarrow is an optional extra (``pip install -e '.[parquet]'``): it is large, and
only this output needs it.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from ..errors import ConfigError, InputError
from ..rows.replacement import Kept, Replacement

ROW_GROUP = 1000
JSON = "json"  # a place in a shape whose value is written as JSON text


def _pyarrow() -> tuple[ModuleType, ModuleType]:
    """pyarrow and pyarrow.parquet, or an error saying how to install them."""
    try:
        import pyarrow  # pyarrow ships no type information: see [[tool.mypy.overrides]]
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(
            "`--output-format parquet` needs pyarrow, which is not installed",
            hint="install it with `pip install -e '.[parquet]'`, or leave out `--output-format parquet`",
        ) from None
    return pyarrow, pyarrow.parquet


# The shape of each format's record: a dict is a struct, a one-item list a list, ``str``,
# ``int`` and ``bool`` the plain types, JSON a value kept as JSON text.
_FUNCTION = {"name": str, "description": str, "parameters": JSON}
_TOOLS = [{"type": str, "function": _FUNCTION}]


def _message(arguments: Any) -> dict[str, Any]:
    return {
        "role": str,
        "content": str,
        "tool_calls": [{"id": str, "type": str, "function": {"name": str, "arguments": arguments}}],
        "tool_call_id": str,
        "name": str,
    }


def shapes_of(fmt: str, *, string_arguments: bool = False) -> list[dict[str, Any]]:
    """The shapes a format's records come in: single-turn rows first, then whole conversations, then per-turn samples.

    A conversation's ``call_labels`` are JSON text: their keys are the trajectory check's, and may grow.
    """
    if fmt == "xlam":
        return [{"id": str, "query": str, "answers": str, "tools": str}]
    if fmt == "sharegpt":
        turns = {"conversations": [{"from": str, "value": str}], "tools": str}
        labelled = {**turns, "system": str, "call_labels": JSON}
        return [turns, {"id": str, **labelled}, {"id": str, "turn": int, **labelled}]
    message = _message(str if string_arguments or fmt == "openai" else JSON)
    chat = {"messages": [message], "tools": _TOOLS}
    if fmt == "openai":
        sample = {"messages": [{**message, "weight": int}], "tools": _TOOLS}
    else:
        sample = {"prompt": [message], "completion": [message], "tools": _TOOLS}
    return [chat, {"id": str, **chat, "call_labels": JSON}, {"id": str, "turn": int, **sample, "call_labels": JSON}]


def arrow_type(shape: Any, *, storage: bool = False) -> Any:
    """The Arrow type of ``shape``; with ``storage``, JSON places are plain strings (what the rows are built as)."""
    pa, _pq = _pyarrow()
    if shape is JSON:
        return pa.string() if storage else pa.json_(pa.string())
    if isinstance(shape, dict):
        return pa.struct([(key, arrow_type(value, storage=storage)) for key, value in shape.items()])
    if isinstance(shape, list):
        return pa.list_(arrow_type(shape[0], storage=storage))
    return {str: pa.string(), int: pa.int64(), bool: pa.bool_()}[shape]


def schema_of(shape: dict[str, Any], *, storage: bool = False) -> Any:
    pa, _pq = _pyarrow()
    return pa.schema([(key, arrow_type(value, storage=storage)) for key, value in shape.items()])


class ShapeError(ValueError):
    """A record holds a key or a type its format's Parquet schema has no place for (a bug in a writer)."""


def to_storage(value: Any, shape: Any, where: str) -> Any:
    """``value`` ready for Arrow: JSON places encoded as text, every key checked against the shape."""
    if value is None:
        return None
    if shape is JSON:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise ShapeError(f"{where} should be an object")
        unknown = set(value) - set(shape)
        if unknown:
            raise ShapeError(f"{where} has keys the Parquet schema does not hold: {sorted(unknown)}")
        return {key: to_storage(value.get(key), inner, f"{where}.{key}") for key, inner in shape.items()}
    if isinstance(shape, list):
        if not isinstance(value, list):
            raise ShapeError(f"{where} should be a list")
        return [to_storage(item, shape[0], f"{where}[{index}]") for index, item in enumerate(value)]
    if shape is str and not isinstance(value, str):
        return str(value)  # an xlam id that is a number
    return value


class ParquetOutput:
    """Writes records of one export format to ``path`` as Parquet, a row group at a time.

    The columns are those of the first record's shape (``shapes_of``): single-turn rows, whole
    conversations or per-turn samples; a later record of another shape is an error, never a
    column filled with nulls.
    """

    def __init__(self, path: str, fmt: str, *, string_arguments: bool = False) -> None:
        self.pa, self.pq = _pyarrow()
        self.path = path
        self.fmt = fmt
        self.shapes = shapes_of(fmt, string_arguments=string_arguments)
        self.shape: dict[str, Any] | None = None  # chosen by the first record
        self._pending: list[dict[str, Any]] = []
        self._writer: Any = None
        self._file = Replacement(path)  # renamed over `path` once whole
        self._stream: Any = None
        self._rows = 0

    def write(self, record: dict[str, Any]) -> None:
        if self.shape is None:
            self.shape = next((shape for shape in self.shapes if set(record) <= set(shape)), self.shapes[0])
        try:
            self._pending.append(to_storage(record, self.shape, "the record"))
        except ShapeError as error:
            raise InputError(
                f"exported record {self._rows + 1} does not fit the Parquet columns of the records before it: {error}",
                hint="export single-turn rows and conversations to separate files",
            ) from None
        self._rows += 1
        if len(self._pending) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        shape = self.shape or self.shapes[0]
        if self._writer is None:
            self._stream = self._file.open()
            self._writer = self.pq.ParquetWriter(self._stream, schema_of(shape))
        if self._pending:
            table = self.pa.Table.from_pylist(self._pending, schema=schema_of(shape, storage=True)).cast(schema_of(shape))
            self._writer.write_table(table)
            self._pending = []

    def close(self) -> None:
        """Write what is left; a file that got no row is still written, with the schema and no rows."""
        self._flush()
        self._writer.close()
        self._file.commit(self._stream)

    def abandon(self) -> Kept | None:
        """After a failure: no Parquet file is left half written; an earlier one stays.

        Row groups already written are not kept: a Parquet file without its footer cannot be read.
        """
        if self._writer is not None:
            self._writer.close()
        self._file.discard(self._stream)
        return None
