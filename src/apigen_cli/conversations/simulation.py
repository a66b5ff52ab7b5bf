"""``apigen simulate``: each verified blueprint acted out by a simulated user and an agent, and kept only when verified.

APIGen-MT's second phase. For each blueprint, a conversation runs (``Conversation``): the user
simulator tells the instruction, the agent answers and calls tools, its calls run in the
blueprint's environment, until the user stops, a ``--stop-tools`` tool is called, or a bound is
reached. A conversation that ended normally goes through the trajectory check (the same
verdict as ``apigen trajectory-check``); one that fails is tried again, up to ``attempts``
times, as rejection sampling: the first verified attempt is kept (or, with ``keep_all``, every
distinct verified one), and every other attempt goes to the rejects with its reason and its
whole conversation, so that a verified and a failed attempt of one blueprint can make a
preference pair.

The environment of a conversation is one live session (``execution/live.py``): its instances are
made once, in a process forked for it with the containment, the per-call timeout and the crash
handling of every session, and each time the agent calls tools only the new calls are sent and
their results read. When the conversation ends normally, its final state is read once, and the
trajectory check takes it instead of replaying the calls (``KnownReplays``); the gold's replay
runs once per blueprint and serves every attempt. A conversation waiting on its models holds
only its parked process, and its session ends with it, however it ends. With an MCP server as
the environment (``execution/mcp_environment.py``), a live session is one server process kept
for the conversation, the same way.

Blueprints run side by side up to ``concurrency``, each in a thread of its own, each
conversation sequential inside; outputs come in input order, with at most a window of
blueprints in flight, so memory stays flat.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from ..errors import FunctionsError, InputError
from ..execution.sessions import LiveEnvironment, LiveRun, SessionOutcome, SessionRequest
from ..library.from_python import PythonImport, from_python
from ..llm.chat import Tokens
from ..problems import Problem, RowProblem
from ..rows.records import REJECTED_BY, Row, ensure_id, reject
from .agent import Agent, AgentTurn
from .environment_tools import WRITE, effect_of, load_environment_tools
from .trajectory_check import KEEP_FIELD, check_conversation
from .transcript import read_actions, read_environment, read_outputs
from .user_simulator import UserSimulator, user_errors

STAGE = "simulate"
RESULT_FIELD = "simulation"
USAGE_FIELD = "usage"  # under `simulation`: the tokens of the attempt's agent and user requests (`Tokens.as_usage`)
#: Each row names the input row it came from, ``sim-SEED-INDEX`` (INDEX: the blueprint's line, from 0): a resumed run's
#: checkpoint is checked against it. Not ``blueprint_id``: a blueprints file skips the ids of the blueprints rejected,
#: carries the seed of the run that wrote it, and a row rejected before simulate has no ``blueprint_id``.
REQUEST_FIELD = "simulate_request"

#: How a conversation ended: normally (then it is checked), or at a bound (then it is rejected with that reason).
USER_STOP = "user_stop"
STOP_TOOL = "stop_tool"
TURN_LIMIT = "turn_limit"
TOOL_CALL_LIMIT = "tool_call_limit"
REPLY_TOO_LONG = "reply_too_long"
TIME_LIMIT = "time_limit"
DUPLICATE = "duplicate_conversation"


DEFAULT_STOP_TOOLS = ("transfer_to_human_agents",)
_TALLY = "simulation\t"  # the tally's counts in a run state, apart from the summary's  # tau-bench's hand-over, which ends its conversations


@dataclass(frozen=True)
class Bounds:
    """What one conversation may take, each a setting with its reason code when reached."""

    max_turns: int = 20  # user messages (`turn_limit`): a user that never stops
    max_tool_calls_per_turn: int = 10  # the agent's calls between two user messages (`tool_call_limit`)
    max_reply_chars: int = 8_000  # one message of the agent or the user (`reply_too_long`)
    max_seconds: float = 600.0  # wall time of one conversation, checked before each step (`time_limit`)
    stop_tools: tuple[str, ...] = DEFAULT_STOP_TOOLS  # a call to one ends the conversation


@dataclass(frozen=True)
class Simulation:
    """What runs the conversations: the two models, the environment, the bounds."""

    agent: Agent
    user: UserSimulator
    sessions: LiveEnvironment  # `LiveSessions` (Python classes) or `McpEnvironment` (an MCP server)
    writes: frozenset[str]  # the tools that change the state (by the library's effect, else their names)
    bounds: Bounds = field(default_factory=Bounds)
    attempts: int = 3
    keep_all_verified: bool = False
    seed: int = 0
    concurrency: int = 8
    environment_required: bool = True  # False: the sessions are the environment (an MCP server), blueprints need not name one
    review: Callable[[Row], Row] | None = None  # judges of a conversation the replay kept (`-J`); one they turn down is retried

    def rows(self, blueprints: Iterable[Row], first: int = 0) -> Iterator[Row]:
        """Every blueprint's attempts, in input order: verified ones kept, the others rejected with their reason.

        ``first``: the index of the first blueprint in the whole input (a resumed run skipped those before it).
        """
        stop = threading.Event()
        with ThreadPoolExecutor(max(1, self.concurrency), thread_name_prefix="apigen-conversation") as pool:
            window: deque[Future[list[Row]]] = deque()
            ended = False
            try:
                for index, blueprint in enumerate(blueprints, start=first):
                    window.append(pool.submit(self._stamped, index, blueprint, stop))
                    while len(window) >= 2 * max(1, self.concurrency) or (window and window[0].done()):
                        yield from window.popleft().result()
                while window:
                    yield from window.popleft().result()
                ended = True
            finally:
                stop.set()  # an early end (an error, a closed pipe): conversations still running stop at their next step
                for future in window:
                    future.cancel()
                if not ended:  # and a call in flight (a hung one too) ends now, so that their threads return
                    self.sessions.close()

    def _stamped(self, index: int, blueprint: Row, stop: threading.Event) -> list[Row]:
        rows = self._attempts(blueprint, stop)
        for row in rows:
            row[REQUEST_FIELD] = f"sim-{self.seed}-{index}"
        return rows

    def _attempts(self, blueprint: Row, stop: threading.Event) -> list[Row]:
        if REJECTED_BY in blueprint:  # rejected before: it passes on as it is
            return [blueprint]
        ensure_id(blueprint)
        try:
            plan = BlueprintReading.of(blueprint, environment_required=self.environment_required)
        except RowProblem as error:
            reject(blueprint, STAGE, error.problem)
            return [blueprint]
        rows: list[Row] = []
        seen: set[str] = set()
        with KnownReplays(self.sessions) as replays:  # the gold's replay serves every attempt of the blueprint
            replays.start(SessionRequest("gold", plan.environment, plan.actions))  # it runs while the first attempt talks
            for attempt in range(1, self.attempts + 1):
                if stop.is_set():
                    break
                row = self._attempt(blueprint, plan, attempt, stop, replays)
                if row.get(KEEP_FIELD) is True:
                    fingerprint = _fingerprint(row["messages"])
                    if fingerprint in seen:
                        reject(row, STAGE, Problem(DUPLICATE, "the same conversation as an earlier verified attempt"))
                    seen.add(fingerprint)
                rows.append(row)
                if seen and not self.keep_all_verified:
                    break
        return rows

    def _attempt(self, blueprint: Row, plan: BlueprintReading, attempt: int, stop: threading.Event, replays: KnownReplays) -> Row:
        key = f"{blueprint['id']}:{attempt}"
        conversation = Conversation(self, plan, key, attempt, stop)
        ended = conversation.run()
        if conversation.environment_outcome is not None:  # the check takes it instead of replaying the calls
            replays.remember(SessionRequest(key, plan.environment, conversation.calls), conversation.environment_outcome)
        row = {key_: value for key_, value in blueprint.items() if not key_.startswith("keep_row_after")}
        row["id"] = f"{blueprint['id']}-{attempt}"
        row["blueprint_id"] = blueprint["id"]
        row["attempt"] = attempt
        row["models"] = {"agent": self.agent.model, "user": self.user.model}
        row["messages"] = conversation.messages
        row["tools"] = self.agent.tools
        errors = user_errors(
            plan.instruction,
            conversation.messages,
            stopped=ended.code == USER_STOP,
            gold_writes=[action["name"] for action in plan.actions if action["name"] in self.writes],
        )
        row[RESULT_FIELD] = {
            "ended_by": ended.code,
            "turns": conversation.turns,
            "tool_calls": len(conversation.calls),
            "seconds": round(time.monotonic() - conversation.started, 3),
            "tool_mode": "prompt" if conversation.prompted else "native",
            "user_errors": errors,
            USAGE_FIELD: conversation.tokens.as_usage(),
        }
        if ended.code not in (USER_STOP, STOP_TOOL):
            reject(row, STAGE, ended)
            return row
        checked = check_conversation(row, replays, environment_required=self.environment_required)
        return self.review(checked) if self.review is not None else checked


class KnownReplays:
    """The sessions of one blueprint's check, each run once: the gold's replay serves every attempt, and a
    conversation's own calls ran in its live session, whose final state was read as it ended. A
    ``SessionRunner`` for ``check_conversation``; what it has not seen runs as a live session of its own.
    A session ``start``ed ahead runs while the conversation talks; leaving the ``with`` ends those never asked for."""

    def __init__(self, sessions: LiveEnvironment) -> None:
        self.sessions = sessions
        self._known: dict[bytes, SessionOutcome] = {}
        self._running: dict[bytes, LiveRun] = {}

    def __enter__(self) -> KnownReplays:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for live in self._running.values():
            live.close()
        self._running.clear()

    def start(self, request: SessionRequest) -> None:
        """Start a session now, its outcome read when the check asks for it."""
        key = _session_key(request)
        if key not in self._known and key not in self._running:
            self._running[key] = self.sessions.start_whole(request)

    def remember(self, request: SessionRequest, outcome: SessionOutcome) -> None:
        self._known[_session_key(request)] = outcome

    def run_sessions(self, requests: Iterable[SessionRequest]) -> Iterator[SessionOutcome]:
        for request in requests:
            key = _session_key(request)
            outcome = self._known.get(key)
            if outcome is None:
                running = self._running.pop(key, None)
                if running is not None:
                    with running:
                        outcome = running.end()
                else:
                    [outcome] = self.sessions.run_sessions([request])
                if outcome.ok:
                    self._known[key] = outcome
            yield replace(outcome, key=request.key)


def _session_key(request: SessionRequest) -> bytes:
    return orjson.dumps([request.environment, list(request.calls)], option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class BlueprintReading:
    """What a blueprint row gives a conversation, read and checked for shape (a defect rejects the row)."""

    instruction: str
    persona: str | None
    environment: dict[str, dict[str, Any]]
    actions: list[dict[str, Any]]
    outputs: list[str]

    @classmethod
    def of(cls, row: Row, *, environment_required: bool = True) -> BlueprintReading:
        instruction = row.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise RowProblem("no_instruction", "the blueprint has no `instruction` for the user simulator to act out")
        source = row.get("blueprint_source")
        persona = source.get("persona") if isinstance(source, dict) else None
        return cls(
            instruction,
            persona if isinstance(persona, str) else None,
            read_environment(row, required=environment_required),
            read_actions(row),
            read_outputs(row),
        )


class Conversation:
    """One attempt at a blueprint: the user and the agent in turn, the agent's calls run in the environment."""

    def __init__(self, simulation: Simulation, plan: BlueprintReading, key: str, attempt: int, stop: threading.Event) -> None:
        self.simulation = simulation
        self.plan = plan
        self.key = key
        self.stop = stop
        self.messages: list[dict[str, Any]] = [simulation.agent.system_message()]
        self.calls: list[dict[str, Any]] = []  # the calls run so far in the conversation's live session
        self.session: LiveRun | None = None  # opened at the agent's first calls, kept to the end
        self.environment_outcome: SessionOutcome | None = None  # the session's, final state and all, when it ended well
        self.turns = 0
        self.prompted = False  # some of the agent's replies were asked with the tools in the prompt
        self.tokens = Tokens()  # the agent's and the user's requests, failed ones too (cached replies cost none)
        self.started = time.monotonic()
        # a later attempt asks with another seed, so that it can go otherwise (and is not the cached first attempt)
        self.options: dict[str, Any] = {} if attempt == 1 else {"seed": _attempt_seed(simulation.seed, key)}

    def run(self) -> Problem:
        """Talk until the conversation ends; the ``Problem`` says how (``user_stop``, ``stop_tool``, or a bound or failure).

        The environment's final state is read when the conversation ended normally (it is then checked);
        its session ends in every case.
        """
        try:
            ended = self._talk()
            if ended.code in (USER_STOP, STOP_TOOL) and self.session is not None:
                outcome = self.session.end()
                self.environment_outcome = outcome if outcome.ok else None
            return ended
        finally:
            if self.session is not None:
                self.session.close()

    def _talk(self) -> Problem:
        bounds = self.simulation.bounds
        while self.turns < bounds.max_turns:
            late = self._late()
            if late is not None:
                return late
            said = self.simulation.user.reply(self.key, self.plan.instruction, self.plan.persona, self.messages, self.options)
            self.tokens += said.tokens
            if said.problem is not None:
                return said.problem
            if len(said.text) > bounds.max_reply_chars:
                return self._too_long("user simulator", said.text)
            self.turns += 1
            if said.text:
                self.messages.append({"role": "user", "content": said.text})
            if said.stop:
                return Problem(USER_STOP, "the user ended the conversation")
            ended = self._agent_turn()
            if ended is not None:
                return ended
        return Problem(TURN_LIMIT, f"the user did not end the conversation within {bounds.max_turns} turns (`--max-turns`)")

    def _agent_turn(self) -> Problem | None:
        """The agent's messages until it speaks to the user; a ``Problem`` when the conversation ends in it."""
        bounds = self.simulation.bounds
        calls_this_turn = 0
        while True:
            late = self._late()
            if late is not None:
                return late
            turn = self.simulation.agent.reply(self.key, self.messages, self._offline_agent_task(), self.options)
            self.tokens += turn.tokens
            if turn.problem is not None:
                return turn.problem
            self.prompted = self.prompted or turn.prompted
            if len(turn.text) > bounds.max_reply_chars:
                return self._too_long("agent", turn.text)
            self.messages.append(turn.message())
            if not turn.tool_calls:
                return None
            calls_this_turn += len(turn.tool_calls)
            if calls_this_turn > bounds.max_tool_calls_per_turn:
                return Problem(
                    TOOL_CALL_LIMIT,
                    f"the agent made more than {bounds.max_tool_calls_per_turn} tool calls without answering the user "
                    "(`--max-tool-calls`)",
                )
            ended = self._run_calls(turn)
            if ended is not None:
                return ended

    def _run_calls(self, turn: AgentTurn) -> Problem | None:
        """Run the turn's calls after the earlier ones, in the conversation's session; their results become tool messages."""
        new: list[dict[str, Any]] = []
        for call in turn.tool_calls:
            arguments = _arguments(call["function"]["arguments"])
            new.append({"name": call["function"]["name"], "arguments": arguments})
        runnable = [action for action in new if isinstance(action["arguments"], dict)]
        if self.session is None:
            self.session = self.simulation.sessions.open(self.key, self.plan.environment)
        ran = list(self.session.run(runnable))
        for call, action in zip(turn.tool_calls, new, strict=True):
            if not isinstance(action["arguments"], dict):
                content = "Error: the arguments are not a JSON object; the call was not made"
            elif ran:
                content = _tool_content(ran.pop(0))
            else:
                break  # the session ended before this call
            self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        self.calls += runnable
        outcome = self.session.outcome
        if outcome is not None and outcome.problem is not None:
            return Problem(outcome.problem.code, f"the environment failed: {outcome.problem.message}")
        stops = [action["name"] for action in new if action["name"] in self.simulation.bounds.stop_tools]
        if stops:
            return Problem(STOP_TOOL, f"the agent called `{stops[0]}`, which ends the conversation (`--stop-tools`)")
        return None

    def _offline_agent_task(self) -> dict[str, Any]:
        return {
            "task": "simulated_agent",
            "actions": self.plan.actions,
            "writes": sorted(self.simulation.writes),
            "outputs": self.plan.outputs,
            "messages": self.messages[1:],
        }

    def _late(self) -> Problem | None:
        if self.stop.is_set():
            return Problem("interrupted", "the run stopped before the conversation ended")
        limit = self.simulation.bounds.max_seconds
        if time.monotonic() - self.started >= limit:
            return Problem(TIME_LIMIT, f"the conversation took more than {limit:g} s (`--max-seconds`)")
        return None

    def _too_long(self, who: str, text: str) -> Problem:
        limit = self.simulation.bounds.max_reply_chars
        return Problem(
            REPLY_TOO_LONG, f"a message of the {who} has {len(text)} characters, more than {limit} (`--max-reply-chars`)"
        )


