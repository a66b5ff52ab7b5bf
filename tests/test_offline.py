"""The offline backend: deterministic pairs in every style that pass the checks, and a rule-based judge."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from apigen_cli import format_check
from apigen_cli.errors import ConfigError
from apigen_cli.llm.chat import OFFLINE_MODEL, ChatRequest
from apigen_cli.llm.offline import MISTAKES, OfflineChatService, error_rate_from, generate, judge

from .conftest import PROJECT, corpus, read_jsonl

CURRENCY = {
    "name": "convert_currency",
    "description": "Convert an amount of money from one currency to another at today's rate.",
    "parameters": {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "description": "Amount of money", "minimum": 1, "maximum": 50},
            "from_currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
            "to_currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
        },
        "required": ["amount", "from_currency", "to_currency"],
    },
}
WEATHER = {  # OpenAI dialect, optional and nested parameters
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. 'Lisbon'"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "detailed": {"type": "boolean"},
                "window": {
                    "type": "object",
                    "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
                    "required": ["start"],
                },
            },
            "required": ["city", "days"],
        },
    },
}
MEAN = {  # xLAM dialect
    "name": "mean",
    "description": "Arithmetic mean of a list of numbers.",
    "parameters": {
        "numbers": {"type": "List[float]", "description": "The numbers"},
        "round_to": {"type": "int, optional", "description": "Decimal places", "default": 2},
        "mode": {"type": "Literal['fast', 'exact']", "description": "How to compute"},
    },
}
EMAIL = {
    "name": "send_email",
    "description": "Sends an email to a recipient.",
    "parameters": {
        "type": "object",
        "properties": {
            "to": {"type": "string", "description": "email address"},
            "subject": {"type": "string"},
            "date": {"type": "string"},
        },
        "required": ["to", "subject", "date"],
    },
}
TOOLS = [CURRENCY, WEATHER, MEAN, EMAIL]
STYLES = ["simple", "multiple", "parallel", "parallel_multiple"]


def pairs(
    tools: list[Any], style: str, count: int = 3, seed: int = 7, error_rate: float = 0.0, key: str = "row"
) -> list[dict[str, Any]]:
    task = {"task": "generate", "tools": tools, "style": style, "pairs": count, "seed": seed}
    result: list[dict[str, Any]] = json.loads(generate(task, key=key, error_rate=error_rate))
    return result


def checked(tools: list[Any], generated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(format_check([{"tools": tools, "query": pair["query"], "answers": pair["answers"]} for pair in generated]))


def test_the_same_seed_gives_the_same_text_and_another_seed_another() -> None:
    task = {"task": "generate", "tools": TOOLS, "style": "parallel_multiple", "pairs": 4, "seed": 3}
    assert generate(task, key="r1") == generate(dict(task), key="r1")
    assert generate(task, key="r1") != generate({**task, "seed": 4}, key="r1")
    assert generate(task, key="r1") != generate(task, key="r2")


def test_each_style_has_its_shape() -> None:
    names = {"convert_currency", "get_weather", "mean", "send_email"}
    for seed in range(30):
        [simple] = pairs(TOOLS, "simple", 1, seed)
        assert [call["name"] for call in simple["answers"]] == ["convert_currency"]  # the first tool offered
        [multiple] = pairs(TOOLS, "multiple", 1, seed)
        assert len(multiple["answers"]) == 1 and multiple["answers"][0]["name"] in names
        [parallel] = pairs(TOOLS, "parallel", 1, seed)
        assert 2 <= len(parallel["answers"]) <= 4 and len({call["name"] for call in parallel["answers"]}) == 1
        [several] = pairs(TOOLS, "parallel_multiple", 1, seed)
        assert 2 <= len(several["answers"]) <= 4 and len({call["name"] for call in several["answers"]}) >= 2
    chosen = Counter(pairs(TOOLS, "multiple", 1, seed)[0]["answers"][0]["name"] for seed in range(40))
    assert len(chosen) >= 3  # `multiple` really chooses among the tools


def test_every_argument_value_is_written_in_the_query() -> None:
    for style in STYLES:
        for pair in pairs(TOOLS, style, 5):
            query = pair["query"].lower()
            for call in pair["answers"]:
                for value in _scalars(call["arguments"]):
                    if not isinstance(value, bool):
                        text = f"{value:.1f}" if isinstance(value, float) and value.is_integer() else str(value)
                        assert text.lower() in query, (value, pair["query"])


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _scalars(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _scalars(item)]
    return [value]


def test_enums_and_ranges_are_respected() -> None:
    for seed in range(60):
        for pair in pairs([CURRENCY, WEATHER], "parallel_multiple", 1, seed):
            for call in pair["answers"]:
                arguments = call["arguments"]
                if call["name"] == "convert_currency":
                    assert 1 <= arguments["amount"] <= 50
                    assert {arguments["from_currency"], arguments["to_currency"]} <= {"USD", "EUR", "GBP"}
                else:
                    assert 1 <= arguments["days"] <= 7 and isinstance(arguments["days"], int)
                    assert arguments.get("units", "celsius") in ("celsius", "fahrenheit")
                    assert isinstance(arguments["city"], str) and arguments["city"]


def test_values_are_chosen_by_name_and_type() -> None:
    seen: dict[str, set[Any]] = {"to": set(), "date": set(), "city": set(), "numbers": set()}
    for seed in range(20):
        for pair in pairs([EMAIL, WEATHER, MEAN], "parallel_multiple", 1, seed):
            for call in pair["answers"]:
                for name in seen:
                    if name in call["arguments"]:
                        value = call["arguments"][name]
                        seen[name].add(json.dumps(value))
    assert all(json.loads(value).endswith("@example.com") for value in seen["to"])
    assert all(len(json.loads(value)) == 10 and json.loads(value)[4] == "-" for value in seen["date"])  # ISO dates
    assert any(json.loads(value) == "Lisbon" for value in seen["city"])  # the description's example is used
    assert all(isinstance(json.loads(value), list) and len(json.loads(value)) >= 2 for value in seen["numbers"])


def test_pairs_without_mistakes_pass_the_format_check() -> None:
    for style in STYLES:
        for seed in range(25):
            rows = checked(TOOLS, pairs(TOOLS, style, 2, seed))
            assert [row.get("reason_detail") for row in rows if "rejected_by" in row] == []


def test_the_share_of_mistakes_follows_the_error_rate_and_each_is_a_typical_one() -> None:
    expected_codes = {"wrong_type", "missing_required_argument", "unknown_function", "out_of_range", "invalid_enum_value"}
    rows = [row for seed in range(100) for row in checked(TOOLS, pairs(TOOLS, "parallel_multiple", 4, seed, error_rate=0.1))]
    reasons = Counter(row["reason"] for row in rows if "rejected_by" in row)
    assert set(reasons) <= expected_codes
    assert 0.05 <= sum(reasons.values()) / len(rows) <= 0.16
    every = [row for seed in range(40) for row in checked(TOOLS, pairs(TOOLS, "simple", 3, seed, error_rate=1.0))]
    assert all("rejected_by" in row for row in every)
    assert len({row["reason"] for row in every}) >= 4  # all kinds of mistake occur
    assert len(MISTAKES) == 4


def test_sample_tools_pass_the_format_check() -> None:
    for number, row in enumerate(read_jsonl(PROJECT / "sample_data" / "rows.jsonl")):
        for style in STYLES:
            rows = checked(row["tools"], pairs(row["tools"], style, 2, number))
            assert [checked_row.get("reason_detail") for checked_row in rows if "rejected_by" in checked_row] == []


@pytest.mark.corpus
@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "parallel_multiple"])
def test_bfcl_tools_give_pairs_that_pass_the_format_check_and_the_judge(category: str) -> None:
    problems = []
    for number, row in enumerate(read_jsonl(corpus(f"bfcl/{category}.jsonl"))):
        style = STYLES[number % 4]
        generated = pairs(row["tools"], style, 1, number)
        problems += [found["reason_detail"] for found in checked(row["tools"], generated) if "rejected_by" in found]
        verdict = judge({"tools": row["tools"], "query": generated[0]["query"], "answers": generated[0]["answers"]})
        if verdict["pass"] != "yes":
            problems.append(verdict["thought"])
    assert problems == []


# --- the judge ------------------------------------------------------------------------

CALL = {"name": "convert_currency", "arguments": {"amount": 25.5, "from_currency": "USD", "to_currency": "EUR"}}
QUERY = "How much is 25.5 usd in EUR?"


def verdict(**changes: Any) -> dict[str, str]:
    task = {
        "task": "judge",
        "tools": [CURRENCY],
        "query": QUERY,
        "answers": [CALL],
        "execution_result": [{"ok": True, "result": 23.4}],
    }
    task.update(changes)
    return judge(task)


def test_the_judge_passes_a_call_whose_values_are_all_in_the_query() -> None:
    assert verdict() == {"thought": "every call ran without error and uses only values the query states", "pass": "yes"}
    assert verdict(execution_result=None)["pass"] == "yes"  # nothing executed: judged on the arguments alone
    assert verdict(answers=json.dumps([CALL]), tools=json.dumps([CURRENCY]))["pass"] == "yes"  # JSON strings, as xlam rows hold


@pytest.mark.parametrize(
    ("changes", "thought"),
    [
        (
            {"query": "How much is 30 dollars in euros?"},
            "argument `amount` of call 1 (25.5) is not in the query; "
            "argument `from_currency` of call 1 (USD) is not in the query",
        ),
        ({"execution_result": [{"error": "ValueError: unknown currency"}]}, "call 1 failed: ValueError: unknown currency"),
        (
            {"execution_result": ["Traceback (most recent call last): ..."]},
            "call 1 failed: Traceback (most recent call last): ...",
        ),
        ({"execution_result": [{"ok": False, "message": "timed out after 5 s"}]}, "call 1 failed: timed out after 5 s"),
        ({"execution_result": [{"ok": True, "result": []}]}, "call 1 returned nothing"),
        (
            {"execution_result": [{"name": "convert_currency", "ok": True, "result": "Database error: no such table: rates"}]},
            "call 1 failed: Database error: no such table: rates",
        ),
        ({"execution_result": [{"ok": True, "result": {"error": "rate limit"}}]}, 'call 1 failed: {"error":"rate limit"}'),
        (
            {"execution_result": ["sqlite3.OperationalError: no such table"]},
            "call 1 failed: sqlite3.OperationalError: no such table",
        ),
        ({"execution_result": [""]}, "call 1 returned nothing"),
        ({"execution_result": [1.0, 2.0]}, "1 calls but 2 execution results"),
        (
            {"answers": [{"name": "convert", "arguments": {}}]},
            "call 1 names `convert`, which is not among the available functions",
        ),
        ({"answers": []}, "there are no function calls"),
        ({"query": " "}, "there is no query to judge the calls against"),
    ],
)
def test_the_judge_fails_by_plain_rules(changes: dict[str, Any], thought: str) -> None:
    assert verdict(**changes) == {"thought": thought, "pass": "no"}


def test_an_empty_result_answers_a_query_that_asks_for_an_action_not_one_that_asks_for_data() -> None:
    tool = {
        "name": "delete_file",
        "description": "Delete a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
    call = {"name": "delete_file", "arguments": {"path": "report.txt"}}

    def judged(query: str, result: Any) -> str:
        return judge({"tools": [tool], "query": query, "answers": [call], "execution_result": [{"ok": True, "result": result}]})[
            "pass"
        ]

    assert judged("Delete the file report.txt.", None) == "yes"
    assert judged("Delete the file report.txt and tell me what it held.", None) == "no"
    assert judged("Which lines are in report.txt?", "") == "no"
    assert judged("Delete the file report.txt.", "no errors found") == "yes"
    assert judged("Delete the file report.txt.", "Error: permission denied") == "no"


def test_booleans_and_defaults_need_not_be_in_the_query() -> None:
    tool: dict[str, Any] = {
        "name": "search",
        "description": "Search.",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string"}, "exact": {"type": "boolean"}, "limit": {"type": "integer", "default": 10}},
        },
    }
    call: dict[str, Any] = {"name": "search", "arguments": {"q": "Electric Cars", "exact": True, "limit": 10}}
    assert judge({"tools": [tool], "query": "find electric cars", "answers": [call]})["pass"] == "yes"
    call["arguments"]["limit"] = 20
    assert judge({"tools": [tool], "query": "find electric cars", "answers": [call]})["pass"] == "no"
    call["arguments"]["limit"] = 1000
    assert judge({"tools": [tool], "query": "find electric cars, 1,000 of them", "answers": [call]})["pass"] == "yes"


def test_the_judge_passes_every_mistake_free_generated_pair() -> None:
    for style in STYLES:
        for seed in range(20):
            for pair in pairs(TOOLS, style, 2, seed):
                result = judge({"tools": TOOLS, "query": pair["query"], "answers": pair["answers"]})
                assert result["pass"] == "yes", (result["thought"], pair)


# --- as a chat service ----------------------------------------------------------------


def offline_request(key: str, task: dict[str, Any] | None) -> ChatRequest:
    return ChatRequest(key, OFFLINE_MODEL, [{"role": "user", "content": "write pairs"}], offline_task=task)


def test_the_offline_service_answers_in_order_and_counts() -> None:
    service = OfflineChatService(seed=5)
    tasks = [{"task": "generate", "tools": TOOLS, "style": style, "pairs": 2} for style in STYLES]
    items = [(index, offline_request(str(index), task)) for index, task in enumerate(tasks)]
    results = list(service.map(items))
    assert [index for index, _result in results] == [0, 1, 2, 3]
    assert all(result.ok and len(json.loads(result.text or "")) == 2 for _index, result in results)
    assert service.usage.models[OFFLINE_MODEL].requests == 4
    again = [result.text for _index, result in OfflineChatService(seed=5).map(items)]
    assert again == [result.text for _index, result in results]
    other = [result.text for _index, result in OfflineChatService(seed=6).map(items)]
    assert other != again


def test_a_request_without_a_structured_task_fails_as_a_row() -> None:
    [(_item, result)] = list(OfflineChatService().map([(1, offline_request("k", None))]))
    assert result.error is not None and result.error.code == "llm_error"
    assert "offline_task" in result.error.message
    [(_item, result)] = list(OfflineChatService().map([(1, offline_request("k", {"task": "summarise"}))]))
    assert result.error is not None and "does not know the task 'summarise'" in result.error.message


def test_offline_error_rate_is_checked() -> None:
    assert error_rate_from({"offline_error_rate": 0.25}) == 0.25
    assert error_rate_from({}) == 0.1
    with pytest.raises(ConfigError, match="offline_error_rate"):
        error_rate_from({"offline_error_rate": 2})


def test_integer_bounds_beyond_64_bits_give_64_bit_values() -> None:
    tool = {
        "name": "big",
        "parameters": {
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1e300, "maximum": 1e301}},
            "required": ["n"],
        },
    }
    pairs = json.loads(generate({"task": "generate", "tools": [tool], "style": "simple", "pairs": 2, "seed": 1}, error_rate=0.0))
    assert all(call["arguments"]["n"] == 2**63 - 1 for pair in pairs for call in pair["answers"])
