"""`--batch` and `--batch-dir`: provider batches through the real CLI against a scripted batch API.

The batch rows must be the rows the online path writes for the same scripted
replies; a process killed between submit and collect is followed by one that
submits nothing twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from .batch_server import BatchServer, echo
from .conftest import invoke, read_jsonl, write_jsonl
from .doc_pages import page_with
from .llm_server import LLMServer, Received, Reply
from .run_helpers import APIGEN, APIS, FUNCTIONS, cli_env
from .scripted_model import generation_reply, is_judge, judge_reply, pipeline_handler

GENERATE = ["generate", APIS, "-m", "test-model", "-n", "24", "--seed", "5", "--max-attempts", "1"]
FAST = ["--batch-poll-seconds", "0"]


def _batch_lines(server: BatchServer) -> list[dict[str, Any]]:
    return [json.loads(line) for request in server.created for line in server.files[request["input_file_id"]].splitlines()]


def _online_rows(runner: CliRunner, tmp_path: Path, *args: str, handler: Any = pipeline_handler) -> list[dict[str, Any]]:
    with LLMServer(handler=handler) as online:
        out = tmp_path / "online.jsonl"
        result = invoke(runner, *args, "--base-url", online.url, "-o", str(out), "-q")
        assert result.exit_code == 0, result.stderr
    return read_jsonl(out)


def test_generate_batch_writes_the_rows_the_online_path_writes(runner: CliRunner, tmp_path: Path) -> None:
    online = _online_rows(runner, tmp_path, *GENERATE)
    out = tmp_path / "batch.jsonl"
    with BatchServer(pipeline_handler) as server:
        result = invoke(runner, *GENERATE, "--base-url", server.url, "-o", str(out), "--batch", *FAST)
        assert result.exit_code == 0, result.stderr
        lines = _batch_lines(server)
    assert read_jsonl(out) == online and len(online) == 24
    assert len(server.created) == 1 and len(lines) == 8  # 24 rows, 3 pairs a request
    assert {line["url"] for line in lines} == {"/v1/chat/completions"} and lines[0]["method"] == "POST"
    assert server.created[0]["completion_window"] == "24h"
    # the status line on stderr carries the request counts, the summary the stage and its tokens
    assert "batch batch_2 (generate): completed, 8/8 done, 0 failed" in result.stderr
    assert "generate ran as 1 batch: 8 requests, 0 failed; 88 prompt + 56 completion tokens" in result.stderr
    state = json.loads((tmp_path / "batch.jsonl.batch.json").read_text())
    assert [entry["status"] for entry in state["batches"]] == ["completed"]


def test_the_batch_body_is_the_online_body_and_a_batch_filled_cache_serves_an_online_rerun(
    runner: CliRunner, tmp_path: Path
) -> None:
    cache = str(tmp_path / "cache")
    with BatchServer(pipeline_handler) as server:
        result = invoke(
            runner, *GENERATE, "--base-url", server.url, "-o", str(tmp_path / "b.jsonl"), "--batch", *FAST, "--cache", cache
        )
        assert result.exit_code == 0, result.stderr
        assert "retries" not in result.stderr  # one batch answered every request: nothing was retried
        bodies = [line["body"] for line in _batch_lines(server)]
        result = invoke(runner, *GENERATE, "--base-url", server.url, "-o", str(tmp_path / "o.jsonl"), "--cache", cache)
        assert result.exit_code == 0, result.stderr
        assert server.chat_requests == 0  # every reply came from the cache the batch filled
        assert "8 from cache" in result.stderr
    assert read_jsonl(tmp_path / "o.jsonl") == read_jsonl(tmp_path / "b.jsonl")
    with LLMServer(handler=pipeline_handler) as online:
        invoke(runner, *GENERATE, "--base-url", online.url, "-o", str(tmp_path / "o2.jsonl"))
        assert sorted(json.dumps(r.json, sort_keys=True) for r in online.chat_requests()) == sorted(
            json.dumps(body, sort_keys=True) for body in bodies
        )


def test_batches_are_split_past_the_limits(runner: CliRunner, tmp_path: Path) -> None:
    with BatchServer(pipeline_handler) as server:
        result = invoke(
            runner, *GENERATE, "--base-url", server.url, "-o", str(tmp_path / "b.jsonl"), "--batch", *FAST,
            "--batch-max-requests", "3",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert [len(server.files[r["input_file_id"]].splitlines()) for r in server.created] == [3, 3, 2]
        one = len(server.files[server.created[0]["input_file_id"]].splitlines()[0]) + 1
    with BatchServer(pipeline_handler) as server:
        result = invoke(
            runner, *GENERATE, "--base-url", server.url, "-o", str(tmp_path / "c.jsonl"), "--batch", *FAST,
            "--batch-max-bytes", str(int(one * 2.5)),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert all(len(server.files[r["input_file_id"]]) <= one * 2.5 for r in server.created)
        assert len(server.created) >= 3
    assert read_jsonl(tmp_path / "b.jsonl") == read_jsonl(tmp_path / "c.jsonl")


def _flaky(request: Received) -> Reply:
    """Fails some requests every time: a refusal (400) and an overload (503); others answer."""
    if "always-refused" in request.raw.decode():
        return Reply.error(400, "this prompt is refused")
    if "always-busy" in request.raw.decode():
        return Reply.error(503, "overloaded")
    return pipeline_handler(request)


def test_failed_and_expired_requests_go_into_follow_up_batches_then_fail_as_llm_error(runner: CliRunner, tmp_path: Path) -> None:
    # The first batch expires with half its requests unanswered; the follow-up completes them.
    with BatchServer(pipeline_handler, fate=lambda number: "expired" if number == 1 else "completed") as server:
        out = tmp_path / "b.jsonl"
        result = invoke(runner, *GENERATE, "--base-url", server.url, "-o", str(out), "--batch", *FAST)
        assert result.exit_code == 0, result.stderr
        assert [len(server.files[r["input_file_id"]].splitlines()) for r in server.created] == [8, 4]
        assert "4 retries" in result.stderr  # the 4 the expired batch left unanswered, each sent once more
    assert read_jsonl(out) == _online_rows(runner, tmp_path, *GENERATE)
    # A request the provider is too busy for every time is tried in 1 + 2 batches, then rejected with its
    # message; a refusal (a 400) is not sent again, as online.
    rows = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"id": "a", "query": "weather in Oslo", "tools": [], "answers": [], "execution_result": []},
            {"id": "b", "query": "always-busy", "tools": [], "answers": [], "execution_result": []},
            {"id": "c", "query": "always-refused", "tools": [], "answers": [], "execution_result": []},
        ],
    )
    judged = tmp_path / "judged.jsonl"
    with BatchServer(lambda request: _flaky(request) if is_judge(request) else Reply.chat("?")) as server:
        result = invoke(
            runner, "semantic-check", str(rows), "-J", "test-model", "--base-url", server.url, "--batch", *FAST,
            "-o", str(judged), "--rejects", str(tmp_path / "rej.jsonl"),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert [len(server.files[r["input_file_id"]].splitlines()) for r in server.created] == [3, 1, 1]
    busy, refused = read_jsonl(tmp_path / "rej.jsonl")
    assert busy["id"] == "b" and busy["reason"] == "llm_error"
    assert busy["reason_detail"] == "503: overloaded (after 3 batches)"
    assert refused["id"] == "c" and refused["reason_detail"] == "400: this prompt is refused"
    assert [row["id"] for row in read_jsonl(judged)] == ["a"]


def _executed_rows(runner: CliRunner, path: Path, count: int) -> Path:
    """Rows ready for the judge: generated offline, then through format-check and exec-check."""
    made = invoke(runner, "generate", APIS, "-m", "offline", "-n", str(count), "--seed", "2", "-O", "offline_error_rate=0")
    checked = invoke(runner, "format-check", "-", input=made.stdout)
    executed = invoke(
        runner, "exec-check", "-", "--functions", FUNCTIONS, "--error-result", "pass", "-o", str(path), input=checked.stdout
    )
    assert executed.exit_code == 0, executed.stderr
    return path


def _no_json_mode(request: Received) -> Reply:
    if "response_format" in request.json:
        return Reply.error(400, "response_format is not supported by this model")
    return judge_reply(request)


def test_a_provider_refusing_json_mode_is_asked_again_without_it_as_online(runner: CliRunner, tmp_path: Path) -> None:
    generated = _executed_rows(runner, tmp_path / "generated.jsonl", 9)
    judge = ["semantic-check", str(generated), "-J", "test-model"]
    # one at a time online: requests already in flight when JSON mode is dropped count as refusals there
    online = _online_rows(runner, tmp_path, *judge, "--concurrency", "1", handler=_no_json_mode)
    with BatchServer(_no_json_mode) as server:
        out = tmp_path / "judged.jsonl"
        result = invoke(runner, *judge, "--base-url", server.url, "-o", str(out), "--batch", *FAST)
        assert result.exit_code == 0, result.stderr
        assert len(server.created) == 2
    assert "warning: the endpoint refused `response_format` (400: response_format is not supported" in result.stderr
    assert read_jsonl(out) == online and len(online) == len(read_jsonl(generated)) == 9


def test_a_batch_the_provider_fails_is_retried_then_its_message_rejects_the_rows(runner: CliRunner, tmp_path: Path) -> None:
    with BatchServer(pipeline_handler, fate=lambda number: "failed") as server:
        out, rejects = tmp_path / "b.jsonl", tmp_path / "r.jsonl"
        result = invoke(runner, *GENERATE, "--base-url", server.url, "-o", str(out), "--rejects", str(rejects), "--batch", *FAST)
        assert result.exit_code == 0, result.stderr
        assert len(server.created) == 3
    rows = read_jsonl(rejects)
    assert len(rows) == 8 and {row["reason"] for row in rows} == {"llm_error"}
    assert rows[0]["reason_detail"] == "batch failed: invalid_request: the file is invalid (after 3 batches)"


def _reasking_judge(request: Received) -> Reply:
    """An unreadable verdict the first time a row is judged; a readable one when asked again."""
    if not is_judge(request):
        return generation_reply(request)
    if request.content.startswith("Your reply could not be read"):
        return judge_reply(request)
    return Reply.chat("I think it is fine")


def test_run_batch_chains_generation_checks_and_judge_and_asks_again_in_rounds(runner: CliRunner, tmp_path: Path) -> None:
    flags = ["run", APIS, "--functions", FUNCTIONS, "-m", "test-model", "-J", "test-model", "-n", "18", "--seed", "3"]
    online = _online_rows(runner, tmp_path, *flags, handler=_reasking_judge)
    out, report = tmp_path / "batch.jsonl", tmp_path / "report.json"
    with BatchServer(_reasking_judge) as server:
        result = invoke(runner, *flags, "--base-url", server.url, "-o", str(out), "--batch", *FAST, "--report", str(report))
        assert result.exit_code == 0, result.stderr
        stages = [request["metadata"]["apigen_stage"] for request in server.created]
        sizes = [len(server.files[r["input_file_id"]].splitlines()) for r in server.created]
    assert read_jsonl(out) == online and len(online) > 5
    # one generation batch, one judge batch for the rows still standing, one batch of re-asks
    assert stages == ["generate", "semantic-check", "semantic-check"] and sizes[0] == 6 and sizes[1] == sizes[2]
    batches = json.loads(report.read_text())["batches"]
    assert batches["generate"]["batches"] == 1 and batches["semantic-check"]["batches"] == 2
    assert batches["generate"]["prompt_tokens"] == 66
    assert "semantic-check ran as 2 batches" in result.stderr


def _wait(event: Any, process: subprocess.Popen[str]) -> None:
    assert event.wait(60), process.communicate(timeout=5)


def _popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*APIGEN, *args], env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("moment", ["creating", "polling", "downloading"])
def test_a_process_killed_between_submit_and_collect_is_followed_by_one_that_submits_nothing_twice(
    runner: CliRunner, tmp_path: Path, moment: str
) -> None:
    out = tmp_path / "b.jsonl"
    with BatchServer(pipeline_handler) as server:
        args = [*GENERATE, "--base-url", server.url, "-o", str(out), "--batch", "--batch-poll-seconds", "0.01"]
        if moment == "creating":
            server.hold_create.clear()  # the batch exists, but its id never reaches the client
        elif moment == "polling":
            server.hold.clear()  # batches stay in_progress
        else:
            server.hold_download.clear()  # the batch is done; its output file is on its way
        process = _popen(*args)
        try:
            _wait(server.created_event, process)
            if moment == "polling":
                server.polled_event.clear()
                _wait(server.polled_event, process)
            if moment == "downloading":
                _wait(server.download_event, process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        server.hold.set()
        server.hold_create.set()
        server.hold_download.set()
        assert len(server.created) == 1
        assert not out.exists() or out.read_text() == ""
        result = invoke(runner, *args[:-1], "0")
        assert result.exit_code == 0, result.stderr
        assert len(server.created) == 1 and server.uploads == 1
        rows = read_jsonl(out)
        # a third run of the same command finds the batch done: it downloads, and submits nothing
        again = invoke(runner, *args[:-1], "0")
        assert again.exit_code == 0, again.stderr
        assert len(server.created) == 1 and server.uploads == 1 and read_jsonl(out) == rows
    assert rows == _online_rows(runner, tmp_path, *GENERATE)


def test_run_batch_killed_while_the_judge_batch_runs_resumes_without_submitting_again(runner: CliRunner, tmp_path: Path) -> None:
    flags = ["run", APIS, "--functions", FUNCTIONS, "-m", "test-model", "-J", "test-model", "-n", "18", "--seed", "3"]
    out, rejects, log = tmp_path / "batch.jsonl", tmp_path / "rejects.jsonl", tmp_path / "llm.jsonl"
    with BatchServer(pipeline_handler) as server:
        server.hold.clear()
        server.hold_from = 2  # the generation batch completes, the judge batch stays in progress
        args = [*flags, "--base-url", server.url, "-o", str(out), "--rejects", str(rejects), "--batch", "--log-llm", str(log)]
        process = _popen(*args, "--batch-poll-seconds", "0.01")
        try:
            for _ in range(600):
                server.polled_event.clear()
                _wait(server.polled_event, process)
                if len(server.created) == 2:
                    break
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        assert [request["metadata"]["apigen_stage"] for request in server.created] == ["generate", "semantic-check"]
        server.hold.set()
        result = invoke(runner, *args, *FAST)
        assert result.exit_code == 0, result.stderr
        assert len(server.created) == 2 and server.uploads == 2
    online = _online_rows(runner, tmp_path, *flags)
    assert read_jsonl(out) == online
    # --log-llm saw the batch replies of the finished run as it sees online ones
    entries = [entry for entry in read_jsonl(log) if entry["response"] is not None]
    assert {entry["endpoint"] for entry in entries} == {server.url}
    assert len([entry for entry in entries if "pairs" in entry["response"]]) >= 6


def test_batch_status_and_cancel(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "b.jsonl"
    with BatchServer(pipeline_handler) as server:
        server.hold.clear()
        args = [*GENERATE, "--base-url", server.url, "-o", str(out), "--batch", "--batch-poll-seconds", "0.01"]
        process = _popen(*args)
        try:
            _wait(server.created_event, process)
            server.polled_event.clear()
            _wait(server.polled_event, process)
            status = invoke(runner, "batch", "status", str(out))
            assert status.exit_code == 0, status.stderr
            assert status.stdout.split() == ["batch_2", "generate", "test-model", "in_progress", "0/8", "done", "0", "failed"]
            cancel = invoke(runner, "batch", "cancel", str(out))
            assert cancel.exit_code == 0, cancel.stderr
            assert "cancelling" in cancel.stdout and "1 batch cancelled" in cancel.stderr
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)
        # the running command saw the cancel and rejected the requests instead of sending them again
        assert process.returncode == 0, stderr
        assert len(server.created) == 1
        assert "generate: 0 rows, 8 rejected (llm_error 8)" in stderr
        assert "--batch` changes nothing" not in stderr
        listed = invoke(runner, "batch", "status", str(out), "--no-refresh", "--json")
        assert [json.loads(line)["status"] for line in listed.stdout.splitlines()] == ["cancelled"]
    missing = invoke(runner, "batch", "status", str(tmp_path / "none.jsonl"))
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: no batches are recorded for")


def test_batch_needs_an_output_file(runner: CliRunner) -> None:
    result = invoke(runner, *GENERATE, "--base-url", "http://127.0.0.1:9/v1", "--batch")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `--batch` needs `-o FILE`")
    assert "hint: pass `-o FILE`" in result.stderr


def test_an_endpoint_without_a_batch_api_is_one_error_naming_batch_dir(runner: CliRunner, tmp_path: Path) -> None:
    with LLMServer() as online:
        result = invoke(runner, *GENERATE, "--base-url", online.url, "-o", str(tmp_path / "b.jsonl"), "--batch", *FAST)
    assert result.exit_code == 2
    assert "error: the batch API refused `POST " in result.stderr and "404" in result.stderr
    assert "`--batch-dir DIR`" in result.stderr


def test_batch_dir_writes_requests_for_vllm_and_a_rerun_with_results_carries_on(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "vllm"
    out = tmp_path / "b.jsonl"
    args = [*GENERATE, "--base-url", "http://127.0.0.1:9/v1", "-o", str(out), "--batch-dir", str(folder)]
    first = invoke(runner, *args)
    assert first.exit_code == 2
    assert f"error: 8 requests are written to `{folder}/requests.jsonl`" in first.stderr
    assert f"hint: run `vllm run-batch -i {folder}/requests.jsonl -o {folder}/results.jsonl --model test-model`" in first.stderr
    # play vllm run-batch: answer every line, in another order
    results = []
    for line in reversed((folder / "requests.jsonl").read_text().splitlines()):
        request = json.loads(line)
        reply = pipeline_handler(Received("POST", request["url"], {}, orjson.dumps(request["body"])))
        body = {"choices": [{"message": {"role": "assistant", "content": reply.text}}], "usage": {"prompt_tokens": 3}}
        results.append({"id": "x", "custom_id": request["custom_id"], "response": {"status_code": 200, "body": body}})
    write_jsonl(folder / "results.jsonl", results)
    second = invoke(runner, *args)
    assert second.exit_code == 0, second.stderr
    assert read_jsonl(out) == _online_rows(runner, tmp_path, *GENERATE)


# --- the Batch page's examples, run in order against the scripted batch API ----------------

PAGE = page_with("\n## Provider batches: `--batch`\n")


def _sh_lines(section: str) -> list[str]:
    body = PAGE.split(section, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in body.split("```sh\n")[1:]]
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def _play_vllm(requests: Path, results: Path) -> None:
    """What `vllm run-batch -i REQUESTS -o RESULTS` writes: one result line per request line."""
    lines = []
    for line in requests.read_text().splitlines():
        request = json.loads(line)
        reply = pipeline_handler(Received("POST", request["url"], {}, orjson.dumps(request["body"])))
        body = {"choices": [{"message": {"role": "assistant", "content": reply.text}}], "usage": {"prompt_tokens": 5}}
        lines.append({"id": "vllm", "custom_id": request["custom_id"], "response": {"status_code": 200, "body": body}})
    write_jsonl(results, lines)


def test_the_readme_batch_examples_run(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = [
        *_sh_lines("\n## Provider batches: `--batch`\n"),
        *_sh_lines("### `apigen batch status`"),
        *_sh_lines("### `apigen batch cancel`"),
    ]
    assert sum(line.startswith("apigen ") for line in lines) == 9 and any(line.startswith("vllm ") for line in lines)
    with BatchServer(pipeline_handler) as server:
        swap = {
            "https://api.openai.com/v1": server.url,
            "http://localhost:8000/v1": "http://127.0.0.1:9/v1",
            "apis.jsonl": APIS,
            "lib/": FUNCTIONS,
            "40000": "12",
            "1000": "12",
        }
        for line in lines:
            command, _, pipe = line.partition(" | ")
            words = [swap.get(word, word) for word in command.split()]
            if words[0] == "vllm":
                _play_vllm(Path(words[words.index("-i") + 1]), Path(words[words.index("-o") + 1]))
                continue
            if "executed.jsonl" in words:  # the stage before: format-check and exec-check of the generated rows
                invoke(runner, "format-check", "generated.jsonl", "-o", "checked.jsonl")
                invoke(runner, "exec-check", "checked.jsonl", "--functions", FUNCTIONS, "-o", "executed.jsonl")
            if "--batch" in words:
                words += ["--batch-poll-seconds", "0"]
            result = invoke(runner, *words[1:])
            pending = "--batch-dir" in words and not Path("vllm-batch/results.jsonl").exists()
            assert result.exit_code == (2 if pending else 0), (line, result.stderr)
            if "--json" in words:
                assert [json.loads(entry)["status"] for entry in result.stdout.splitlines()] == ["completed"]
    assert len(read_jsonl("generated.jsonl")) == 12 and read_jsonl("judged.jsonl")
    assert json.loads(Path("report.json").read_text())["batches"]["semantic-check"]["batches"] == 1


def test_polling_waits_twice_as_long_each_time_up_to_the_cap_and_says_each_change(tmp_path: Path) -> None:
    from apigen_cli.config import LLMSettings
    from apigen_cli.llm.batch import BatchBackend, BatchSettings
    from apigen_cli.llm.chat import ChatRequest

    slept: list[float] = []
    said: list[str] = []
    with BatchServer(echo) as server:
        server.hold.clear()

        def sleep(seconds: float) -> None:  # no real waiting: the server moves on after the fifth wait
            slept.append(seconds)
            if len(slept) == 5:
                server.hold.set()

        backend = BatchBackend(
            LLMSettings(base_url=server.url, models=("m",)),
            BatchSettings(state_file=str(tmp_path / "s.json"), poll_seconds=10, poll_cap=40),
            base_url=server.url,
            sleep=sleep,
            clock=lambda: 600.0,
            on_status=said.append,
        )
        messages = [{"role": "user", "content": "hello"}]
        [result] = backend.answer([ChatRequest("k", "m", messages)], [{"model": "m", "messages": messages}])
        backend.close()
    assert result.ok and result.text == "hello" and result.prompt_tokens == 11
    assert slept == [10, 20, 40, 40, 40, 40]
    assert said == [
        "batch batch_2 submitted: 1 llm requests for model `m`",
        "batch batch_2 (llm): in_progress, 0/1 done, 0 failed, 0 min",
        "batch batch_2 (llm): finalizing, 0/1 done, 0 failed, 0 min",
        "batch batch_2 (llm): completed, 1/1 done, 0 failed, 0 min",
    ]


def test_a_committee_of_judges_gets_one_batch_per_model_and_the_online_rows(runner: CliRunner, tmp_path: Path) -> None:
    generated = _executed_rows(runner, tmp_path / "generated.jsonl", 12)
    judges = ["semantic-check", str(generated), "-J", "test-model", "-J", "other-model", "-J", "test-model"]
    online = _online_rows(runner, tmp_path, *judges)
    with BatchServer(pipeline_handler) as server:
        out = tmp_path / "judged.jsonl"
        result = invoke(runner, *judges, "--base-url", server.url, "-o", str(out), "--batch", *FAST)
        assert result.exit_code == 0, result.stderr
        models = [
            {json.loads(line)["body"]["model"] for line in server.files[r["input_file_id"]].splitlines()} for r in server.created
        ]
    assert models == [{"test-model"}, {"other-model"}]
    assert read_jsonl(out) == online and online and all(len(row["judges"]) == 3 for row in online)


def test_run_batch_with_overwrite_starts_new_batches(runner: CliRunner, tmp_path: Path) -> None:
    flags = ["run", APIS, "--functions", FUNCTIONS, "-m", "test-model", "-J", "test-model", "-n", "6", "--seed", "4"]
    out = tmp_path / "data.jsonl"
    with BatchServer(pipeline_handler) as server:
        args = [*flags, "--base-url", server.url, "-o", str(out), "--batch", *FAST]
        assert invoke(runner, *args).exit_code == 0
        first = len(server.created)
        again = invoke(runner, *args)
        assert again.exit_code == 0 and "already holds this run" in again.stderr and len(server.created) == first
        afresh = invoke(runner, *args, "--overwrite")
        assert afresh.exit_code == 0, afresh.stderr
        assert len(server.created) == 2 * first and first == 2


def test_batch_status_at_an_endpoint_without_the_batch_is_one_error_naming_base_url(runner: CliRunner, tmp_path: Path) -> None:
    entry = {"tag": "t", "model": "m", "stage": "generate", "custom_ids": ["r1"], "input_file_id": "f", "id": "b1"}
    (tmp_path / "b.jsonl.batch.json").write_text(
        json.dumps({"base_url": "http://x/v1", "batches": [entry | {"status": "in_progress"}]})
    )
    with LLMServer() as online:
        result = invoke(runner, "batch", "status", str(tmp_path / "b.jsonl"), "--base-url", online.url)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: the batch API refused `GET {online.url}/batches/b1`: 404: no route /v1/batches/b1")
    assert "hint: check `--base-url`: the batches are at the endpoint the run used" in result.stderr
    listed = invoke(runner, "batch", "status", str(tmp_path / "b.jsonl"), "--no-refresh")
    assert listed.exit_code == 0 and listed.stdout.split()[:4] == ["b1", "generate", "m", "in_progress"]


def test_batch_results_echoing_a_piece_of_the_key_keep_it_out_of_rows_state_and_cache(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-batch-0123456789abcdefghij"
    monkeypatch.setenv("APIGEN_API_KEY", key)
    cache = tmp_path / "cache"
    with BatchServer(lambda _request: Reply.chat(f"not JSON, but the key was {key[:-4]}…")) as server:
        result = invoke(
            runner, *GENERATE, "--base-url", server.url, "-o", str(tmp_path / "b.jsonl"), "--rejects", str(tmp_path / "r.jsonl"),
            "--batch", *FAST, "--cache", str(cache),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    written = "".join(path.read_text(errors="replace") for path in tmp_path.rglob("*") if path.is_file())
    assert "the key was ***" in written
    assert not any(key[start : start + 12] in written + result.stderr for start in range(len(key) - 11))


def test_batch_requests_carry_max_tokens_and_a_reply_cut_by_it_is_named(runner: CliRunner, tmp_path: Path) -> None:
    answered: list[Received] = []

    def cut_first(request: Received) -> Reply:
        answered.append(request)
        answer = pipeline_handler(request)
        return Reply.chat((answer.text or "")[:40], finish_reason="length") if len(answered) == 1 else answer

    with BatchServer(cut_first) as server:
        out, rejects = tmp_path / "b.jsonl", tmp_path / "r.jsonl"
        cache = ["--cache", str(tmp_path / "cache")]
        result = invoke(
            runner, *GENERATE, "--base-url", server.url, "-o", str(out), "--rejects", str(rejects), "--batch", *FAST, *cache
        )
        assert result.exit_code == 0, result.stderr
        assert {line["body"]["max_tokens"] for line in _batch_lines(server)} == {2560}
        [cut] = read_jsonl(rejects)
        assert (cut["rejected_by"], cut["reason"]) == ("generate", "reply_cut_off")
        assert len(read_jsonl(out)) == 21
        # The cut reply was not cached: an online rerun sends its request alone again.
        result = invoke(runner, *GENERATE, "--base-url", server.url, "-o", str(tmp_path / "o.jsonl"), *cache)
        assert result.exit_code == 0, result.stderr
        assert server.chat_requests == 1
