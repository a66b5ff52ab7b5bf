"""The state of an environment: canonical form, digest and diff (environments/state.py)."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import json
import os
import subprocess
import sys
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from apigen_cli.environments import Limits, StateError, canonical, diff, digest, state_of
from apigen_cli.environments.state import Change, canonical_json

SAMPLE_STORE = Path(__file__).resolve().parent.parent / "sample_data" / "store"
STATE_MODULE = Path(__file__).resolve().parent.parent / "src" / "apigen_cli" / "environments" / "state.py"


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    y: float
    _cache: Any = None


class Pair(NamedTuple):
    left: str
    right: int


class Slotted:
    __slots__ = ("name", "_secret", "empty")

    def __init__(self) -> None:
        self.name = "s"
        self._secret = "hidden"


class WithState:
    def __init__(self) -> None:
        self.noise = [1, 2, 3]

    def state(self) -> dict[str, Any]:
        return {"kept": 1.0}


class EqualByName:
    """Defines __eq__ but no state(): still read by its public attributes."""

    def __init__(self, name: str, note: str) -> None:
        self.name = name
        self.note = note

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EqualByName) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class StatusAttribute:
    """An attribute called ``state`` holding data is data, not a method."""

    def __init__(self) -> None:
        self.state = "pending"


def counting() -> Iterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2}, {"a": 2, "b": 1}),
        ((1, 2), [1, 2]),
        ({3, 1, 2}, [1, 2, 3]),
        (frozenset({"b", "a"}), ["a", "b"]),
        (25.0, 25),
        (-0.0, 0),
        (2.5, 2.5),
        (float("nan"), {"$float": "nan"}),
        (float("-inf"), {"$float": "-inf"}),
        (decimal.Decimal("25.00"), 25),
        (decimal.Decimal("12.5"), 12.5),
        (decimal.Decimal("0.1"), {"$decimal": "0.1"}),
        (fractions.Fraction(1, 3), {"$fraction": "1/3"}),
        (True, True),
        (Color.RED, "red"),
        (Level.HIGH, 3),
        (datetime.date(2024, 2, 29), "2024-02-29"),
        (datetime.timedelta(minutes=1), 60),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (b"caf\xc3\xa9", "café"),
        (b"\xff", {"$bytes": "/w=="}),
        ({1: "one", None: "none"}, {"1": "one", "null": "none"}),
        (Point(1, 2.0), {"$class": "Point", "x": 1, "y": 2}),
        (Pair("a", 1), {"$class": "Pair", "left": "a", "right": 1}),
        (Slotted(), {"$class": "Slotted", "name": "s"}),
        (WithState(), {"kept": 1}),
        (EqualByName("a", "x"), {"$class": "EqualByName", "name": "a", "note": "x"}),
        (StatusAttribute(), {"$class": "StatusAttribute", "state": "pending"}),
        (collections.OrderedDict([("z", 1), ("a", 2)]), {"a": 2, "z": 1}),
        (collections.deque([1, 2]), [1, 2]),
        (len, {"$class": "function", "$name": "len"}),
        (Point, {"$class": "type", "$name": "Point"}),
    ],
)
def test_canonical_forms(value: Any, expected: Any) -> None:
    result = canonical(value)
    assert canonical_json(result) == canonical_json(expected)
    assert canonical(result) == result  # canonical of a canonical value is that value


def test_a_generator_in_the_state_is_named_never_consumed() -> None:
    generator = counting()
    assert canonical({"g": generator}) == {"g": {"$class": "generator"}}
    assert next(generator) == 1


def test_numbers_compare_by_value_and_booleans_stay_apart() -> None:
    assert digest({"price": 25}) == digest({"price": 25.0}) == digest({"price": decimal.Decimal("25")})
    assert digest({"flag": True}) != digest({"flag": 1})
    assert digest([0.1 + 0.2]) != digest([0.3])


def test_dict_and_set_order_do_not_matter() -> None:
    first = {"tags": {"red", "green", "blue"}, "users": {"u1": 1, "u2": 2}}
    second = {"users": {"u2": 2, "u1": 1}, "tags": {"blue", "red", "green"}}
    assert digest(first) == digest(second)
    assert canonical_json(canonical(first)) == canonical_json(canonical(second))


def test_a_set_of_objects_sorts_by_content() -> None:
    one = {EqualByName("b", "2"), EqualByName("a", "1")}
    two = {EqualByName("a", "1"), EqualByName("b", "2")}
    assert canonical(one) == canonical(two)
    assert [item["name"] for item in canonical(one)] == ["a", "b"]


def test_two_keys_that_read_the_same_are_refused_naming_the_path() -> None:
    with pytest.raises(StateError, match=r'Store\.index: two keys both read as "1"'):
        state_of(type("Store", (), {"__init__": lambda self: setattr(self, "index", {1: "a", "1": "b"})})())


# --- object graphs ---------------------------------------------------------------------


class Directory:
    def __init__(self, name: str, parent: Directory | None) -> None:
        self.name = name
        self.parent = parent
        self.contents: dict[str, Any] = {}


class FileSystem:
    def __init__(self) -> None:
        self.root = Directory("/", None)
        self._current = self.root

    def mkdir(self, name: str) -> None:
        self._current.contents[name] = Directory(name, self._current)


def test_a_tree_whose_nodes_point_at_their_parent_is_a_finite_canonical_form() -> None:
    fs = FileSystem()
    fs.mkdir("docs")
    fs._current = fs.root.contents["docs"]
    fs.mkdir("old")
    state = state_of(fs)
    docs = state["root"]["contents"]["docs"]
    assert docs["parent"] == {"$ref": "FileSystem.root"}
    assert docs["contents"]["old"]["parent"] == {"$ref": 'FileSystem.root.contents["docs"]'}
    again = FileSystem()
    again.mkdir("docs")
    again.root.contents["docs"].contents["old"] = Directory("old", again.root.contents["docs"])
    assert digest(state_of(again)) == digest(state)  # same tree, built another way


def test_an_object_reached_twice_without_a_cycle_is_written_out_both_times() -> None:
    shared = Point(1, 2)
    assert canonical({"a": shared, "b": shared}) == canonical({"a": Point(1, 2), "b": Point(1, 2)})


def test_a_self_containing_list_is_a_reference() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert canonical(loop, root="x") == [1, {"$ref": "x"}]


# --- hostile state -----------------------------------------------------------------------


class Endless(collections.abc.Sequence[int]):
    """A sequence that claims to be huge and yields forever."""

    def __len__(self) -> int:
        return sys.maxsize

    def __getitem__(self, index: Any) -> Any:
        return index


class BrokenState:
    def state(self) -> Any:
        raise RuntimeError("database closed")


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_too_deep_too_many_and_too_long_are_refused_naming_the_path() -> None:
    with pytest.raises(StateError, match=r"^Store\[0\]\[0\]\[0\]: the state is nested deeper than 3 levels"):
        canonical(nested(10), root="Store", limits=Limits(depth=3))
    with pytest.raises(StateError, match="more than 1,000 values"):
        canonical({"endless": Endless()}, limits=Limits(items=1000))
    with pytest.raises(StateError, match="more than 100 characters"):
        canonical(["x" * 60, "y" * 60], limits=Limits(chars=100))
    with pytest.raises(StateError, match=r'^Store\["db"\]: BrokenState\.state\(\) raised RuntimeError: database closed'):
        canonical({"db": BrokenState()}, root="Store")


def test_deep_nesting_with_default_limits_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(StateError, match="nested deeper than 100 levels"):
        canonical(nested(100_000))


# --- digest across processes --------------------------------------------------------------

_BUILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("state", sys.argv[1])
state = sys.modules["state"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(state)
words = ["pear", "apple", "fig", "kiwi", "plum", "lime"]
value = {"tags": set(words), "index": {word: len(word) * 1.0 for word in reversed(words)}, "n": 25.0}
print(state.digest(value))
print(sorted(name for name in sys.modules if name.split(".")[0] in ("apigen_cli", "httpx", "typer", "pydantic")))
"""


