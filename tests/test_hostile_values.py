"""Values no stage can carry: nested past the depth limit, or holding lone surrogates.

A single row never stops a run, and a run never dies twice at the same place: a value
nested deeper than ``MAX_DEPTH`` is refused where it enters (a row read, a model's reply,
a server's answer) with the reason ``too_deep``, and a lone surrogate in a result becomes
U+FFFD where the result enters, so that every row apigen writes is one the next stage reads.
"""

from __future__ import annotations

import json
import re
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from apigen_cli.problems import MAX_DEPTH

from .conftest import PROJECT, invoke, parse_stdout, read_jsonl, write_jsonl
from .json_http import JsonHandler, base_url, serving
from .llm_server import LLMServer, Received, Reply
from .run_helpers import apigen_process, run_args
from .scripted_model import is_judge, judge_reply

ODD = PROJECT / "tests" / "fixtures" / "odd_values.py"
TOOLS = [
    {"name": "echo", "description": "Echo a value.", "parameters": {"type": "object", "properties": {"value": {}}}},
    {"name": "file_name", "description": "The report's file name.", "parameters": {"type": "object", "properties": {}}},
    {"name": "files_by_name", "description": "Reports by name.", "parameters": {"type": "object", "properties": {}}},
]


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def row(ident: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": ident, "query": f"call {name}", "tools": TOOLS, "answers": [{"name": name, "arguments": arguments}]}


def every_line_is_json(path: Path) -> list[dict[str, Any]]:
    """orjson, as every stage reads: no lone surrogate escape, no nesting past its limit."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_an_argument_nested_300_deep_is_rejected_where_it_is_read_and_every_stage_goes_on(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [row("good", "echo", value=1), row("deep", "echo", value=nested(300))])
    checked, rejects = tmp_path / "checked.jsonl", tmp_path / "rejects.jsonl"
    result = invoke(runner, "format-check", str(source), "-o", str(checked), "--rejects", str(rejects))
    assert result.exit_code == 0, result.stderr
    assert [kept["id"] for kept in every_line_is_json(checked)] == ["good"]
    (rejected,) = every_line_is_json(rejects)
    assert (rejected["id"], rejected["reason"]) == ("deep", "too_deep")
    assert rejected["reason_detail"].startswith(f"line 2 of `{source}`: `answers[0].arguments.value[0][0]")
    assert rejected["reason_detail"].endswith(f"is nested deeper than {MAX_DEPTH} levels, the most apigen reads")
    # a stage that reads the file itself, past format-check, refuses the row the same way and goes on
    executed = invoke(runner, "exec-check", str(source), "--functions", str(ODD), "--keep-rejected")
    assert executed.exit_code == 0, executed.stderr
    good, deep = parse_stdout(executed.stdout)
    assert (good.get("reason"), deep["reason"]) == (None, "too_deep")
    judged_rows = write_jsonl(
        tmp_path / "executed.jsonl", [good, {**good, "id": "deep", "answers": row("deep", "echo", value=nested(300))["answers"]}]
    )
    judged = invoke(runner, "semantic-check", str(judged_rows), "-J", "offline", "--keep-rejected")
    assert judged.exit_code == 0, judged.stderr
    verdicts = [(out["id"], out.get("reason") == "too_deep") for out in parse_stdout(judged.stdout)]
    assert verdicts == [("good", False), ("deep", True)]  # the good row judged (the offline judge may fail it)


def test_a_row_nested_past_what_the_json_reader_takes_is_a_too_deep_reject_too(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps(row("good", "echo", value=1)) + "\n" + '{"id": "abyss", "v": ' + "[" * 2000 + "]" * 2000 + "}\n")
    result = invoke(runner, "format-check", str(source), "--keep-rejected")
    assert result.exit_code == 0, result.stderr
    good, abyss = parse_stdout(result.stdout)
    assert (good.get("reason"), abyss["reason"], abyss["line"]) == (None, "too_deep", 2)
    assert (
        abyss["reason_detail"] == f"line 2 of `{source}`: the row is nested deeper than {MAX_DEPTH} levels, the most apigen reads"
    )


def test_results_with_lone_surrogates_are_made_valid_utf8_and_the_next_stage_reads_them(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [row("name", "file_name"), row("key", "files_by_name")])
    executed = tmp_path / "executed.jsonl"
    result = invoke(runner, "exec-check", str(source), "--functions", str(ODD), "-o", str(executed))
    assert result.exit_code == 0, result.stderr
    results = [kept["execution_result"][0]["result"] for kept in every_line_is_json(executed)]
    assert results == ["report-\ufffd.txt", {"report-\ufffd.txt": 1}]
    judged = invoke(runner, "semantic-check", str(executed), "-J", "offline", "--keep-rejected")
    assert judged.exit_code == 0, judged.stderr
    assert len(parse_stdout(judged.stdout)) == 2


def _generation(request: Received) -> Reply:
    """A pair for each tool the request offers; a request offering `echo` alone gets a reply nested 300 deep.

    A reply is the value that enters: one too deep is refused whole (``too_deep``), as a row read from a file is.
    """
    offered = list(dict.fromkeys(re.findall(r'"name": ?"(echo|file_name|files_by_name)"', request.content)))
    if offered == ["echo"]:
        pairs = [{"query": "Echo something deep.", "answers": [{"name": "echo", "arguments": {"value": nested(300)}}]}]
    else:
        calls = [{"name": name, "arguments": {"value": 7} if name == "echo" else {}} for name in offered]
        pairs = [{"query": f"Please call {call['name']}.", "answers": [call]} for call in calls]
    return Reply.chat(json.dumps({"pairs": pairs}))


def test_a_run_meeting_deep_arguments_and_lone_surrogates_keeps_its_good_rows_and_reruns(tmp_path: Path) -> None:
    apis = write_jsonl(tmp_path / "apis.jsonl", [{**tool, "category": "files"} for tool in TOOLS])
    out, rejects = tmp_path / "data.jsonl", tmp_path / "rejects.jsonl"
    with LLMServer(handler=lambda request: judge_reply(request) if is_judge(request) else _generation(request)) as server:
        args = run_args(apis=apis, functions=ODD, server=server, count=12, seed=5, out=out, rejects=rejects)
        first = apigen_process(args)
        assert first.returncode == 0, first.stderr
        kept, rejected = every_line_is_json(out), every_line_is_json(rejects)
        assert {tuple(call["name"] for call in one["answers"]) for one in kept} >= {("file_name",), ("echo",)}
        assert all(
            "\ufffd" in json.dumps(one["execution_result"], ensure_ascii=False)
            for one in kept
            if one["answers"][0]["name"] != "echo"
        )
        assert "too_deep" in {one["reason"] for one in rejected}
        again = apigen_process(args)  # the same command: the run is complete, and says so
        assert again.returncode == 0, again.stderr
    assert read_jsonl(out) == kept


class _DeepAnswers(JsonHandler):
    """A REST API answering JSON nested 300 deep, or a name that is not UTF-8 (as a lone surrogate escape)."""

    def do_GET(self) -> None:
        if self.path.startswith("/deep"):
            self.send_json(200, {"items": nested(300)})
        else:
            self.send_body(200, b'{"name": "report-\\udcff.txt"}', "application/json")


def test_a_rest_answer_nested_300_deep_fails_its_call_and_one_with_a_lone_surrogate_is_made_valid(
    runner: CliRunner, tmp_path: Path
) -> None:
    with serving(HTTPServer(("127.0.0.1", 0), _DeepAnswers)) as server:
        url = base_url(server)
        rows = [
            {
                **row(name, name),
                "tools": [{"name": name, "parameters": {"type": "object", "properties": {}}, "http": {"url": f"{url}/{name}"}}],
            }
            for name in ("deep", "named")
        ]
        source = write_jsonl(tmp_path / "rows.jsonl", rows)
        result = invoke(runner, "exec-check", str(source), "--keep-rejected")
    assert result.exit_code == 0, result.stderr
    deep, named = parse_stdout(result.stdout)
    assert deep["reason"] == "too_deep" and "`items[0][0][0]" in deep["reason_detail"]
    assert named["execution_result"][0]["result"] == '{"name": "report-\\udcff.txt"}'  # JSON orjson refuses: kept as its text


def test_a_tool_definition_nested_past_what_its_rows_could_carry_is_an_error_naming_its_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    inner = schema
    for _ in range(60):  # two levels a step: 120 deep
        inner["properties"] = {"x": {"type": "object", "properties": {}}}
        inner = inner["properties"]["x"]
    apis = write_jsonl(tmp_path / "apis.jsonl", [{**TOOLS[0], "category": "c"}, {**TOOLS[1], "parameters": schema}])
    for command in (
        ["library", "check", str(apis), "--lint-only"],
        run_args(apis=apis, functions=ODD, count=2, out=tmp_path / "o.jsonl"),
    ):
        result = invoke(runner, *command)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith(f"error: line 2 of `{apis}`: `parameters.properties.x.properties.x")
        assert "is nested deeper than 98 levels, the most a tool definition may" in result.stderr
