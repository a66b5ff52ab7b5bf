"""`apigen generate` through the real CLI, against the scripted server and the offline backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli import format_check

from .conftest import invoke, parse_stdout, read_jsonl
from .llm_server import LLMServer, Reply
from .run_helpers import APIS, EXAMPLES, FUNCTIONS, SAMPLE, generate_args
from .scripted_model import generation_reply


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer(handler=generation_reply) as running:
        yield running


def test_rows_models_in_turn_and_the_prompt_holds_tools_and_examples(runner: CliRunner, server: LLMServer) -> None:
    two_models = generate_args(
        "--examples", EXAMPLES, "--examples-per-prompt", "2", server=server, model=["test-model", "other-model"], count=12, seed=4
    )
    result = invoke(runner, *two_models)
    assert result.exit_code == 0, result.stderr
    rows = parse_stdout(result.stdout)
    assert len(rows) == 12
    requests = server.chat_requests()  # in arrival order, which concurrency may shuffle
    assert sorted(request.model or "" for request in requests) == ["other-model"] * 2 + ["test-model"] * 2
    assert [row["model"] for row in rows] == ["test-model"] * 3 + ["other-model"] * 3 + ["test-model"] * 3 + ["other-model"] * 3
    examples = {row["query"] for row in read_jsonl(EXAMPLES)}
    prompts = {"\n".join(message["content"] for message in request.json["messages"]): request for request in requests}
    for first in rows[::3]:
        [(prompt, request)] = [
            (p, r)
            for p, r in prompts.items()
            if all(f'"name": "{n}"' in p for n in first["sampled_apis"]) and r.model == first["model"]
        ][:1]
        assert sum(query in prompt for query in examples) == 2
        assert request.json["response_format"]["type"] == "json_schema"
    assert all(row["keep_row_after_format_check"] for row in format_check(rows))
    assert "test-model: 2 requests" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "generate: 12 rows, 0 rejected"


def test_unparseable_replies_become_rows_that_format_check_rejects(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    server.enqueue(Reply.chat("I'm sorry, I can't help with that."))
    result = invoke(runner, *generate_args(server=server, count=6, seed=1))
    rows = parse_stdout(result.stdout)
    assert rows[0]["raw_output"] == "I'm sorry, I can't help with that." and rows[0]["id"] == "gen-1-00000"
    checked = list(format_check(rows))
    assert checked[0]["reason"] == "unparseable_output"
    assert [row.get("rejected_by") for row in checked[1:]] == [None, None, None]


def test_a_failed_request_is_one_reject_row_and_the_run_goes_on(runner: CliRunner, server: LLMServer, tmp_path: Path) -> None:
    server.enqueue(Reply.error(422, "the prompt is too long"))
    rejects = tmp_path / "failed.jsonl"
    result = invoke(runner, *generate_args(server=server, count=9, seed=1, rejects=rejects))
    assert result.exit_code == 0, result.stderr
    [failed] = read_jsonl(rejects)
    assert (failed["rejected_by"], failed["reason"], failed["pairs_requested"]) == ("generate", "llm_error", 3)
    assert "the prompt is too long" in failed["reason_detail"]
    assert len(parse_stdout(result.stdout)) == 6


def test_a_seed_reproduces_the_offline_run_and_another_seed_changes_it(runner: CliRunner) -> None:
    def run(seed: str) -> str:
        result = invoke(runner, "generate", APIS, "-m", "offline", "-n", "30", "--seed", seed)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    assert run("11") == run("11")
    assert run("11") != run("12")


def test_no_model_is_a_usage_error_with_a_hint(runner: CliRunner) -> None:
    result = invoke(runner, "generate", APIS, "-n", "3")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no model is configured\n\nhint: ")


def test_a_bad_library_line_names_file_line_and_field(runner: CliRunner, tmp_path: Path) -> None:
    apis = tmp_path / "apis.jsonl"
    apis.write_text('{"name": "ok", "parameters": {}}\n{"name": "bad", "parameters": {"x": {"type": "Frobnicate"}}}\n')
    result = invoke(runner, "generate", str(apis), "-m", "offline", "-n", "3")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith(f"error: line 2 of `{apis}`: tool `bad`: parameter `x` has type 'Frobnicate'")
    assert "Traceback" not in result.stderr


def test_styles_and_counts_from_flags(runner: CliRunner) -> None:
    result = invoke(
        runner, "generate", APIS, "-m", "offline", "-n", "40", "--pairs-per-prompt", "4", "--seed", "2", "--styles", "parallel=1"
    )
    rows = parse_stdout(result.stdout)
    assert len(rows) == 40 and {row["query_style"] for row in rows} == {"parallel"}
    assert len({row["request_id"] for row in rows}) == 10
    assert all(len(row["sampled_apis"]) == 1 for row in rows)


def test_a_thousand_requests_through_the_server_follow_the_weights_and_use_every_api(
    runner: CliRunner, server: LLMServer
) -> None:
    weights = "simple=0.4,multiple=0.2,parallel=0.2,parallel_multiple=0.2"
    result = invoke(runner, *generate_args("--styles", weights, server=server, count=3000, seed=5, concurrency=64))
    assert result.exit_code == 0, result.stderr
    rows = parse_stdout(result.stdout)
    assert len(server.chat_requests()) == 1000
    requests = {row["request_id"]: row for row in rows}
    assert len(requests) == 1000
    styles = [row["query_style"] for row in requests.values()]
    for style, weight in {"simple": 0.4, "multiple": 0.2, "parallel": 0.2, "parallel_multiple": 0.2}.items():
        assert abs(styles.count(style) / 1000 - weight) < 0.05
    library = {json.loads(line).get("function", json.loads(line))["name"] for line in Path(APIS).read_text().splitlines()}
    assert {name for row in requests.values() for name in row["sampled_apis"]} == library
    for row in requests.values():
        if row["query_style"] in ("multiple", "parallel_multiple"):
            assert isinstance(row["category"], str) and len(row["sampled_apis"]) >= 2  # one category


def test_a_missing_examples_file_names_the_flag(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "generate", APIS, "-m", "offline", "-n", "3", "--examples", str(tmp_path / "seeds.jsonl"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: `--examples` names `{tmp_path / 'seeds.jsonl'}`, which is not a file\n\nhint: ")


def test_examples_none_of_which_is_usable_stop_generate_and_run_before_any_request(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    for command in (
        ["generate", APIS, "-m", "offline"],
        ["run", APIS, "--functions", FUNCTIONS, "-m", "offline", "-J", "offline"],
    ):
        result = invoke(runner, *command, "-n", "3", "--examples", APIS, "-o", str(out))  # an API library, not seed rows
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith(
            f"error: no row of `--examples` `{APIS}` passes the format check, so there is no seed example to show (row 1: no_tools"
        )
        assert not out.exists()


def test_run_warns_of_the_examples_it_leaves_out(runner: CliRunner, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text((SAMPLE / "examples.jsonl").read_text() + '{"query": "no tools here", "answers": []}\n')
    run = ["run", APIS, "--functions", FUNCTIONS, "-m", "offline", "-J", "offline", "-n", "3", "-q"]
    result = invoke(runner, *run, "--examples", str(seeds), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "warning: `--examples`: 1 row left out, failing the format check\n"


def test_every_request_carries_a_max_tokens_by_pairs_that_the_setting_overrides(
    runner: CliRunner, server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sent(*extra: str) -> list[Any]:
        server.requests.clear()
        result = invoke(runner, *generate_args(*extra, server=server, count=6, seed=1))
        assert result.exit_code == 0, result.stderr
        return [(request.json.get("max_tokens"), request.json.get("max_completion_tokens")) for request in server.chat_requests()]

    assert sent() == [(2560, None)] * 2  # 1024 + 512 per pair, 3 pairs a request
    assert sent("--pairs-per-prompt", "6") == [(4096, None)]
    assert sent("--pairs-per-prompt", "6", "--max-tokens", "300") == [(300, None)]
    assert sent("-O", "max_completion_tokens=900") == [(None, 900)] * 2  # for models that refuse `max_tokens`
    monkeypatch.setenv("APIGEN_MAX_TOKENS", "0")
    assert sent() == [(None, None)] * 2  # 0: no limit is sent
    monkeypatch.setenv("APIGEN_MAX_TOKENS", "700")
    assert sent() == [(700, None)] * 2


def test_a_reply_cut_off_by_max_tokens_is_named_not_taken_for_nonsense(
    runner: CliRunner, server: LLMServer, tmp_path: Path
) -> None:
    cut = '{"pairs": [{"query": "Convert 5 km", "answers": [{"name": "conv'
    server.enqueue(Reply.chat(cut, finish_reason="length", completion_tokens=2560))
    rejects = tmp_path / "failed.jsonl"
    result = invoke(runner, *generate_args(server=server, count=6, seed=1, rejects=rejects))
    assert result.exit_code == 0, result.stderr
    [failed] = read_jsonl(rejects)
    assert (failed["rejected_by"], failed["reason"], failed["raw_output"]) == ("generate", "reply_cut_off", cut)
    assert failed["reason_detail"] == (
        "the reply was cut off after 2560 tokens by `--max-tokens 2560` before it was complete; raise `--max-tokens`"
    )
    assert len(parse_stdout(result.stdout)) == 3
