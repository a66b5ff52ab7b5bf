"""``apigen library check``: the paper's accessibility test, and a lint of the definitions.

APIGen keeps only the APIs that answer: each one is called with arguments made
from its schema and its descriptions (``trial_arguments``: examples, defaults,
enums, "e.g." cues, date masks, patterns, then guesses from the names), and
again with up to two other argument sets when a call fails in a way other
arguments may cure, through the same ``Executor`` as exec-check, so Python
functions (``--functions``), ``http`` and ``mcp`` bindings all run. The lint
finds what makes a library worse to generate from: duplicate names, names
endpoints refuse, empty or very long descriptions, parameters nobody described.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..execution.calls import Outcome, Pending
from ..execution.executor import Executor
from ..execution.sessions import SessionOutcome, SessionRequest
from ..problems import RowProblem
from ..schema.tools import Tool, compile_tool, tool_parts
from .loader import read_definitions
from .output import TOOL_NAME
from .state_arguments import read_records, state_argument_sets
from .trial_arguments import MAX_TRIES, argument_sets

LONG_DESCRIPTION = 1024  # characters; past this, a description crowds the generator's prompt
ENVIRONMENT_TRIES = 16  # calls of an environment's tool: a session on a fresh instance is cheap, and the record of the kind a tool needs may come late


@dataclass
class Entry:
    """One API of the library, as given, with what checking it found."""

    where: str
    name: str
    definition: dict[str, Any]
    tool: Tool | None
    arguments: dict[str, Any] | None = None  # of the last call made (the one that answered, if any did)
    outcome: Outcome | None = None
    result_problem: str | None = None  # why a call that returned is still a failure (an error payload)
    attempts: list[Attempt] = field(default_factory=list)
    effect: str | None = None  # a method of an environment class: "write" when a call changed the state, else "read"

    @property
    def environment_class(self) -> str | None:
        """The class whose method this tool is (``library from-python --class``), or None for a function or an endpoint."""
        owner = self.definition.get("class")
        return owner if isinstance(owner, str) and owner else None

    @property
    def status(self) -> str:
        """``ok``, ``error``, ``timeout`` or ``not run``."""
        if self.outcome is None:
            return "not run"
        if self.outcome.ok:
            return "error" if self.result_problem else "ok"
        return "timeout" if self.outcome.code == "timeout" else "error"

    @property
    def http_status(self) -> str:
        if self.outcome is None:
            return ""
        kind = self.outcome.error_type
        if kind.startswith("HTTP "):
            return kind[5:]
        return "2xx" if self.outcome.ok and "http" in self.definition_body() else ""

    def definition_body(self) -> dict[str, Any]:
        body = self.definition.get("function")
        merged = dict(body) if isinstance(body, dict) else {}
        merged.update(self.definition)
        return merged


@dataclass(frozen=True)
class Finding:
    """One lint finding: which API (or ``where`` in the file), and what."""

    where: str
    name: str
    message: str


def read_entries(path: str) -> tuple[list[Entry], list[Finding]]:
    """The library's APIs, leniently: what does not compile is a finding, not a stop."""
    entries: list[Entry] = []
    findings: list[Finding] = []
    for position, (where, definition) in enumerate(read_definitions(path), start=1):
        if not isinstance(definition, dict):
            findings.append(Finding(where, "", "is not a JSON object"))
            continue
        try:
            tool: Tool | None = compile_tool(definition, position)
        except RowProblem as error:
            findings.append(Finding(where, "", error.problem.message))
            continue
        assert tool is not None
        entries.append(Entry(where, tool.name, definition, tool))
    if not entries and not findings:
        raise InputError(f"API library `{path}` holds no APIs", hint="one tool definition per line")
    return entries, findings


def lint(entries: Iterable[Entry]) -> list[Finding]:
    """Duplicate names, names outside ``^[A-Za-z0-9_-]{1,64}$``, descriptions empty or too long, undescribed parameters."""
    findings: list[Finding] = []
    first: dict[str, str] = {}
    for entry in entries:
        assert entry.tool is not None
        name = entry.name
        if name in first:
            findings.append(Finding(entry.where, name, f"the name is already used on {first[name]}"))
        else:
            first[name] = entry.where
        if not TOOL_NAME.match(name):
            findings.append(Finding(entry.where, name, "the name is not of the form ^[A-Za-z0-9_-]{1,64}$ that endpoints accept"))
        description = entry.tool.description.strip()
        if not description:
            findings.append(Finding(entry.where, name, "the description is empty"))
        elif len(description) > LONG_DESCRIPTION:
            findings.append(
                Finding(entry.where, name, f"the description is {len(description)} characters (over {LONG_DESCRIPTION})")
            )
        body, _name, parameters = tool_parts(entry.definition, 1)
        undescribed = [key for key, schema in _parameter_schemas(parameters).items() if not _described(schema)]
        if undescribed:
            listed = ", ".join(f"`{key}`" for key in undescribed)
            findings.append(Finding(entry.where, name, f"parameter(s) without a description: {listed}"))
    return findings


