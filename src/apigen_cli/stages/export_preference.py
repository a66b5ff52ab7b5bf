"""Preference pairs from conversations: a verified and a failed attempt of one blueprint, for DPO and its kin.

``simulate`` acts a blueprint out until an attempt passes the trajectory check; the attempts that
failed go to its rejects with their reason and their whole conversation, each naming its
``blueprint_id``. A pair is one verified conversation (the input, kept by ``trajectory-check``)
and one failed attempt of the same blueprint (from ``--rejects-in``), written in TRL's
conversational preference form: ``prompt``, what both attempts share up to the agent turn
where they part; ``chosen``, the verified attempt from there; ``rejected``, the failed one from
there; ``tools``; and which rows they were and why the failed one failed. Messages are written
as ``--format messages`` writes them (arguments as objects), with call ids counted alike on both
sides so that the shared prompt is the same text.

Two attempts whose users said different things before the agent's first reply share no prompt
(``no_shared_prompt``): the difference is the user simulator's, not the agent's. A failed attempt
is a rejected conversation row that trajectory-check did not keep (a verified duplicate of
another attempt is no failure). The rejects file is indexed by blueprint id as byte offsets, so
it is read twice and never held in memory whole.
"""

from __future__ import annotations

import os
import stat
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import ConfigError, InputError
from ..problems import RowProblem
from ..rows.jsonl import OutputFile, json_error_text, loads, read_rows
from ..rows.records import ID, MULTI_TURN_KEEP_FIELDS, REASON, REJECTED_BY, Row, is_conversation
from ..rows.replacement import replaced_together
from ..rows.runner import Destinations, Wrapper, refusing_api_definitions
from ..schema.dialects import Note
from ..wording import counted, top_counts
from .export import NoteSink, checking_conversations, requiring_verdicts
from .export_conversation import MESSAGES_LAYOUT, chat_messages, read_conversation
from .export_shared import WriteOptions, load_environment_library

PREFERENCE = "preference"
BLUEPRINT_ID = "blueprint_id"
VERIFIED = MULTI_TURN_KEEP_FIELDS["trajectory_check"]


@dataclass
class PreferenceSummary:
    """What a preference export did: pairs written, verified conversations with and without a failed attempt."""

    pairs: int = 0
    chosen: int = 0  # verified conversations that made at least one pair
    alone: int = 0  # verified conversations with no failed attempt of their blueprint
    orphans: int = 0  # failed attempts of blueprints no verified conversation came from
    rejected: int = 0  # input rows an earlier stage rejected
    unusable: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        text = f"export: {counted(self.pairs, 'pair')} written as {PREFERENCE}"
        if self.chosen:
            text += f" (from {counted(self.chosen, 'verified conversation')})"
        parts = []
        if self.alone:
            parts.append(f"{counted(self.alone, 'verified conversation')} without a failed attempt")
        if self.orphans:
            parts.append(f"{counted(self.orphans, 'failed attempt')} without a verified one")
        if self.rejected:
            parts.append(f"{counted(self.rejected, 'rejected row')} left out")
        if self.unusable:
            reasons = top_counts(self.unusable.most_common())
            parts.append(f"{counted(sum(self.unusable.values()), 'pair')} could not be made ({reasons})")
        return "; ".join([text, *parts])


def check_preference_options(rejects_in: str | None, given: dict[str, bool]) -> None:
    """Refuse, before any row is read, a preference export without failed attempts or with a flag it has no use for."""
    if rejects_in is None:
        raise ConfigError(
            f"`--format {PREFERENCE}` pairs verified conversations with failed attempts, and no `--rejects-in` names them",
            hint="pass `--rejects-in FILE`, the rejects of `apigen simulate` (or of `apigen trajectory-check`)",
        )
    for flag, used in given.items():
        if used:
            raise ConfigError(
                f"`{flag}` does not apply to `--format {PREFERENCE}`",
                hint=f"leave out `{flag}`: a pair is a verified and a failed attempt, written whole",
            )


