"""The exec_check stage: verdicts, policy, order, streaming, and routing to Python or HTTP."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest

from apigen_cli import ExecPolicy, Executor, ExecutorOptions, exec_check
from apigen_cli.rows.results import SCAN_CHARS, ErrorShapes, is_empty_result

from .json_http import JsonHandler, base_url, serving

LIBRARY = Path(__file__).parent / "fixtures" / "exec_library.py"


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(LIBRARY, ExecutorOptions(workers=2, timeout=1.0, memory_mb=512)) as running:
        yield running


def row(*calls: tuple[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"query": "q", "answers": [{"name": name, "arguments": arguments} for name, arguments in calls], **extra}


def check(executor: Executor, rows: list[dict[str, Any]], policy: ExecPolicy | None = None) -> list[dict[str, Any]]:
    return list(exec_check(rows, executor, policy))


def test_a_row_whose_calls_succeed_is_kept_with_their_results(executor: Executor) -> None:
    [checked] = check(executor, [row(("add", {"a": 1, "b": 2}), ("subtract", {"a": 5, "b": 3}), id="r1", extra={"kept": True})])
    assert checked["keep_row_after_execution_check"] is True
    assert checked["execution_result"] == [
        {"name": "add", "ok": True, "result": 3},
        {"name": "subtract", "ok": True, "result": 2},
    ]
    assert checked["extra"] == {"kept": True} and checked["id"] == "r1"
    assert "rejected_by" not in checked


def test_every_call_runs_and_the_first_failure_names_the_row(executor: Executor) -> None:
    [checked] = check(executor, [row(("add", {"a": 1}), ("fail", {"message": "bad city"}), ("add", {"a": 2}))])
    assert checked["keep_row_after_execution_check"] is False
    assert (checked["rejected_by"], checked["reason"]) == ("exec_check", "exception")
    assert checked["reason_detail"].startswith("call 2 `fail`: raised ValueError: bad city (at exec_library.py:")
    results = checked["execution_result"]
    assert [entry["ok"] for entry in results] == [True, False, True]
    assert results[1]["error"]["type"] == "ValueError" and results[1]["error"]["code"] == "exception"
    assert isinstance(checked["id"], str)  # a derived id, as format-check gives


@pytest.mark.parametrize(
    ("name", "arguments", "code"),
    [
        ("loop_forever", {}, "timeout"),
        ("segfault", {}, "crashed"),
        ("hard_exit", {}, "crashed"),
        ("soft_exit", {}, "crashed"),
        ("memory_bomb", {}, "memory_limit"),
        ("system", {"command": "true"}, "no_implementation"),
        ("subtract", {"a": 1}, "invalid_arguments"),
    ],
)
def test_each_failure_has_its_code_and_later_rows_still_run(
    executor: Executor, name: str, arguments: dict[str, Any], code: str
) -> None:
    rows = check(executor, [row(("add", {"a": 1})), row((name, arguments)), row(("add", {"a": 2}))])
    assert [r.get("reason") for r in rows] == [None, code, None]
    assert [r["execution_result"][0].get("result") for r in (rows[0], rows[2])] == [1, 2]


def test_rows_come_out_in_input_order_with_a_small_window(executor: Executor) -> None:
    durations = [0.3, 0.0, 0.2, 0.0, 0.1, 0.0, 0.0, 0.25]
    rows = [row(("sleep_then", {"seconds": seconds, "value": index}), id=str(index)) for index, seconds in enumerate(durations)]
    checked = check(executor, rows, ExecPolicy(window=3))
    assert [r["id"] for r in checked] == [str(index) for index in range(len(durations))]
    assert [r["execution_result"][0]["result"] for r in checked] == list(range(len(durations)))


def test_the_stage_streams_within_its_window(executor: Executor) -> None:
    pulled = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for index in range(50):
            pulled += 1
            yield row(("add", {"a": index}))

    stream = exec_check(source(), executor, ExecPolicy(window=4))
    first = next(stream)
    assert first["execution_result"][0]["result"] == 0
    assert pulled <= 5  # never more than the window (plus the row being read) ahead of the output
    assert len(list(stream)) == 49


def test_a_stage_stopped_early_closes_its_source(executor: Executor) -> None:
    closed = []

    def source() -> Iterator[dict[str, Any]]:
        try:
            for index in range(100):
                yield row(("add", {"a": index}))
        finally:
            closed.append(True)

    stream = exec_check(source(), executor, ExecPolicy(window=2))
    assert isinstance(stream, Generator)
    assert next(stream)["execution_result"][0]["result"] == 0
    stream.close()  # as when the reader of `apigen exec-check | head` goes away
    assert closed == [True]


def test_rejected_rows_pass_through_untouched(executor: Executor) -> None:
    earlier = {
        "query": "q",
        "answers": [{"name": "add", "arguments": {"a": 1}}],
        "rejected_by": "format_check",
        "reason": "wrong_type",
    }
    [checked] = check(executor, [dict(earlier)])
    assert checked == earlier


@pytest.mark.parametrize(
    ("answers", "code", "detail"),
    [
        ("MISSING", "not_format_checked", "the row has no `answers` list; run `apigen format-check` first"),
        ('[{"name": "add", "arguments": {"a": 1}}]', "not_format_checked", "`answers` is a str, not a list of calls"),
        ([{"arguments": {}}], "not_format_checked", "call 1 is not an object with a `name`"),
        ([{"name": "add", "arguments": '{"a": 1}'}], "not_format_checked", "call 1 `add`: `arguments` is not an object"),
        ([], "no_calls", "`answers` is an empty list"),
    ],
)
def test_rows_that_were_not_format_checked_are_rejected_clearly(executor: Executor, answers: Any, code: str, detail: str) -> None:
    source = {"query": "q"} if answers == "MISSING" else {"query": "q", "answers": answers}
    [checked] = check(executor, [source])
    assert (checked["rejected_by"], checked["reason"]) == ("exec_check", code)
    assert detail in checked["reason_detail"]
    assert "execution_result" not in checked


def test_an_irrelevance_row_has_nothing_to_run_and_passes(executor: Executor) -> None:
    [checked] = check(executor, [{"query": "q", "answers": [], "kind": "irrelevance"}])
    assert checked["keep_row_after_execution_check"] is True and checked["execution_result"] == []


def test_missing_arguments_mean_no_arguments(executor: Executor) -> None:
    [checked] = check(executor, [{"query": "q", "answers": [{"name": "nothing"}]}])
    assert checked["execution_result"] == [{"name": "nothing", "ok": True, "result": None}]


def test_empty_results_pass_unless_the_policy_fails_them(executor: Executor) -> None:
    rows = [row(("nothing", {})), row(("empty_list", {})), row(("add", {"a": 0}))]
    assert [r.get("reason") for r in check(executor, [dict(r) for r in rows])] == [None, None, None]
    failed = check(executor, [dict(r) for r in rows], ExecPolicy(fail_on_empty=True))
    assert [r.get("reason") for r in failed] == ["empty_result", "empty_result", None]  # 0 is a result, not an empty one
    entry = failed[1]["execution_result"][0]
    assert entry["ok"] is False and entry["result"] == [] and entry["error"]["type"] == "EmptyResult"


def test_error_payloads_fail_unless_the_policy_passes_them(executor: Executor) -> None:
    rows = [row(("error_payload", {})), row(("error_text", {}))]
    failed = check(executor, [dict(r) for r in rows])
    assert [r["reason"] for r in failed] == ["error_result", "error_result"]
    assert failed[0]["reason_detail"] == 'call 1 `error_payload`: returned an error: {"error":"city not found"}'
    assert failed[0]["execution_result"][0]["result"] == {"error": "city not found"}
    passed = check(executor, [dict(r) for r in rows], ExecPolicy(fail_on_error_result=False))
    assert [r.get("reason") for r in passed] == [None, None]


@pytest.mark.parametrize(
    ("value", "empty", "error"),
    [
        (None, True, False),
        ("", True, False),
        ([], True, False),
        ({}, True, False),
        (0, False, False),
        (False, False, False),
        ({"error": "not found"}, False, True),
        ({"errors": ["a"]}, False, True),
        ({"exception": {"type": "KeyError"}}, False, True),
        ({"error": True}, False, True),
        ({"error": None, "data": 1}, False, False),
        ({"errors": 0, "rows": 5}, False, False),
        ({"errors": 2, "processed": 100}, False, False),  # a count of errors is data
        ({"status": "FAILED"}, False, True),
        ({"status": "ok"}, False, False),
        ({"success": False}, False, True),
        ("Error: bad input", False, True),
        ("Database error: no such table: users", False, True),
        ('ERROR: relation "users" does not exist', False, True),
        ("sqlite3.OperationalError: no such table: users", False, True),
        ("Traceback (most recent call last):\n  File ...", False, True),
        ("Error 404: Not Found", False, True),
        ("Failed to connect to the database: refused", False, True),
        ("Could not find user: alice", False, True),
        ('{"error": "no such table"}', False, True),  # JSON text, as MCP servers often answer
        ("No errors found", False, False),
        ("No error: all good", False, False),
        ("Error count: 0", False, False),
        ("Error rate: 0.5%", False, False),
        ("Failed logins: 3", False, False),
        ("3 rows; last error: none", False, False),
        ("Found 2 errors in the file", False, False),
        ('{"errors": 0, "rows": 5}', False, False),
        (["Error: in a list"], False, False),
    ],
)
def test_what_counts_as_empty_or_an_error(value: Any, empty: bool, error: bool) -> None:
    assert (is_empty_result(value), ErrorShapes().why_error(value) is not None) == (empty, error)


def test_only_the_first_few_kilobytes_of_a_text_are_read() -> None:
    shapes = ErrorShapes(patterns=("query failed",))
    assert shapes.why_error("x" * 100 + " query failed") == "its text matches `--error-pattern query failed`"
    assert shapes.why_error("x" * SCAN_CHARS + " query failed") is None
    assert ErrorShapes().why_error(" " * (SCAN_CHARS - 3) + "Error: too far in") is None


def test_the_built_in_text_rule_can_be_turned_off_and_patterns_added() -> None:
    text = "Database error: no such table"
    assert ErrorShapes(built_in=False).why_error(text) is None
    assert ErrorShapes(built_in=False).why_error({"error": "x"}) is not None  # error payloads stay errors
    assert ErrorShapes(built_in=False, patterns=("(?i)^database",)).why_error(text) is not None
    assert ErrorShapes(built_in=False, patterns=("^database",)).why_error(text) is None  # case counts unless (?i)


def test_a_text_that_reads_as_an_error_fails_its_call(executor: Executor) -> None:
    rows = [row(("echo", {"value": "Database error: no such table: users"})), row(("echo", {"value": "42 rows"}))]
    failed, passed = check(executor, rows)
    assert failed["reason"] == "error_result"
    assert failed["reason_detail"] == (
        'call 1 `echo`: returned an error: "Database error: no such table: users" '
        "(its text reads as an error (the built-in rule; `--no-error-shaped` turns it off))"
    )
    assert failed["execution_result"][0]["result"] == "Database error: no such table: users"
    assert passed["keep_row_after_execution_check"] is True
    policy = ExecPolicy(error_shapes=ErrorShapes(built_in=False))
    [kept] = check(executor, [row(("echo", {"value": "Database error: no such table: users"}))], policy)
    assert kept["keep_row_after_execution_check"] is True


def test_a_truncated_result_is_flagged(executor: Executor) -> None:
    [checked] = check(executor, [row(("long_text", {"size": 9000}))])
    entry = checked["execution_result"][0]
    assert entry["ok"] is True and entry["truncated"] is True and len(entry["result"]) < 4100


class _ItemHandler(JsonHandler):
    def do_GET(self) -> None:
        self.send_json(200 if "missing" not in self.path else 404, {"via": "http", "path": self.path})


def test_a_tool_with_an_http_binding_is_called_over_http(executor: Executor) -> None:
    with serving(HTTPServer(("127.0.0.1", 0), _ItemHandler)) as server:
        url = f"{base_url(server)}/items/{{a}}"
        tools = [
            {"type": "function", "function": {"name": "add", "parameters": {}}, "http": {"url": url}},  # beside `function`
            {"name": "echo", "parameters": {}, "http": {"url": url.replace("items", "missing")}},
            {"name": "subtract", "parameters": {}},  # no binding: Python
        ]
        source = row(("add", {"a": 1, "b": 2}), ("subtract", {"a": 5, "b": 1}), tools=tools)
        checked, missing = check(executor, [source, row(("echo", {"a": 3}), tools=tools)])
        assert checked["execution_result"] == [
            {"name": "add", "ok": True, "result": {"via": "http", "path": "/items/1?b=2"}},  # not the Python `add`
            {"name": "subtract", "ok": True, "result": 4},
        ]
        assert missing["reason"] == "http_error" and "returned 404 Not Found" in missing["reason_detail"]


def test_a_malformed_binding_rejects_the_row(executor: Executor) -> None:
    tools = [{"name": "add", "parameters": {}, "http": {"url": "https://example.invalid/x", "method": "FETCH"}}]
    [checked] = check(executor, [row(("add", {"a": 1}), tools=tools)])
    assert checked["reason"] == "invalid_tool_definition"
    assert checked["reason_detail"] == (
        "call 1 `add`: tool `add`: `http.method` is 'FETCH', not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
    )


class _TextHandler(JsonHandler):
    def do_GET(self) -> None:
        text = b'ERROR: relation "orders" does not exist' if "orders" in self.path else b"3 orders, no errors found"
        self.send_body(200, text, "text/plain")


def test_an_http_200_whose_body_reads_as_an_error_fails_its_call(executor: Executor) -> None:
    with serving(HTTPServer(("127.0.0.1", 0), _TextHandler)) as server:
        tools = [{"name": "count", "parameters": {}, "http": {"url": f"{base_url(server)}/{{table}}"}}]
        failed, passed = check(
            executor, [row(("count", {"table": "orders"}), tools=tools), row(("count", {"table": "t"}), tools=tools)]
        )
    assert failed["reason"] == "error_result"
    assert failed["execution_result"][0]["result"] == 'ERROR: relation "orders" does not exist'
    assert passed["execution_result"][0] == {"name": "count", "ok": True, "result": "3 orders, no errors found"}
