"""An environment's tools as a blueprint needs them: which read, which write, and which read finds what a write needs.

The tools come from an API library that ``library from-python --class`` wrote: every entry
names its class in ``class``. A tool reads or writes by the library's word when it has one
(``"effect": "read"`` or ``"write"``), else by the verb its name starts with (``get_``,
``list_``, ``find_`` read; ``cancel_``, ``update_``, ``mkdir`` write); a tool whose verb says
neither (``transfer_to_human_agents``) is ``other``: it is offered as a read, and no check
expects it to change anything.

Which read finds an id a write needs is guessed from names, since a Python signature says
little about what a result holds: a read *provides* ``order_id`` when it does not take
``order_id`` and its name holds ``order`` or ``orders`` (``list_user_orders``); a read
*looks up* what a write acts on when both take the same parameter (``get_order_details``
and ``cancel_pending_order`` both take ``order_id``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..library.loader import Api, load_library

READ = "read"
WRITE = "write"
OTHER = "other"
EFFECTS = (READ, WRITE)

READ_VERBS = frozenset(
    [
        "get",
        "list",
        "find",
        "search",
        "lookup",
        "look",
        "read",
        "show",
        "count",
        "view",
        "describe",
        "fetch",
        "query",
        "check",
        "display",
        "ls",
        "pwd",
        "cat",
        "grep",
        "tail",
        "head",
        "wc",
        "du",
        "diff",
        "sort",
        "estimate",
        "calculate",
        "compute",
        "is",
        "has",
        "can",
        "verify",
        "inspect",
    ]
)
WRITE_VERBS = frozenset(
    [
        "cancel",
        "modify",
        "update",
        "create",
        "add",
        "delete",
        "remove",
        "set",
        "change",
        "edit",
        "insert",
        "put",
        "post",
        "book",
        "return",
        "exchange",
        "place",
        "make",
        "mkdir",
        "touch",
        "rm",
        "rmdir",
        "mv",
        "cp",
        "move",
        "copy",
        "rename",
        "write",
        "send",
        "buy",
        "sell",
        "pay",
        "register",
        "reset",
        "apply",
        "assign",
        "submit",
        "upload",
        "save",
        "enable",
        "disable",
        "start",
        "stop",
        "lock",
        "unlock",
        "fill",
        "refund",
        "append",
        "replace",
        "clear",
        "close",
        "open",
        "reserve",
        "schedule",
    ]
)
#: writes that bring something new into being: a name the state does not hold yet is what they take
CREATE_VERBS = frozenset(
    ["create", "add", "make", "mkdir", "touch", "register", "post", "book", "place", "insert", "reserve", "schedule"]
)

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def name_words(name: str) -> list[str]:
    """``cancel_pendingOrder`` -> ``["cancel", "pending", "order"]``."""
    return [word.lower() for part in name.split("_") for word in _WORD.findall(part)]


@dataclass(frozen=True)
class EnvironmentTool:
    """One tool of the environment: its library entry, its class, and whether it reads or writes."""

    api: Api
    class_name: str
    effect: str  # READ, WRITE or OTHER

    @property
    def name(self) -> str:
        return self.api.name

    @property
    def parameters(self) -> list[str]:
        return list(self.api.tool.parameters.properties)

    @property
    def required(self) -> list[str]:
        return list(self.api.tool.parameters.required_in_order)

    @property
    def creates(self) -> bool:
        words = name_words(self.name)
        return bool(words) and words[0] in CREATE_VERBS

    def provides(self, parameter: str) -> bool:
        """Whether this tool's result plausibly holds ``parameter``, an id another tool needs (see the module's words)."""
        if self.effect == WRITE or parameter in self.parameters:
            return False
        words = name_words(parameter)
        if len(words) < 2 or words[-1] != "id":
            return False
        entity = words[-2]
        mine = set(name_words(self.name))
        return entity in mine or entity + "s" in mine or entity + "es" in mine


@dataclass(frozen=True)
class EnvironmentTools:
    """Every tool of the environment's library, by name, and the classes they belong to."""

    tools: dict[str, EnvironmentTool]
    path: str

    @property
    def classes(self) -> list[str]:
        return sorted({tool.class_name for tool in self.tools.values()})

    @property
    def writes(self) -> list[EnvironmentTool]:
        return [tool for tool in self.tools.values() if tool.effect == WRITE]

    @property
    def reads(self) -> list[EnvironmentTool]:
        return [tool for tool in self.tools.values() if tool.effect != WRITE]


def effect_of(definition: dict[str, Any], name: str) -> str:
    """Read or write: the library's ``effect`` when given, else the verb the tool's name starts with."""
    declared = definition.get("effect")
    if declared in EFFECTS:
        return str(declared)
    words = name_words(name)
    verb = words[0] if words else ""
    if verb in READ_VERBS:
        return READ
    if verb in WRITE_VERBS:
        return WRITE
    return OTHER


def load_environment_tools(path: str) -> EnvironmentTools:
    """The environment library at ``path``; ``InputError`` when it is not one (an entry names no class, no tool writes)."""
    apis = load_library(path)
    tools: dict[str, EnvironmentTool] = {}
    for api in apis:
        owner = api.definition.get("class")
        if not isinstance(owner, str) or not owner:
            raise InputError(
                f"the tool `{api.name}` of `{path}` names no `class`: a blueprint's actions run on a stateful environment",
                hint="write the library with `apigen library from-python FILE_OR_FOLDER --class NAME`, which names each tool's class",
            )
        declared = api.definition.get("effect")
        if declared is not None and declared not in EFFECTS:
            raise InputError(
                f"the tool `{api.name}` of `{path}` has the effect {declared!r}; it should be `read` or `write`",
                hint="fix or remove the tool's `effect`",
            )
        tools[api.name] = EnvironmentTool(api, owner, effect_of(api.definition, api.name))
    environment = EnvironmentTools(tools, path)
    if not environment.writes:
        counts = Counter(tool.effect for tool in tools.values())
        raise InputError(
            f"no tool of `{path}` changes the state ({counts[READ]} read, {counts[OTHER]} neither, by their names): "
            "a blueprint is built around a write",
            hint='mark the tools that change the state with `"effect": "write"` in the library',
        )
    return environment