class FailedAttempts:
    """The failed attempts of a rejects file by blueprint id, read from the file when asked for."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offsets: dict[str, list[int]] = defaultdict(list)
        self.paired: set[str] = set()
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe would block the open, and cannot be read twice
                raise InputError(
                    f"`--rejects-in` should name a file, and `{path}` is not a regular file",
                    hint="save the failed attempts to a file and pass `--rejects-in FILE`",
                )
            self.stream: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed by `close`, after the export)
        except OSError as error:
            raise InputError(
                f"cannot read `{path}`: {error.strerror or error}", hint="pass `--rejects-in` the rejects file of the attempts"
            ) from None
        try:
            self._index()
        except BaseException:
            self.stream.close()
            raise

    def _index(self) -> None:
        offset = 0
        for number, raw in enumerate(self.stream, start=1):
            row = self._parse(raw, number) if raw.strip() else None
            if isinstance(row, dict) and _failed_attempt(row):
                self.offsets[str(row[BLUEPRINT_ID])].append(offset)
            offset += len(raw)

    def _parse(self, raw: bytes, number: int) -> Any:
        try:
            return loads(raw)
        except (ValueError, RecursionError) as error:
            raise InputError(
                f"line {number} of `{self.path}` is not valid JSON: {json_error_text(error)}", hint="fix the line"
            ) from None

    def of(self, blueprint: str) -> Iterator[Row]:
        self.paired.add(blueprint)
        for offset in self.offsets.get(blueprint, []):
            self.stream.seek(offset)
            yield loads(self.stream.readline())

    def unpaired(self) -> int:
        return sum(len(offsets) for blueprint, offsets in self.offsets.items() if blueprint not in self.paired)

    def close(self) -> None:
        self.stream.close()


def _failed_attempt(row: Row) -> bool:
    blueprint = row.get(BLUEPRINT_ID)
    return (
        REJECTED_BY in row
        and row.get(VERIFIED) is not True
        and is_conversation(row)
        and isinstance(blueprint, (str, int))
        and not isinstance(blueprint, bool)
    )


def export_preference_file(
    where: Destinations,
    *,
    rejects_in: str,
    tools: str | None = None,
    on_note: NoteSink | None = None,
    wrap: Wrapper | None = None,
) -> PreferenceSummary:
    """Read verified conversations from ``where.input``, pair each with its blueprint's failed attempts, write the pairs."""
    where.validate()
    library = load_environment_library(tools) if tools is not None else None
    failed = FailedAttempts(rejects_in)
    summary = PreferenceSummary()
    try:
        rows: Iterator[Row] = refusing_api_definitions(read_rows(where.input, skip_bad_lines=where.skip_bad_lines), where.input)
        rows = checking_conversations(requiring_verdicts(rows, where.input), where.input, PREFERENCE, library is not None)
        rows = naming_blueprints(rows, where.input)
        if wrap is not None:
            rows = wrap(rows)
        output = OutputFile(where.output)
        with replaced_together(output):
            for pair in preference_pairs(rows, failed, WriteOptions(library=library), on_note, summary):
                output.write(pair)
        summary.orphans = failed.unpaired()
    finally:
        failed.close()
    return summary


def naming_blueprints(rows: Iterable[Row], source: str) -> Iterator[Row]:
    """``rows``, stopped at the first verified conversation that names no blueprint: it can pair with nothing."""
    for number, row in enumerate(rows, start=1):
        if REJECTED_BY not in row and is_conversation(row) and row.get(BLUEPRINT_ID) is None:
            shown = "standard input" if source == "-" else f"`{source}`"
            raise InputError(
                f"row {number} of {shown} names no `{BLUEPRINT_ID}`: a pair is two attempts of one blueprint",
                hint="export the conversations `apigen simulate` wrote, each naming its blueprint",
            )
        yield row


def preference_pairs(
    rows: Iterable[Row], failed: FailedAttempts, options: WriteOptions, on_note: NoteSink | None, summary: PreferenceSummary
) -> Iterator[dict[str, Any]]:
    notes: list[Note] = []
    for row in rows:
        if REJECTED_BY in row:
            summary.rejected += 1
            continue
        if not is_conversation(row):
            summary.unusable["not_a_conversation"] += 1
            continue
        attempts = list(failed.of(str(row[BLUEPRINT_ID])))
        if not attempts:
            summary.alone += 1
            continue
        made = 0
        for attempt in attempts:
            notes.clear()
            try:
                pair = _pair(row, attempt, summary.pairs, options, notes)
            except RowProblem as error:
                summary.unusable[error.problem.code] += 1
                continue
            for note in notes:
                if on_note is not None:
                    on_note(note)
            summary.pairs += 1
            made += 1
            yield pair
        summary.chosen += 1 if made else 0


def _pair(row: Row, attempt: Row, index: int, options: WriteOptions, notes: list[Note]) -> dict[str, Any]:
    chosen = read_conversation(row, options, notes)
    rejected = read_conversation(attempt, options, notes, offered_only=False)  # a made-up tool is a failure to learn from
    chosen_messages, _turns = chat_messages(chosen, index, options, notes, MESSAGES_LAYOUT)
    rejected_messages, _turns = chat_messages(rejected, index, options, notes, MESSAGES_LAYOUT)
    parting = _parting(chosen_messages, rejected_messages)
    return {
        BLUEPRINT_ID: row[BLUEPRINT_ID],
        "chosen_id": row.get(ID),
        "rejected_id": attempt.get(ID),
        "rejected_reason": attempt.get(REASON),
        "prompt": chosen_messages[:parting],
        "chosen": chosen_messages[parting:],
        "rejected": rejected_messages[parting:],
        "tools": [{"type": "function", "function": tool} for tool in chosen.tools],
    }


def _parting(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> int:
    """The index of the agent turn where the two conversations part: the first that differs, or the last before it."""
    shared = next(
        (index for index, (mine, theirs) in enumerate(zip(chosen, rejected, strict=False)) if mine != theirs),
        min(len(chosen), len(rejected)),
    )
    if shared == len(chosen) == len(rejected):
        raise RowProblem("same_conversation", "the failed attempt holds the same messages as the verified one")
    for index in range(min(shared, len(chosen) - 1, len(rejected) - 1), -1, -1):
        if chosen[index]["role"] == rejected[index]["role"] == "assistant":
            if any(message["role"] == "user" for message in chosen[:index]):
                return index
            break
    raise RowProblem("no_shared_prompt", "the attempts part before the agent's first reply: their users said different things")