def simulation_tools(library: str | None, functions: str) -> tuple[list[dict[str, Any]], set[str]]:
    """The agent's tools (library entries of the environment's classes) and which of them write.

    From ``library`` (``--tools``, as ``library from-python --class`` writes it: a library you
    edited keeps your descriptions), else read from the classes of ``functions``, as
    ``library from-python`` would (functions outside a class are no tools of an environment).
    """
    if library is not None:
        try:
            environment = load_environment_tools(library)
        except InputError as error:
            raise InputError(
                f"`--tools {library}`: {error.message}",
                hint="pass the library `apigen library from-python FILE --class NAME` writes, "
                "or leave `--tools` out to read the tools from `--functions`",
            ) from None
        definitions = [tool.api.definition for tool in environment.tools.values()]
    else:
        definitions = [tool for tool in from_python([functions], PythonImport()).tools if tool.get("class")]
        if not definitions:
            raise FunctionsError(
                f"`{functions}` defines no class with public methods, so the agent would have no tool",
                hint="pass `--functions` with the environment's classes, or `--tools ENV_LIBRARY`",
            )
    writes = {str(tool["name"]) for tool in definitions if effect_of(tool, str(tool["name"])) == WRITE}
    return definitions, writes


def _arguments(raw: Any) -> Any:
    """A call's arguments as an object, or the raw value when it is none (the call is then not made)."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            value = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return raw
        return value
    return raw


def _tool_content(call: Any) -> str:
    """A call's result as its tool message says it: the value (JSON unless a string), or the error."""
    if call.ok:
        result = call.outcome.result
        return result if isinstance(result, str) else orjson.dumps(result, default=str).decode()
    return f"Error: {call.outcome.message or call.outcome.error_type}"


