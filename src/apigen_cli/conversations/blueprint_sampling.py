"""What each blueprint request shows the model: tools, records, a persona, the policy (APIGen-MT's samplers).

- **APIs**: one write tool, with the reads that find the ids it needs (a read that provides
  ``user_id``, then one that provides ``order_id`` given ``user_id``...) and one that looks
  up what it acts on (``environment_tools`` says how these are told apart).
- **Domain data**: a few records of the initial state, so that the ids the model writes are
  real: the record the write acts on (preferring one whose values match the write's name, a
  ``pending`` order for ``cancel_pending_order``), the records it refers to (its customer,
  its products), and one other record of its kind, where new values come from (another
  address to ship to). A record is any object of an *id-keyed collection*: an object whose keys are
  the ids its values hold (``orders["ORD-1"]["order_id"] == "ORD-1"``). A state with no such
  collection (a file system's tree) is shown whole when it is small.
- **Personas**: a line of ``--personas`` (text, one per line, or JSONL with a ``persona`` field).
- **Policy**: the text of ``--policy``, shown whole.
- **Examples** (``--examples FILE``): kept blueprints of an earlier run, up to two a request,
  those built around the same write first, shown for their form.

Everything is drawn from one ``random.Random`` seeded by the run's seed and the request's
index, so a request's sample does not depend on the ones before it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError
from .environment_tools import EnvironmentTool, EnvironmentTools, name_words

MAX_RECORDS = 5  # records shown per request
MAX_RECORD_BYTES = 4_000  # a record larger than this is shown cut (its id and scalar fields)
WHOLE_STATE_BYTES = 6_000  # a state with no collections is shown whole up to this size
SEARCH_DEPTH = 4  # how deep collections and references are looked for
MAX_LOOKUP_DEPTH = 3  # chains of reads that find ids: find the user, list their orders, ...


@dataclass(frozen=True)
class Record:
    """One record of the initial state: where it lives (``OnlineStore.orders``), its id and its value."""

    collection: str
    key: str
    value: Any

    def shown(self) -> dict[str, Any]:
        value = self.value
        if len(orjson.dumps(value)) > MAX_RECORD_BYTES and isinstance(value, dict):
            value = {name: item for name, item in value.items() if not isinstance(item, (dict, list))}
        return {"collection": self.collection, "id": self.key, "record": value}


@dataclass(frozen=True)
class Collection:
    path: str
    records: dict[str, Any]


def collections_of(state: Mapping[str, Any]) -> list[Collection]:
    """The id-keyed collections of an environment's state (``{"Class": state}``), in the order found."""
    found: list[Collection] = []

    def walk(value: Any, path: str, depth: int) -> None:
        if depth > SEARCH_DEPTH or not isinstance(value, dict):
            return
        if value and _id_keyed(value):
            found.append(Collection(path, value))
            return
        for key, item in value.items():
            walk(item, f"{path}.{key}", depth + 1)

    for name, class_state in state.items():
        walk(class_state, name, 0)
    return found


def _id_keyed(value: dict[str, Any]) -> bool:
    """Every value is an object holding its own key under some field (``{"ORD-1": {"order_id": "ORD-1", ...}}``)."""
    return all(isinstance(item, dict) and key in item.values() for key, item in value.items())


def key_field(collection: Collection) -> str | None:
    """The field that holds each record's key (``order_id``), when one field does for all."""
    first_key, first = next(iter(collection.records.items()))
    for field_name, field_value in first.items():
        if field_value == first_key and all(record.get(field_name) == key for key, record in collection.records.items()):
            return str(field_name)
    return None