def test_the_digest_is_the_same_in_other_processes_with_other_hash_seeds() -> None:
    words = ["pear", "apple", "fig", "kiwi", "plum", "lime"]
    here = digest({"n": 25, "index": {word: len(word) for word in words}, "tags": set(reversed(words))})
    for seed in ("1", "2"):
        ran = subprocess.run(
            [sys.executable, "-c", _BUILD, str(STATE_MODULE)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        lines = ran.stdout.splitlines()
        assert lines == [here, "[]"]  # and state.py loads by path with nothing of apigen's or other packages


# --- diff ------------------------------------------------------------------------------------


def store(orders: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Store": {"orders": orders, **extra}}


def test_the_diff_names_each_change_by_its_path() -> None:
    before = store({"o-2": Point(1, 2), "o-3": {"status": "pending", "items": [1, 2]}}, open=True)
    after = store({"o-2": Point(1, 5), "o-3": {"status": "cancelled", "items": [1]}, "o-9": {"status": "new"}}, open=1)
    assert diff(before, after).lines() == [
        "Store.open: true -> 1",
        'Store.orders["o-2"].y: 2 -> 5',
        'Store.orders["o-3"]["items"][1]: removed 2',
        'Store.orders["o-3"]["status"]: "pending" -> "cancelled"',
        'Store.orders["o-9"]: added {"status":"new"}',
    ]
    assert diff(before, before) == []
    assert diff(store({"a": 25}), store({"a": 25.0})) == []


def test_the_diff_is_bounded_and_says_how_much_it_left_out() -> None:
    before = store({f"o-{n}": n for n in range(10)})
    after = store({f"o-{n}": n + 1 for n in range(10)})
    changes = diff(before, after, limit=3)
    assert len(changes) == 3 and changes.omitted == 7
    assert changes.lines()[-1] == "+7 more changes"
    assert changes[0] == Change('Store.orders["o-0"]', "changed", 0, 1)


def test_a_long_value_is_shortened_in_the_diff_line() -> None:
    line = str(diff(store({}), store({"o": "x" * 500}))[0])
    assert line.startswith('Store.orders["o"]: added "xxx') and line.endswith("…") and len(line) < 120


def test_objects_of_another_class_change_as_a_whole() -> None:
    before, after = {"A": {"shape": Point(1, 2)}}, {"A": {"shape": Pair("a", 1)}}
    assert [change.kind for change in diff(before, after)] == ["changed"]


# --- sessions in-process (environments/session.py) ------------------------------------------

ENVIRONMENTS = Path(__file__).parent / "fixtures" / "environments"


def load_classes() -> dict[str, type]:
    """The fixture library's classes by name, imported here as the worker imports them."""
    import importlib.util
    import inspect

    classes: dict[str, type] = {}
    for path in sorted(ENVIRONMENTS.glob("env_*.py")):
        name = f"_fixture_{path.stem}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        classes.update({key: value for key, value in vars(module).items() if inspect.isclass(value) and value.__module__ == name})
    return classes


CLASSES = load_classes()
STORE = {"orders": {"o-1": {"status": "pending"}, "o-2": {"status": "shipped"}}, "prices": {"mug": 25.0}, "tags": ["b", "a"]}


def problem_of(environment: Any) -> tuple[str, str]:
    from apigen_cli.environments.session import Session
    from apigen_cli.problems import RowProblem

    with pytest.raises(RowProblem) as caught:
        Session(CLASSES, environment)
    return caught.value.problem


def test_a_session_loads_each_class_by_its_convention_and_offers_its_public_methods() -> None:
    from apigen_cli.environments.session import Session

    session = Session(CLASSES, {"Store": STORE, "TinyFileSystem": {"contents": {"docs": {}}}, "Counter": {"start": 5}})
    assert sorted(session.tools) == [
        "cancel_order", "cd", "get_order", "increment", "ls", "mkdir", "place_order", "pwd", "seen", "set_price", "tag", "touch",
    ]  # fmt: skip
    assert session.tools["cd"][0] == "TinyFileSystem"
    state = session.state()
    assert state["Counter"] == {"step": 1, "value": 5}  # made as Counter(**config)
    assert state["Store"]["tags"] == ["a", "b"] and state["Store"]["prices"] == {"mug": 25}  # load_state
    assert state["TinyFileSystem"]["root"]["contents"]["docs"]["parent"] == {"$ref": "TinyFileSystem.root"}  # _load_scenario


def test_calls_change_the_state_and_an_exception_is_the_calls_result() -> None:
    from apigen_cli.environments.session import Session

    session = Session(CLASSES, {"Store": STORE, "TinyFileSystem": {}})
    before = session.state()
    assert session.call("cancel_order", {"order_id": "o-1"}).value == "cancelled"
    assert session.call("mkdir", {"dir_name": "new"}).ok
    refused = session.call("cancel_order", {"order_id": "o-2"})
    assert (refused.ok, refused.code, refused.error_type) == (False, "exception", "ValueError")
    assert refused.message.startswith("order o-2 is shipped: only pending orders can be cancelled (at env_store.py:")
    assert [str(change) for change in diff(before, session.state())] == [
        'Store.orders["o-1"]["status"]: "pending" -> "cancelled"',
        'TinyFileSystem.root.contents["new"]: added {"$class":"Directory","contents":{},"name":"new","parent":{"$ref":"TinyFileSyst…',
    ]


@pytest.mark.parametrize(
    ("name", "arguments", "code", "text"),
    [
        ("cancel_order", {}, "invalid_arguments", "missing a required argument: 'order_id'"),
        ("cancel_order", {"order_id": "o-1", "extra": 1}, "invalid_arguments", "got an unexpected keyword argument 'extra'"),
        ("cancel_order", ["o-1"], "invalid_arguments", "arguments are not an object"),
        ("state", {}, "no_implementation", "`state` is not a tool of the environment `Store`"),
        ("load_state", {"config": {}}, "no_implementation", "is not a tool"),
        ("_lookups", {}, "no_implementation", "(its tools: `cancel_order`, `get_order`"),
    ],
)
def test_a_call_is_checked_as_a_function_call_is(name: str, arguments: Any, code: str, text: str) -> None:
    from apigen_cli.environments.session import Session

    result = Session(CLASSES, {"Store": STORE}).call(name, arguments)
    assert (result.ok, result.code) == (False, code)
    assert text in result.message


@pytest.mark.parametrize(
    ("environment", "code", "text"),
    [
        ({"Nowhere": {}}, "unknown_environment_class", "`Nowhere` is not a class of the environment's library (its classes: `BrokenLoader`"),
        ({"Store": ["o-1"]}, "environment_config_not_object", "the initial state of `Store` must be an object, not a list"),
        (["Store"], "environment_not_object", "not a list"),
        ({}, "environment_not_object", "not an empty object"),
        ({"BrokenLoader": {"x": 1}}, "environment_load_error", "`BrokenLoader().load_state(config)` raised ValueError: bad config ['x'] (at env_misc.py:"),
        ({"Counter": {"begin": 1}}, "environment_load_error", "`Counter(**config)` raised TypeError: "),
        ({"Counter": {}, "Tally": {}}, "ambiguous_tool", "the tool `increment` is defined by both `Counter` and `Tally`"),
    ],
)  # fmt: skip
def test_an_environment_that_cannot_start_is_a_problem_with_its_own_code(environment: Any, code: str, text: str) -> None:
    found_code, message = problem_of(environment)
    assert found_code == code
    assert text in message


def test_each_session_loads_from_a_copy_of_the_config_so_the_row_stays_as_it_was() -> None:
    from apigen_cli.environments.session import Session

    environment = {"Ledger": {"entries": ["opening"]}}
    for _ in range(3):
        assert Session(CLASSES, environment).call("add", {"entry": "x"}).value == 2
    assert environment == {"Ledger": {"entries": ["opening"]}}


def test_a_tool_that_calls_sys_exit_ends_its_call_not_the_caller() -> None:
    from apigen_cli.environments.session import Session

    result = Session(CLASSES, {"Quitter": {}}).call("quit", {})
    assert (result.ok, result.code, result.error_type) == (False, "exception", "SystemExit")


# --- plain dicts and lists take a shorter way: the same form, the same errors -----------------


def _general(value: Any) -> Any:
    """``value`` with every dict a read-only mapping and every list a ``UserList``: the walk's general way, not the plain one."""
    if type(value) is dict:
        return types.MappingProxyType({key: _general(item) for key, item in value.items()})
    if type(value) is list:
        return collections.UserList(_general(item) for item in value)
    return value


def _outcome(value: Any, limits: Limits) -> Any:
    try:
        return canonical(value, root="s", limits=limits)
    except StateError as error:
        return f"StateError: {error}"


@pytest.mark.parametrize(
    ("value", "limits"),
    [
        (json.loads((SAMPLE_STORE / "initial_state.json").read_text()), Limits()),
        ({"b": 25.0, "a": [1, "x", None, True, {"c": 2.5, 3: [float("nan")]}], 1: "one", "e": {"f": {"g": []}}}, Limits()),
        ({1: "a", "1": "b"}, Limits()),
        ({"1": "b", 1: "a"}, Limits()),
        ({"a": "x", "b": ["y", "z"], "c": {"d": "z", "e": 7}}, Limits(items=5)),
        ({"a": "x", "b": "y", "c": "z"}, Limits(items=3)),
        ({"a": "xyz", "b": "uvw"}, Limits(chars=5)),
        ({"a": 1, "b": None, "c": True}, Limits(items=3)),
        ({"a": "x", "b": {"c": ["yy", "zz"]}}, Limits(chars=5)),
        ({"a": {"b": {"c": {"d": 1}}}}, Limits(depth=2)),
        ([[["x"]], {"a": [None, False]}], Limits(items=4)),
    ],
)
def test_plain_dicts_and_lists_give_what_any_mapping_and_sequence_give(value: Any, limits: Limits) -> None:
    """A plain dict's or list's scalars are taken without a call each (``_dict``, ``_list``): the canonical form, and
    the error and its path when a cap is passed or two keys read the same, are the general walk's."""
    assert _outcome(value, limits) == _outcome(_general(value), limits)


def test_a_plain_dict_that_holds_itself_is_a_reference_as_any_mapping_is() -> None:
    looped: dict[str, Any] = {"name": "root", "children": []}
    looped["children"].append({"parent": looped, "name": "leaf"})
    assert canonical(looped, root="tree") == {
        "children": [{"name": "leaf", "parent": {"$ref": "tree"}}],
        "name": "root",
    }
