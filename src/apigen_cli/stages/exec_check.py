"""Stage 3 of the pipeline, the execution check: every call of a row must really run.

Each call goes to the ``Executor`` (a Python function in a worker process, a
REST API when the row's tool has an ``http`` binding, an MCP server's tool when
it has an ``mcp`` binding). The row gets
``execution_result``, one entry per call in call order::

    {"name": "add", "ok": true, "result": 3}
    {"name": "div", "ok": false, "error": {"type": "ZeroDivisionError", "message": "...", "code": "exception"}}

and is kept (``keep_row_after_execution_check: true``) only when every call
succeeded; otherwise it is rejected with the code of its first failed call.
Rows are executed concurrently, a bounded window of them at a time, and come out
in input order.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import FunctionsError
from ..execution.calls import Outcome, Pending
from ..problems import Problem, RowProblem, show_value
from ..rows.records import IRRELEVANCE, KIND, REJECTED_BY, TOOLS, Row, ensure_id, read_answers, read_call, reject
from ..rows.results import ErrorShapes, is_empty_result
from ..schema.tools import tool_binding

if TYPE_CHECKING:  # the caller brings the executor: importing the stage does not load the worker pool
    from ..execution.executor import Executor

STAGE = "exec_check"
KEEP_FIELD = "keep_row_after_execution_check"
RESULT_FIELD = "execution_result"
NO_IMPLEMENTATION = "no_implementation"


@dataclass(frozen=True)
class ExecPolicy:
    """What counts as a failed call beyond errors, and how many rows run at once.

    - ``fail_on_empty`` (default off): a result of ``None``, ``[]``, ``{}`` or ``""``
      fails the call. Off by default since a function may rightly return nothing
      (an action, a search with no match); turn it on when your functions always answer.
    - ``fail_on_error_result`` (default on): a result that is error-shaped fails the
      call (``error_result``), by the rule of ``rows.results``: an error payload
      (``{"error": ...}``, ``"status": "error"``, ``"success": false``) or a text that
      reads as an error (``Database error: ...``). On by default: the paper's judge
      rejects results that "reflect that the function calls were not executed successfully",
      and tools that do not flag their failures are common.
    - ``error_shapes``: the text rules: the built-in one on or off, the user's patterns.
    - ``window``: rows in flight at once; memory stays flat whatever the input size.
    """

    fail_on_empty: bool = False
    fail_on_error_result: bool = True
    error_shapes: ErrorShapes = field(default_factory=ErrorShapes)
    window: int = 1024

    def problem_with(self, result: Any) -> Problem | None:
        """Why a result that came back fails its call under this policy, or ``None``."""
        if self.fail_on_empty and is_empty_result(result):
            return Problem("empty_result", f"returned an empty result ({show_value(result)}) and `--empty-result` is `fail`")
        if self.fail_on_error_result:
            why = self.error_shapes.why_error(result)
            if why is not None:
                said = f"returned an error: {show_value(result, 200)}"
                return Problem("error_result", f"{said} ({why})" if isinstance(result, str) else said)
        return None


@dataclass
class CallTally:
    """What became of the calls one exec-check ran: how many found something to run them, and which did not.

    A row rejected ``no_implementation`` is data. But when *no* call of any row found an
    implementation, the command was pointed at the wrong library (or none), and 0 rows with
    exit 0 would hide that: ``check_something_ran`` makes it an error.
    """

    implemented: int = 0
    rows_without: int = 0  # rows with a call that nothing implements
    missing: Counter[str] = field(default_factory=Counter)  # function name -> calls

    def check_something_ran(self, functions: str | None) -> None:
        """Raise ``FunctionsError`` when calls were made and not one of them had an implementation."""
        if self.implemented or not self.missing:
            return
        names = ", ".join(f"`{name}` ({count})" for name, count in self.missing.most_common(5))
        more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
        rows = "the one row" if self.rows_without == 1 else f"the {self.rows_without} rows"
        where = (
            f"`{functions}` defines none of the functions they call"
            if functions
            else "no Python library was given and their tools have no `http` or `mcp` binding"
        )
        raise FunctionsError(
            f"no call of {rows} could run: {where}: {names}{more}; every row was rejected as `no_implementation`",
            hint="pass `--functions` the Python library that defines them (a .py file, a folder of them, or a module)",
        )


class _Flight:
    """A row on its way through: its calls' pending outcomes, or a verdict already reached."""

    __slots__ = ("row", "calls", "pendings")

    def __init__(self, row: Row, calls: list[dict[str, Any]] | None = None, pendings: list[Pending] | None = None) -> None:
        self.row = row
        self.calls = calls
        self.pendings = pendings

    def done(self) -> bool:
        pendings = self.pendings
        return pendings is None or all(pending.outcome is not None for pending in pendings)