def strings_in(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string a value holds, keys aside, depth first."""
    if depth > SEARCH_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item, depth + 1)


class RecordSampler:
    """Draws the records a blueprint request shows: the one its write acts on and those it refers to."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self.state = state
        self.collections = collections_of(state)
        self.keys = {collection.path: key_field(collection) for collection in self.collections}
        self.where: dict[str, Collection] = {}  # a record's key -> its collection (the first that holds it)
        for collection in self.collections:
            for key in collection.records:
                self.where.setdefault(key, collection)
        whole = orjson.dumps(state)
        self.whole_state = dict(state) if not self.collections and len(whole) <= WHOLE_STATE_BYTES else None

    def sample(
        self, write: EnvironmentTool, rng: random.Random, limit: int = MAX_RECORDS, *, fitting: bool = True
    ) -> list[Record]:
        """The records to show; ``fitting=False`` prefers a record the write does not fit (a task the policy forbids)."""
        if not self.collections:
            if self.whole_state is None:
                return []
            return [Record(name, name, value) for name, value in self.whole_state.items()]
        root_collection = self._acted_on(write) or rng.choice(self.collections)
        root = self._root(root_collection, write, rng, fitting)
        chosen = [root]
        for text in strings_in(root.value):
            if len(chosen) >= limit - 1:
                break
            collection = self.where.get(text)
            if collection is not None and all(record.key != text for record in chosen):
                chosen.append(Record(collection.path, text, collection.records[text]))
        others = [key for key in root_collection.records if all(record.key != key for record in chosen)]
        if others:  # another record like it: where new values (another address, another size) come from
            key = rng.choice(others)
            chosen.append(Record(root_collection.path, key, root_collection.records[key]))
        return chosen

    def _acted_on(self, write: EnvironmentTool) -> Collection | None:
        """The collection keyed by one of the write's parameters (``order_id`` -> the orders)."""
        for parameter in write.parameters:
            for collection in self.collections:
                if self.keys[collection.path] == parameter:
                    return collection
        return None

    def _root(self, collection: Collection, write: EnvironmentTool, rng: random.Random, fitting: bool = True) -> Record:
        """A record of ``collection``, one whose values share a word with the write's name when there is one
        (or, not ``fitting``, one whose values do not)."""
        words = set(name_words(write.name))
        keys = list(collection.records)
        fits = [key for key in keys if bool(words & {text.lower() for text in strings_in(collection.records[key])}) == fitting]
        key = rng.choice(fits or keys)
        return Record(collection.path, key, collection.records[key])


def sample_tools(environment: EnvironmentTools, write: EnvironmentTool, rng: random.Random) -> list[EnvironmentTool]:
    """The reads that find what ``write`` needs, in the order they would be called, then ``write``."""
    reads = environment.reads
    chain: list[EnvironmentTool] = []
    needed = list(write.required)
    for _depth in range(MAX_LOOKUP_DEPTH):
        found_now: list[EnvironmentTool] = []
        for parameter in needed:
            providers = [tool for tool in reads if tool.provides(parameter) and tool not in chain and tool not in found_now]
            if providers:
                found_now.append(rng.choice(providers))
        if not found_now:
            break
        chain = found_now + chain  # what finds the ids of a read comes before it
        needed = [parameter for tool in found_now for parameter in tool.required]
    lookups = [tool for tool in reads if tool not in chain and set(tool.required) & set(write.required) and tool.required]
    if lookups:
        chain.append(rng.choice(lookups))
    return [*chain, write]


def load_personas(path: str) -> list[str]:
    """The personas of ``--personas``: one per line of text, or the ``persona`` field of each JSONL object."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"`--personas` file `{path}` cannot be read: {error}", hint="give a text file, one persona a line"
        ) from None
    personas = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict) or not isinstance(parsed.get("persona"), str):
                raise InputError(
                    f"line {number} of `{path}` looks like JSON but holds no `persona` string",
                    hint="write one persona per line as text, or JSONL objects with a `persona` field",
                )
            line = parsed["persona"].strip()
        personas.append(line)
    if not personas:
        raise InputError(f"`--personas` file `{path}` holds no persona", hint="write one persona per line")
    return personas


MAX_EXAMPLES = 2  # blueprints shown as examples per request
MAX_EXAMPLE_POOL = 1_000  # examples kept from the file: the first ones


@dataclass(frozen=True)
class BlueprintExample:
    """A kept blueprint shown to the model for its form: its id, the write it is built around, what it holds."""

    key: str
    focus: str
    shown: dict[str, Any]


def load_blueprint_examples(path: str, writes: set[str]) -> list[BlueprintExample]:
    """The kept blueprints of ``path`` (a blueprint run's output), each built around one of ``writes``.

    Rows that were rejected, or whose actions call no write of this environment, are left out;
    an unreadable file, or one that leaves nothing, is an ``InputError``.
    """
    examples = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"`--examples` file `{path}` cannot be read: {error}", hint="give the JSONL an earlier blueprint run wrote"
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(
                f"line {number} of `{path}` is not JSON", hint="give the JSONL an earlier blueprint run wrote"
            ) from None
        if not isinstance(row, dict) or "rejected_by" in row or not isinstance(row.get("instruction"), str):
            continue
        actions = row.get("actions")
        if not isinstance(actions, list):
            continue
        called = [action.get("name") for action in actions if isinstance(action, dict)]
        focus = next((name for name in reversed(called) if name in writes), None)
        if focus is None:
            continue
        shown = {"instruction": row["instruction"], "actions": actions, "outputs": row.get("outputs") or []}
        examples.append(BlueprintExample(str(row.get("id", f"line-{number}")), focus, shown))
        if len(examples) >= MAX_EXAMPLE_POOL:
            break
    if not examples:
        raise InputError(
            f"`--examples` file `{path}` holds no kept blueprint whose actions call a write of this environment",
            hint="give the output (`-o`) of an earlier blueprint run on the same environment",
        )
    return examples


def sample_examples(examples: list[BlueprintExample], write: str, rng: random.Random) -> list[BlueprintExample]:
    """Up to ``MAX_EXAMPLES``, built around ``write`` first, then any."""
    same = [example for example in examples if example.focus == write]
    others = [example for example in examples if example.focus != write]
    rng.shuffle(same)
    rng.shuffle(others)
    return (same + others)[:MAX_EXAMPLES]


def read_text_file(path: str, flag: str, what: str) -> str:
    """A text input (the policy): read whole, or an ``InputError`` naming the flag."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"`{flag}` file `{path}` cannot be read: {error}", hint=f"give the {what} as a UTF-8 text file"
        ) from None


def read_initial_state(path: str, classes: list[str]) -> dict[str, dict[str, Any]]:
    """``--initial-state``: a JSON object of class names to their state, naming every class of the library and no other."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as error:
        raise InputError(f"`--initial-state` file `{path}` cannot be read: {error}", hint="give a JSON file") from None
    except orjson.JSONDecodeError as error:
        raise InputError(f"`--initial-state` file `{path}` is not JSON: {error}", hint="fix the file") from None
    if not isinstance(data, dict) or not all(isinstance(value, dict) for value in data.values()):
        raise InputError(
            f"`--initial-state` file `{path}` should be an object of class names to their state (each an object)",
            hint='for example {"OnlineStore": {"users": {...}, "orders": {...}}}',
        )
    missing = [name for name in classes if name not in data]
    unknown = [name for name in data if name not in classes]
    if missing or unknown:
        said = "; ".join(
            part
            for part in (
                f"it has no state for {', '.join(f'`{name}`' for name in missing)}" if missing else "",
                f"{', '.join(f'`{name}`' for name in unknown)} is no class of the library" if unknown else "",
            )
            if part
        )
        raise InputError(
            f"`--initial-state` file `{path}` does not fit the library's classes ({', '.join(classes)}): {said}",
            hint="give the state of exactly the classes the environment library names",
        )
    return data