def _fingerprint(messages: Sequence[dict[str, Any]]) -> str:
    return hashlib.sha256(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _attempt_seed(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=4).digest(), "big") >> 1


@dataclass
class SimulationTally:
    """What the summary says: blueprints and conversations verified, attempts, how conversations ended, user errors.

    It counts rows as they are written (``counted``), so that a resumed run's checkpoint saves
    the figures of exactly the blueprints written (``to_counts``, ``restore``).
    """

    blueprints: int = 0
    verified_blueprints: int = 0
    conversations: int = 0
    verified: int = 0
    ended_by: Counter[str] = field(default_factory=Counter)
    user_errors: Counter[str] = field(default_factory=Counter)
    flagged: int = 0
    _current: object = None  # the request (``REQUEST_FIELD``) of the last row counted
    _current_verified: bool = False

    def counted(self, rows: Iterable[Row]) -> Iterator[Row]:
        """``rows`` (``Simulation.rows``'), counted one by one as they go by."""
        for row in rows:
            request = row.get(REQUEST_FIELD)
            if request is None or request != self._current:
                self.blueprints += 1
                self._current, self._current_verified = request, False
            result = row.get(RESULT_FIELD)
            if isinstance(result, dict):
                self.conversations += 1
                self.ended_by[str(result.get("ended_by"))] += 1
                errors = result.get("user_errors") or []
                self.flagged += 1 if errors else 0
                self.user_errors.update(errors)
                if row.get(KEEP_FIELD) is True:
                    self.verified += 1
                    if not self._current_verified:
                        self.verified_blueprints += 1
                        self._current_verified = True
            yield row

    def to_counts(self) -> dict[str, int]:
        """The tally as flat counts, for a run's checkpoints (``resumable``)."""
        counts = {
            f"{_TALLY}blueprints": self.blueprints,
            f"{_TALLY}verified_blueprints": self.verified_blueprints,
            f"{_TALLY}conversations": self.conversations,
            f"{_TALLY}verified": self.verified,
            f"{_TALLY}flagged": self.flagged,
        }
        counts.update({f"{_TALLY}ended_by\t{code}": count for code, count in self.ended_by.items()})
        counts.update({f"{_TALLY}user_errors\t{code}": count for code, count in self.user_errors.items()})
        return counts

    def restore(self, counts: dict[str, int]) -> None:
        """Carry on from an earlier session's tally (``to_counts``)."""
        for key, count in counts.items():
            if not key.startswith(_TALLY):
                continue
            name, _tab, code = key[len(_TALLY) :].partition("\t")
            if name in ("ended_by", "user_errors"):
                getattr(self, name)[code] = count
            elif name in ("blueprints", "verified_blueprints", "conversations", "verified", "flagged"):
                setattr(self, name, count)

    def lines(self) -> list[str]:
        share = f" ({100 * self.verified_blueprints / self.blueprints:.0f}%)" if self.blueprints else ""
        attempts = f"; {self.conversations / self.verified:.2f} attempts per verified conversation" if self.verified else ""
        lines = [
            f"blueprints verified: {self.verified_blueprints} of {self.blueprints}{share}; "
            f"conversations: {self.verified} verified of {self.conversations}{attempts}",
            "conversations ended by: " + (", ".join(f"{code} {count}" for code, count in self.ended_by.most_common()) or "none"),
        ]
        rate = f" ({100 * self.flagged / self.conversations:.0f}%)" if self.conversations else ""
        kinds = ", ".join(f"{code} {count}" for code, count in self.user_errors.most_common())
        lines.append(
            f"user simulator errors: {self.flagged} of {self.conversations} conversations{rate}" + (f": {kinds}" if kinds else "")
        )
        return lines
