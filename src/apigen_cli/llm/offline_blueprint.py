"""The offline backend's task blueprints: gold calls filled from the records shown, so that ids exist.

It answers ``{"task": "blueprint", "tools", "writes", "creates", "records", "persona", "seed"}``
(what ``conversations.blueprint_generation`` sends) with the JSON a blueprint model writes:
``instruction``, ``actions`` and ``outputs``. The calls are the tools in the order offered
(the reads that find ids, then the write), each argument taken from the records by its name:

- a field of the same name (``order_id``, ``email``, ``address1``), the record the task acts on first;
- a list parameter named as a field's plural (``skus`` -> ``[sku]``);
- ``new_X``: another value of the field ``X``, the one closest to the old (``SHOE-BLK-09`` -> ``SHOE-BLK-10``);
- an id whose last words a field ends with (``refund_method_id`` -> ``payment_method_id``);
- a field named as the parameter's first word (``zip_code`` -> ``zip``);

else a value made from the schema (an enum's member, a fresh name for a tool that creates).
The instruction tells the user who they are (from the records' names and email), what they
want (the write's description) and the details they know (the arguments of the first call,
which finds them, and of the write).

It also answers ``{"task": "blueprint_review", "instruction", "actions", "results", "diff"}``,
a committee judge's vote, by one rule: every value a call that changed the state uses is in the
instruction or in what an earlier call returned (the user could have given it, or the agent
found it), and something changed.

A seeded share of blueprints (``offline_error_rate``, 0.1 unless set) carries a typical
slip so that each check has something to catch: a wrong id (execution), a required argument
left out (format), the write made twice (necessity, or execution when the second fails), or
the lookups left out, the write made straight away (a policy that asks to look first).
A negative task (``kind``: ``policy_refusal``, ``missing_detail``) gets the lookups (and a
hand-over, ``others``, saying why) without the write (for ``missing_detail`` the instruction leaves one detail of the write out and says the
user does not know it); its slip is the write made all the same.

A revision (the task carries ``revision`` and ``critique``) is written without a slip: the
offline model heeds its critique. Deterministic for a given seed and request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ..schema.tools import Tool
from ..schema.value_types import ArrayType, ScalarType, Type, UnionType
from .offline import (
    DEFAULT_ERROR_RATE,
    _compiled_tools,
    _mention,
    _purpose,
    _raw_properties,
    _readable,
    _rng,
    _TaskError,
    _Values,
)

SLIPS = ("wrong_id", "missing_required_argument", "unnecessary_write", "no_lookup")
_MISSING = object()
SEARCH_DEPTH = 5


def blueprint(task: Mapping[str, Any], *, key: str = "", seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE) -> str:
    """The JSON text of one blueprint for ``task``."""
    tools = _compiled_tools(task.get("tools"))
    if not tools:
        raise _TaskError("none of the task's tools can be read, so there is nothing to call")
    shown = task.get("records")
    records = [entry.get("record") for entry in shown if isinstance(entry, dict)] if isinstance(shown, list) else []
    writes = {name for name in task.get("writes") or [] if isinstance(name, str)}
    creates = {name for name in task.get("creates") or [] if isinstance(name, str)}
    task_seed = task.get("seed", seed)
    rng = _rng(task_seed if task_seed is not None else 0, key, [tool.name for tool in tools], shown)
    fields = _Fields(records)
    values = _Values(rng)
    actions: list[dict[str, Any]] = []
    for tool in tools:
        values.context = tool.description
        actions.append(
            {"name": tool.name, "arguments": _arguments(tool, fields, values, tool.name in creates, tool.name in writes)}
        )
    focus = next((action for action in reversed(actions) if action["name"] in writes), actions[-1])
    focus_tool = next(tool for tool in tools if tool.name == focus["name"])
    found_by = actions[0]["arguments"] if actions[0] is not focus else {}  # how the user is found
    kind = task.get("kind") or "positive"
    wish = dict(focus["arguments"])
    unknown = ""
    if kind == "missing_detail" and wish:  # the user lacks one detail of the change
        unknown = rng.choice([name for name in wish if not name.endswith("id")] or list(wish))
        del wish[unknown]
    instruction = _instruction(focus_tool, found_by, wish, fields, task.get("persona"))
    if unknown:
        instruction += f" You do not know the {_readable(unknown)} yet."
    slipped = rng.random() < error_rate and not task.get("revision")  # told what was wrong, it does not slip again
    others = {name for name in task.get("others") or [] if isinstance(name, str)}
    if kind in ("policy_refusal", "missing_detail"):
        if not slipped:  # the slip of a negative: the change is made all the same
            actions.remove(focus)
        for action in actions:  # a hand-over says why
            if action["name"] in others:
                tool = next(tool for tool in tools if tool.name == action["name"])
                for name, declared in tool.parameters.properties.items():
                    if isinstance(declared, ScalarType) and declared.name == "string" and not declared.enum:
                        action["arguments"][name] = (
                            f"The customer wants to {_purpose(focus_tool)}, which the policy does not allow."
                        )
    elif slipped:
        _slip(rng, actions, focus, focus_tool, fields)
    return orjson.dumps({"instruction": instruction, "actions": actions, "outputs": []}).decode()


class _Fields:
    """The records' fields by name, in order: the record the task acts on first, then those it refers to."""

    def __init__(self, records: list[Any]) -> None:
        self.found: dict[str, list[Any]] = {}
        for record in records:
            for name, value in _leaves(record):
                self.found.setdefault(name, []).append(value)

    def pick(self, name: str, *, last: bool = False) -> Any:
        found = self.found.get(name)
        return (found[-1] if last else found[0]) if found else _MISSING

    def argument(self, name: str, declared: Type, *, last: bool = False) -> Any:
        """The value of the parameter ``name`` the records hold, or ``_MISSING`` (see the module's rules).

        ``last``: from the last record that has it (the other record of the kind acted on), not the first.
        """
        listed = _is_list(declared)
        found = self.pick(name, last=last)
        if found is not _MISSING:
            return [found] if listed and not isinstance(found, list) else found
        words = name.split("_")
        if listed and name.endswith("s"):
            single = self.argument(name[:-1], _NOT_LIST, last=last)
            if single is not _MISSING:
                return [single]
        if words[0] == "new" and len(words) > 1:
            old_name = "_".join(words[1:])
            old = self.argument(old_name, declared, last=last)
            if old is not _MISSING:
                return self._another(old_name, old, listed)
        if len(words) >= 2 and words[-1] == "id":
            ending = "_".join(words[-2:])
            for field_name in self.found:
                if field_name != name and field_name.endswith("_" + ending):
                    return self.argument(field_name, declared, last=last)
        if len(words) > 1 and words[0] in self.found:
            return self.argument(words[0], declared, last=last)
        return _MISSING

    def _another(self, field_name: str, old: Any, listed: bool) -> Any:
        """Another value of ``field_name`` than ``old``: the one sharing the longest start with it."""
        single_name = field_name[:-1] if listed and field_name.endswith("s") else field_name
        before = old[0] if listed and isinstance(old, list) and old else old
        others = [value for value in self.found.get(single_name, []) if value != before and isinstance(value, str)]
        if not others or not isinstance(before, str):
            return old
        best = max(others, key=lambda value: (_common_start(value, before), -others.index(value)))
        return [best] if listed else best