def exec_check(
    rows: Iterable[Row], executor: Executor, policy: ExecPolicy | None = None, tally: CallTally | None = None
) -> Iterator[Row]:
    """Execute each row's calls and yield it with its verdict; rows rejected earlier pass through untouched.

    ``tally``, when given, counts what became of the calls (see ``CallTally``).
    """
    policy = policy or ExecPolicy()
    tally = tally or CallTally()
    executor.start()
    window: deque[_Flight] = deque()
    source = iter(rows)
    try:
        for row in source:
            window.append(_begin(row, executor))
            executor.poll()
            while window and window[0].done():
                yield _finish(window.popleft(), policy, tally)
            while len(window) >= policy.window:
                head = window.popleft()
                if head.pendings:
                    executor.wait(head.pendings)
                yield _finish(head, policy, tally)
        while window:
            head = window.popleft()
            if head.pendings:
                executor.wait(head.pendings)
            yield _finish(head, policy, tally)
    finally:
        # Stopped early (an error, or a reader that went away): let the source release
        # its file now rather than whenever the garbage collector gets to it.
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _begin(row: Row, executor: Executor) -> _Flight:
    if REJECTED_BY in row:
        return _Flight(row)
    ensure_id(row)
    calls, problem = _calls_of(row)
    if problem is not None:
        reject(row, STAGE, problem)
        return _Flight(row)
    assert calls is not None
    tools = row.get(TOOLS)
    http = _bindings(tools, "http") if calls else {}
    mcp = _bindings(tools, "mcp") if calls else {}
    pendings = [executor.submit(call["name"], call["arguments"], http.get(call["name"]), mcp.get(call["name"])) for call in calls]
    return _Flight(row, calls, pendings)


def _calls_of(row: Row) -> tuple[list[dict[str, Any]] | None, Problem | None]:
    """The row's calls, or why it cannot be executed (it has not been through format-check)."""
    try:
        answers = read_answers(row, strict=True)
        if not answers and row.get(KIND) != IRRELEVANCE:
            return None, Problem("no_calls", "`answers` is an empty list: there is nothing to execute")
        for position, call in enumerate(answers, start=1):
            answers[position - 1] = read_call(call, position, strict=True)
    except RowProblem as error:
        return None, Problem("not_format_checked", f"{error.problem.message}; run `apigen format-check` first")
    return answers, None


def _bindings(tools: Any, kind: str) -> dict[str, Any]:
    """Tool name → its ``http`` (or ``mcp``) binding, for the tools that have one (beside or inside ``function``)."""
    if not isinstance(tools, list):
        return {}
    found: dict[str, Any] = {}
    for tool in tools:
        name, binding = tool_binding(tool, kind)
        if binding is not None and name is not None:
            found[name] = binding
    return found


def _finish(flight: _Flight, policy: ExecPolicy, tally: CallTally) -> Row:
    row = flight.row
    if flight.pendings is None:
        return row
    assert flight.calls is not None
    entries: list[dict[str, Any]] = []
    first_problem: Problem | None = None
    lacking = False  # a call of this row has no implementation
    for position, (call, pending) in enumerate(zip(flight.calls, flight.pendings, strict=True), start=1):
        outcome = pending.outcome
        assert outcome is not None
        entry, problem = _entry(call["name"], outcome, policy)
        entries.append(entry)
        if outcome.code == NO_IMPLEMENTATION:
            tally.missing[call["name"]] += 1
            lacking = True
        else:
            tally.implemented += 1
        if problem is not None and first_problem is None:
            first_problem = Problem(problem.code, f"call {position} `{call['name']}`: {problem.message}")
    row[RESULT_FIELD] = entries
    tally.rows_without += lacking
    if first_problem is not None:
        return reject(row, STAGE, first_problem)
    row[KEEP_FIELD] = True
    return row


def _entry(name: str, outcome: Outcome, policy: ExecPolicy) -> tuple[dict[str, Any], Problem | None]:
    if not outcome.ok:
        error = {"type": outcome.error_type, "message": outcome.message, "code": outcome.code}
        text = f"raised {outcome.error_type}: {outcome.message}" if outcome.code == "exception" else outcome.message
        return {"name": name, "ok": False, "error": error}, Problem(outcome.code, text)
    result = outcome.result
    problem = policy.problem_with(result)
    if problem is not None:
        kind = "EmptyResult" if problem.code == "empty_result" else "ErrorResult"
        error = {"type": kind, "message": problem.message, "code": problem.code}
        return {"name": name, "ok": False, "result": result, "error": error}, problem
    entry = {"name": name, "ok": True, "result": result}
    if outcome.truncated:
        entry["truncated"] = True
    return entry, None
