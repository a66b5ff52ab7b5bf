"""``--policy-checks FILE.py``: the user's own rules for blueprints, run in worker processes like any user code.

A policy check is a top-level function of the file whose parameters are all named from
``initial_state``, ``actions``, ``results`` and ``final_state`` (it is called with those it
names, by keyword): ``actions`` the gold calls, ``results`` one entry per action (``name``,
``ok``, ``result`` or ``error``, ``changed_state``), the states per class name as the checks
compare them. It returns its violations: a list of strings, one string, or nothing
(``None`` or an empty list) when the blueprint keeps the policy. Other functions of the file
(helpers) are not checks.

The checks are found by reading the file's syntax, never by importing it in apigen's process;
they run through an ``Executor`` of their own. A check that raises, or returns anything else,
rejects the blueprint (``policy_check_error``): a rule that could not be applied is no pass.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..execution.calls import Outcome, Pending
from ..problems import Problem, show_value

ARGUMENTS = ("initial_state", "actions", "results", "final_state")
MAX_FILE_BYTES = 1_000_000  # a policy file larger than this is refused before it is parsed
MAX_VIOLATIONS_SHOWN = 5


@dataclass(frozen=True)
class PolicyCheck:
    """One check: its function's name and the arguments it takes."""

    name: str
    parameters: tuple[str, ...]

    def arguments(self, everything: dict[str, Any]) -> dict[str, Any]:
        return {name: everything[name] for name in self.parameters}


class CallRunner(Protocol):
    """What running the checks needs of an executor: calls started at once, moved on while other work goes, then waited for."""

    def submit(self, name: str, arguments: dict[str, Any], http: Any = None, mcp: Any = None) -> Pending: ...

    def poll(self) -> None: ...

    def wait(self, pendings: Any) -> None: ...


@dataclass(frozen=True)
class PolicyChecks:
    """The checks of one ``--policy-checks`` file, and the executor that runs them."""

    checks: tuple[PolicyCheck, ...]
    executor: CallRunner


def find_policy_checks(path: str) -> tuple[PolicyCheck, ...]:
    """The policy checks ``path`` defines, read from its syntax; ``InputError`` when there are none or it does not parse."""
    file = Path(path)
    if file.suffix != ".py" or not file.is_file():
        raise InputError(
            f"`--policy-checks` names `{path}`, which is not a Python file", hint="give a .py file of check functions"
        )
    if file.stat().st_size > MAX_FILE_BYTES:
        raise InputError(
            f"`--policy-checks` file `{path}` is larger than {MAX_FILE_BYTES:,} bytes", hint="keep the checks in a small file"
        )
    try:
        tree = ast.parse(file.read_bytes(), filename=path)
    except (SyntaxError, ValueError, RecursionError) as error:
        line = getattr(error, "lineno", None)
        where = f"line {line} of `{path}`" if line else f"`{path}`"
        raise InputError(f"{where} is not valid Python: {error}", hint="fix the `--policy-checks` file") from None
    checks = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        arguments = node.args
        names = tuple(argument.arg for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs])
        if names and all(name in ARGUMENTS for name in names) and not arguments.posonlyargs:
            checks.append(PolicyCheck(node.name, names))
    if not checks:
        raise InputError(
            f"`--policy-checks` file `{path}` defines no policy check",
            hint=f"define functions whose parameters are named from {', '.join(ARGUMENTS)}, returning a list of violations",
        )
    return tuple(checks)


def violations_of(check: PolicyCheck, outcome: Outcome) -> list[str] | Problem:
    """What one check said: its violations, or the ``policy_check_error`` that keeps it from saying."""
    if not outcome.ok:
        said = f"{outcome.error_type}: {outcome.message}" if outcome.error_type else outcome.message
        return Problem("policy_check_error", f"the policy check `{check.name}` failed: {said}")
    value = outcome.result
    if value is None or value == [] or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return Problem(
        "policy_check_error",
        f"the policy check `{check.name}` returned {show_value(value)}; a check returns a list of violations (strings) or nothing",
    )


def policy_problem(checks: Sequence[PolicyCheck], outcomes: Sequence[Outcome]) -> Problem | None:
    """The blueprint's verdict from every check's outcome: the first error, else its violations, else None."""
    violations: list[str] = []
    for check, outcome in zip(checks, outcomes, strict=True):
        said = violations_of(check, outcome)
        if isinstance(said, Problem):
            return said
        violations.extend(f"`{check.name}`: {violation}" for violation in said)
    if not violations:
        return None
    more = len(violations) - MAX_VIOLATIONS_SHOWN
    shown = "; ".join(violations[:MAX_VIOLATIONS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
    return Problem("policy_violation", shown)