_NOT_LIST: Type = ScalarType("string")


def _is_list(declared: Type) -> bool:
    if isinstance(declared, ArrayType):
        return True
    return isinstance(declared, UnionType) and any(isinstance(option, ArrayType) for option in declared.options)


def _common_start(first: str, second: str) -> int:
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length


def _leaves(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Each field of a record with a scalar value (or a list of scalars), depth first."""
    if depth > SEARCH_DEPTH:
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(item, (str, int, float, bool)) or (
                isinstance(item, list) and item and not isinstance(item[0], (dict, list))
            ):
                yield str(name), item
            else:
                yield from _leaves(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, depth + 1)


def _names_a_thing(name: str, declared: Type) -> bool:
    """An id, a list of ids or SKUs, an enum member: a value that picks something, not one a write sets."""
    return name.endswith(("id", "ids")) or _is_list(declared) or bool(declared.enum)


def _arguments(tool: Tool, fields: _Fields, values: _Values, creates: bool, changes: bool) -> dict[str, Any]:
    """The call's arguments: each required one, and each optional one the records hold.

    A write (``changes``) sets its other values (an address) from the last record that has them,
    the other record of the kind the task acts on, so that it changes something.
    """
    raw = _raw_properties(tool)
    arguments: dict[str, Any] = {}
    parameters = tool.parameters
    for name, declared in parameters.properties.items():
        required = name in parameters.required
        if creates and not name.endswith("id"):
            found = _MISSING
        elif changes and not _names_a_thing(name, declared):
            found = fields.argument(name, declared, last=True)  # a new value: from the other record of its kind, shown last
        else:
            found = fields.argument(name, declared)
        if found is not _MISSING and declared.check(found, name) is None:
            arguments[name] = found
        elif required:
            spec = raw.get(name)
            arguments[name] = values.value(name, declared, spec if isinstance(spec, dict) else {})
    return arguments


def _instruction(tool: Tool, found_by: Mapping[str, Any], arguments: Mapping[str, Any], fields: _Fields, persona: Any) -> str:
    """Second person, as tau-bench's instructions: who the user is, how they are found, what they want and know."""
    first, last, email = fields.pick("first_name"), fields.pick("last_name"), fields.pick("email")
    if isinstance(first, str) and isinstance(last, str):
        who = f"You are {first} {last}"
        who += f", and your email is {email}." if isinstance(email, str) else "."
    else:
        who = "You are a customer."
    if isinstance(persona, str) and persona.strip():
        who += f" {persona.strip().rstrip('.')}."
    identity = "; ".join(f"{_readable(name)}: {_mention(value)}" for name, value in found_by.items())
    if identity:
        who += f" Asked who you are, you give your {identity}."
    want = f"You want to {_purpose(tool)}."
    known = "; ".join(f"{_readable(name)}: {_mention(value)}" for name, value in arguments.items())
    return f"{who} {want} What you know: {known}." if known else f"{who} {want}"


def _slip(rng: Any, actions: list[dict[str, Any]], focus: dict[str, Any], tool: Tool, fields: _Fields) -> None:
    """One typical mistake of a blueprint model, in place."""
    ids = [name for name, value in focus["arguments"].items() if isinstance(value, str) and name.endswith("id")]
    required = [name for name in tool.parameters.required_in_order if name in focus["arguments"]]
    possible = {"wrong_id": bool(ids), "missing_required_argument": bool(required), "no_lookup": actions[0] is not focus}
    slips = [slip for slip in SLIPS if possible.get(slip, True)]
    slip = rng.choice(slips)
    if slip == "wrong_id":
        name = rng.choice(ids)
        focus["arguments"][name] = focus["arguments"][name] + "9"  # one digit too many: an id no record has
    elif slip == "missing_required_argument":
        del focus["arguments"][rng.choice(required)]
    elif slip == "no_lookup":
        del actions[: actions.index(focus)]
    else:
        actions.append({"name": focus["name"], "arguments": dict(focus["arguments"])})


def review(task: Mapping[str, Any], *, key: str = "", seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE) -> str:
    """A judge's ``{"thought", "pass"}`` on a blueprint: are the values of its writes grounded?"""
    instruction = str(task.get("instruction") or "").lower()
    actions = task.get("actions")
    results = task.get("results")
    if not isinstance(actions, list) or not isinstance(results, list):
        raise _TaskError("the review task needs `actions` and `results` lists")
    if task.get("kind") in ("policy_refusal", "missing_detail"):
        if task.get("diff"):
            return _vote("the task is a refusal, and yet its calls change the state", passed=False)
        return _vote("", passed=True)
    if not task.get("diff"):
        return _vote("the calls change nothing, so the task asks for nothing", passed=False)
    seen: list[str] = []  # what earlier calls returned, as text
    for position, (action, result) in enumerate(zip(actions, results, strict=False), start=1):
        arguments = action.get("arguments") if isinstance(action, dict) else None
        if isinstance(result, dict) and result.get("changed_state") and isinstance(arguments, dict):
            for name, value in arguments.items():
                for text in _texts(value):
                    if text.lower() not in instruction and not any(text.lower() in earlier for earlier in seen):
                        return _vote(
                            f"call {position} `{action.get('name')}` uses {name} {text!r}, which the user does not give"
                            " and no earlier call returned",
                            passed=False,
                        )
        if isinstance(result, dict):
            seen.append(orjson.dumps(result.get("result"), default=str).decode().lower())
    return _vote("", passed=True)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.strip():
        yield value.strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _vote(thought: str, *, passed: bool) -> str:
    return orjson.dumps({"thought": thought, "pass": "yes" if passed else "no"}).decode()