def _parameter_schemas(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        return {}
    properties = parameters.get("properties")
    if isinstance(properties, dict) and isinstance(parameters.get("type", "object"), str):
        return properties
    return parameters  # xLAM: name -> spec


def _described(schema: Any) -> bool:
    return isinstance(schema, dict) and isinstance(schema.get("description"), str) and bool(schema["description"].strip())


RETRIED_CODES = frozenset({"exception", "mcp_tool_error"})  # failures that other arguments may cure
NOT_ARGUMENT_STATUSES = frozenset({401, 403, 407, 429})  # 4xx replies about the caller, not the arguments


@dataclass
class Attempt:
    """One call of the check: the arguments tried and how it ended."""

    arguments: dict[str, Any]
    outcome: Outcome | None = None
    result_problem: str | None = None


def worth_retrying(attempt: Attempt) -> bool:
    """Whether a failed call may have failed for its arguments: an exception, an error payload, an HTTP 4xx.

    A timeout, a missing implementation, a crash, a refused key or a rate limit is not
    cured by other arguments, so it is not tried again.
    """
    outcome = attempt.outcome
    if outcome is None:
        return False
    if outcome.ok:
        return attempt.result_problem is not None
    if outcome.code in RETRIED_CODES:
        return True
    if outcome.code == "http_error" and outcome.error_type.startswith("HTTP "):
        status = outcome.error_type[5:]
        return status.isdigit() and 400 <= int(status) < 500 and int(status) not in NOT_ARGUMENT_STATUSES
    return False


def call_each(
    entries: list[Entry],
    executor: Executor,
    judge: Callable[[Any], str | None] | None = None,
    tries: int = MAX_TRIES,
    initial_state: dict[str, Any] | None = None,
) -> None:
    """Call every API, all in flight together (the executor bounds how many), up to ``tries`` times each.

    The first round calls each API with its best argument set (``trial_arguments``); each
    later round calls again, with the next set, only the APIs whose last call failed in a
    way other arguments may cure (``worth_retrying``). ``judge`` says why a result that came
    back is a failure all the same (exec-check's policy on error payloads and empty
    results), or ``None`` when it is not.

    A method of an environment class is called in a session of its own, on a fresh instance
    loaded with ``initial_state`` (class name to state), else made with no arguments (the
    class's default state); whether the call changed the state marks the tool ``write`` or
    ``read`` (``Entry.effect``). A failed call that changed nothing says nothing either way.
    Its arguments come from the state's own records first (``state_arguments``), up to
    ``ENVIRONMENT_TRIES`` sets, each around another record.
    """
    executor.start()  # Python workers and MCP sessions; an MCP binding is refused before its server starts
    states = _class_states(entries, executor, initial_state)
    plans: dict[int, list[dict[str, Any]]] = {id(entry): _plan(entry, tries, states) for entry in entries}
    waiting = list(entries)
    for round_index in range(max([len(plan) for plan in plans.values()] + [1])):
        tried = [(entry, Attempt(plans[id(entry)][round_index])) for entry in waiting if round_index < len(plans[id(entry)])]
        started: list[tuple[Entry, Attempt, Pending]] = []
        methods: list[tuple[Entry, Attempt]] = []
        for entry, attempt in tried:
            if entry.environment_class is not None:
                methods.append((entry, attempt))
                continue
            body = entry.definition_body()
            started.append((entry, attempt, executor.submit(entry.name, attempt.arguments, body.get("http"), body.get("mcp"))))
            executor.poll()
        sessions = [_session_request(entry, attempt, initial_state) for entry, attempt in methods]
        for (entry, attempt), session in zip(methods, executor.run_sessions(sessions), strict=True):
            attempt.outcome = _method_outcome(entry, session)
        executor.wait([pending for _entry, _attempt, pending in started])
        for _entry, attempt, pending in started:
            attempt.outcome = pending.outcome
        waiting = []
        for entry, attempt in tried:
            if judge is not None and attempt.outcome is not None and attempt.outcome.ok:
                attempt.result_problem = judge(attempt.outcome.result)
            entry.attempts.append(attempt)
            entry.arguments, entry.outcome, entry.result_problem = attempt.arguments, attempt.outcome, attempt.result_problem
            if worth_retrying(attempt):
                waiting.append(entry)
        if not waiting:
            break


def _class_states(entries: list[Entry], executor: Executor, initial_state: dict[str, Any] | None) -> dict[str, Any]:
    """Each environment class's initial state: as ``initial_state`` gives it, else read from an instance made with no arguments."""
    owners = sorted({entry.environment_class for entry in entries if entry.environment_class is not None})
    if initial_state is not None:
        return {owner: initial_state.get(owner, {}) for owner in owners}
    requests = [SessionRequest(owner, {owner: {}}, (), defaults=True) for owner in owners]
    return {
        str(outcome.key): (outcome.initial_state or {}).get(str(outcome.key), {}) for outcome in executor.run_sessions(requests)
    }


def _plan(entry: Entry, tries: int, states: dict[str, Any]) -> list[dict[str, Any]]:
    """The argument sets to call the entry with, in turn: for an environment's tool, the state's records' first."""
    if entry.tool is None:
        return [{}]
    schema_sets = argument_sets(entry.tool, tries)
    owner = entry.environment_class
    if owner is None:
        return schema_sets
    drawn = state_argument_sets(entry.tool, read_records(states.get(owner)), schema_sets[0], ENVIRONMENT_TRIES)
    plan: list[dict[str, Any]] = []
    for arguments in drawn + schema_sets:
        if arguments not in plan:
            plan.append(arguments)
    return plan[:ENVIRONMENT_TRIES]


def _session_request(entry: Entry, attempt: Attempt, initial_state: dict[str, Any] | None) -> SessionRequest:
    owner = entry.environment_class
    assert owner is not None
    call = [{"name": entry.name, "arguments": attempt.arguments}]
    if initial_state is None:
        return SessionRequest(entry.name, {owner: {}}, call, defaults=True)
    return SessionRequest(entry.name, {owner: initial_state.get(owner, {})}, call)


def _method_outcome(entry: Entry, session: SessionOutcome) -> Outcome:
    """The call's outcome; its effect on the state marks the entry (``write`` wins over an earlier ``read``)."""
    if not session.calls:  # the instance could not be made: the session's problem is the call's
        problem = session.problem
        return Outcome.failure(problem.code, "", problem.message) if problem is not None else Outcome.failure("crashed", "", "")
    call = session.calls[0]
    if call.changed:
        entry.effect = "write"
    elif call.changed is False and call.outcome.ok and entry.effect is None:
        entry.effect = "read"
    return call.outcome


def kept_definition(entry: Entry) -> dict[str, Any]:
    """The definition ``--keep`` writes: as given, with the effect the check found (``read``/``write``) when it found one."""
    return {**entry.definition, "effect": entry.effect} if entry.effect is not None else entry.definition


def effects_line(entries: list[Entry]) -> str:
    """``; the environment's tools: 7 read, 6 write, 1 not told`` (empty when the library has none)."""
    methods = [entry for entry in entries if entry.environment_class is not None]
    if not methods:
        return ""
    counts = {effect: sum(1 for entry in methods if entry.effect == effect) for effect in ("read", "write")}
    untold = len(methods) - sum(counts.values())
    return f"; the environment's tools: {counts['read']} read, {counts['write']} write" + (
        f", {untold} not told" if untold else ""
    )


def shown_arguments(arguments: dict[str, Any], limit: int = 60) -> str:
    """``book_id="bk-003", n=5``: arguments as the table shows them, cut at ``limit`` characters."""
    text = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown_outcome(outcome: Outcome | None, problem: str | None) -> str:
    if outcome is None:
        return ""
    if outcome.ok:
        shown = json.dumps(outcome.result)[:80]
        return f"{problem}: {shown}" if problem else shown
    return outcome.message[:160]


def table_lines(entries: list[Entry], *, verbose: bool = False) -> list[str]:
    """The check's table: one line per API (its status, HTTP status, the arguments that ended it and what came back).

    An API that answered on a later try says which (``try 2``), one that failed every try how
    many it had (``3 tries``); ``verbose`` adds a line for every call made, failed ones included.
    """
    width = max([len(entry.name) for entry in entries] + [3])
    effects = any(entry.environment_class is not None for entry in entries)  # a column for the environment's tools
    lines = [f"{'API':<{width}}  {'STATUS':<7}  {'EFFECT  ' if effects else ''}{'HTTP':<4}  DETAIL"]
    for entry in entries:
        detail = _shown_outcome(entry.outcome, entry.result_problem)
        if entry.arguments is not None:
            count = len(entry.attempts)
            tried = "" if count < 2 else (f" (try {count})" if entry.status == "ok" else f" ({count} tries)")
            detail = f"({shown_arguments(entry.arguments)}){tried} -> {detail}"
        effect = f"{entry.effect or '':<6}  " if effects else ""
        lines.append(f"{entry.name:<{width}}  {entry.status:<7}  {effect}{entry.http_status:<4}  {detail}".rstrip())
        if verbose and len(entry.attempts) > 1:
            for number, attempt in enumerate(entry.attempts, start=1):
                status = "ok" if attempt.outcome is not None and attempt.outcome.ok and not attempt.result_problem else "failed"
                shown = _shown_outcome(attempt.outcome, attempt.result_problem)
                lines.append(f"  try {number}: ({shown_arguments(attempt.arguments)}) {status} -> {shown}")
    return lines
