"""Exported records as a Parquet file, the form the Hugging Face Hub serves and previews.

Each format has one fixed Arrow schema, so a file never depends on which rows came first
and never fails on a value whose type changes from row to row. Two things in these records
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

from ..errors import ConfigError
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


SHAPES: dict[str, dict[str, Any]] = {
    "xlam": {"id": str, "query": str, "answers": str, "tools": str},
    "openai": {"messages": [_message(str)], "tools": _TOOLS},
    "messages": {"messages": [_message(JSON)], "tools": _TOOLS},
    "sharegpt": {"conversations": [{"from": str, "value": str}], "tools": str},
}


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


def schema_of(fmt: str, *, storage: bool = False) -> Any:
    pa, _pq = _pyarrow()
    return pa.schema([(key, arrow_type(value, storage=storage)) for key, value in SHAPES[fmt].items()])


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
    """Writes records of one export format to ``path`` as Parquet, a row group at a time."""

    def __init__(self, path: str, fmt: str) -> None:
        self.pa, self.pq = _pyarrow()
        self.path = path
        self.fmt = fmt
        self.shape = SHAPES[fmt]
        self.schema = schema_of(fmt)
        self.storage_schema = schema_of(fmt, storage=True)
        self._pending: list[dict[str, Any]] = []
        self._writer: Any = None
        self._file = Replacement(path)  # renamed over `path` once whole
        self._stream: Any = None
        self._rows = 0

    def write(self, record: dict[str, Any]) -> None:
        self._pending.append(to_storage(record, self.shape, "the record"))
        self._rows += 1
        if len(self._pending) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._writer is None:
            self._stream = self._file.open()
            self._writer = self.pq.ParquetWriter(self._stream, self.schema)
        if self._pending:
            table = self.pa.Table.from_pylist(self._pending, schema=self.storage_schema).cast(self.schema)
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
