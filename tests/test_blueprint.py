"""`apigen blueprint`: task blueprints written around an environment's tools and verified on its real state.

Real classes in real worker processes: the sample store (its library as `library from-python
--class` writes it) and a BFCL-style file system whose nodes point at their parent; the offline
backend, and a scripted LLM server on 127.0.0.1 for the HTTP path.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.conversations.blueprint_checks import CHECKS, check_blueprints
from apigen_cli.conversations.blueprint_review import Review
from apigen_cli.conversations.environment_tools import load_environment_tools
from apigen_cli.conversations.policy_checks import PolicyChecks, find_policy_checks
from apigen_cli.execution.calls import ExecutorOptions
from apigen_cli.execution.executor import Executor
from apigen_cli.llm import offline_blueprint
from apigen_cli.llm.offline import OfflineChatService
from apigen_cli.stages.semantic_check import JudgeSettings

from .conftest import PROJECT, invoke, read_jsonl
from .doc_pages import run_section_example
from .llm_server import LLMServer, Received, Reply
from .run_helpers import APIGEN, apigen_process, cli_env, multi_turn_demo, saved_state
from .scripted_model import blueprint_reply

STORE = PROJECT / "sample_data" / "store"
STATE = STORE / "initial_state.json"
POLICY = STORE / "policy.md"
FILES = PROJECT / "tests" / "fixtures" / "environments" / "env_files.py"
MISC = PROJECT / "tests" / "fixtures" / "environments" / "env_misc.py"
FILES_STATE = {"TinyFileSystem": {"root": "/", "contents": {"work": {"notes.txt": "hello"}, "home": {}}}}


@pytest.fixture(scope="module")
def store_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "store_tools.jsonl"
    result = invoke(CliRunner(), "library", "from-python", str(STORE), "--class", "OnlineStore", "-o", str(path), "-q")
    assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def files_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "files_tools.jsonl"
    result = invoke(CliRunner(), "library", "from-python", str(FILES), "--class", "TinyFileSystem", "-o", str(path), "-q")
    assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def store_executor() -> Iterator[Executor]:
    with Executor(str(STORE), ExecutorOptions(workers=2)) as executor:
        yield executor


def blueprint_command(tools: Path, out: Path, *extra: str, rejects: str = "rejected.jsonl") -> list[str]:
    """The command line of a blueprint run on the sample store; the rejects beside ``out``, named ``rejects``."""
    return [
        "blueprint",
        str(tools),
        "--functions",
        str(STORE),
        "--initial-state",
        str(STATE),
        "--policy",
        str(POLICY),
        "-o",
        str(out),
        "--rejects",
        str(out.with_name(rejects)),
        *extra,
    ]


def test_offline_blueprints_of_the_sample_store_are_checked_and_each_ends_in_one_file(
    runner: CliRunner, store_tools: Path, tmp_path: Path
) -> None:
    out = tmp_path / "blueprints.jsonl"
    args = blueprint_command(store_tools, out, "-m", "offline", "-n", "30", "--seed", "2", "-O", "offline_error_rate=0.3")
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.stderr
    kept, rejected = read_jsonl(out), read_jsonl(tmp_path / "rejected.jsonl")
    assert sorted(row["id"] for row in kept + rejected) == sorted(f"bp-2-{index}" for index in range(30))
    assert result.stderr.splitlines()[-1].startswith(f"blueprint: {len(kept)} passed, {len(rejected)} rejected (")
    # each check has something to catch at this slip rate, and most blueprints pass
    assert {row["rejected_by"] for row in rejected} == set(CHECKS)
    assert len(kept) > len(rejected)
    state = json.loads(STATE.read_text())
    for row in kept:
        assert row["keep_row_after_blueprint_check"] is True
        assert row["instruction"].startswith("You are ")
        assert row["environment"] == state
        checks = row["blueprint_check"]
        assert checks["format"] == {"ok": True} and checks["execution"]["ok"] and checks["necessity"]["ok"]
        assert len(checks["execution"]["results"]) == len(row["actions"])
        assert checks["execution"]["diff"] and checks["execution"]["final_digest"]
        assert checks["necessity"]["replays"] >= 1
        source = row["blueprint_source"]
        assert source["model"] == "offline" and source["sample_seed"] == 2 and source["prompt_template"] == "blueprint"
        assert {action["name"] for action in row["actions"]} <= set(source["sampled_apis"])
        assert source["sampled_records"]
    for row in rejected:
        assert row["keep_row_after_blueprint_check"] is False and row["reason"] and row["reason_detail"]


def test_the_same_seed_writes_the_same_blueprints(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "bp.jsonl", tmp_path / "b" / "bp.jsonl"
    for out in (first, second):
        out.parent.mkdir()
        assert (
            invoke(runner, *blueprint_command(store_tools, out, "-m", "offline", "-n", "6", "--seed", "9", "-q")).exit_code == 0
        )
    assert first.read_bytes() == second.read_bytes()
    assert (first.with_name("rejected.jsonl")).read_bytes() == (second.with_name("rejected.jsonl")).read_bytes()


def store_row(row_id: str, *actions: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row_id,
        "instruction": "You are Maya Okafor.",
        "actions": [{"name": name, "arguments": arguments} for name, arguments in actions],
        "outputs": [],
        "environment": json.loads(STATE.read_text()),
    }


NEW_ADDRESS = {"address1": "1 Main Street", "city": "Salem", "state": "OR", "zip_code": "97301"}
OTHER_ADDRESS = {"address1": "2 Main Street", "city": "Salem", "state": "OR", "zip_code": "97301"}


@pytest.mark.parametrize(
    ("actions", "rejected_by", "reason"),
    [
        ([("find_user_by_email", {"email": "maya.okafor@example.com"}), ("delete_user", {})], "blueprint_format", "unknown_tool"),
        ([("update_user_address", {"user_id": "C-10482", "city": "Salem"})], "blueprint_format", "missing_required_argument"),
        ([("update_user_address", {"user_id": "C-104829", **NEW_ADDRESS})], "blueprint_execution", "action_error"),
        (
            [
                ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS}),
                ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS}),
            ],
            "blueprint_necessity",
            "write_without_change",
        ),
        (
            [
                ("update_user_address", {"user_id": "C-10482", **OTHER_ADDRESS}),
                ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS}),
            ],
            "blueprint_necessity",
            "unnecessary_write",
        ),
        (
            [
                ("find_user_by_email", {"email": "maya.okafor@example.com"}),
                ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS}),
            ],
            None,
            None,
        ),
    ],
    ids=["unknown-tool", "missing-argument", "wrong-id", "write-twice", "overwritten-write", "right"],
)
def test_each_check_catches_its_own_kind_of_wrong_blueprint(
    store_tools: Path,
    store_executor: Executor,
    actions: list[tuple[str, dict[str, Any]]],
    rejected_by: str | None,
    reason: str | None,
) -> None:
    [row] = check_blueprints([store_row("one", *actions)], load_environment_tools(str(store_tools)), store_executor)
    assert row.get("rejected_by") == rejected_by, row.get("reason_detail")
    assert row.get("reason") == reason
    assert row["keep_row_after_blueprint_check"] is (reason is None)
    if reason == "unnecessary_write":
        assert "action 1 `update_user_address`" in row["reason_detail"]
    if reason is None:
        execution = row["blueprint_check"]["execution"]
        assert execution["results"][0] == {"name": "find_user_by_email", "ok": True, "result": "C-10482", "changed_state": False}
        assert 'OnlineStore.users["C-10482"]["address"]["address1"]: "415 Alder Street" -> "1 Main Street"' in execution["diff"]
        assert row["blueprint_check"]["necessity"] == {"ok": True, "replays": 1}


def test_blueprints_of_an_environment_whose_state_has_cycles(runner: CliRunner, files_tools: Path, tmp_path: Path) -> None:
    """The offline backend writes for any environment; the checks replay on an object graph whose nodes point at their parent."""
    state, out = tmp_path / "files_state.json", tmp_path / "files.jsonl"
    state.write_text(json.dumps(FILES_STATE))
    result = invoke(
        runner,
        "blueprint",
        str(files_tools),
        "--functions",
        str(FILES),
        "--initial-state",
        str(state),
        "-m",
        "offline",
        "-n",
        "6",
        "--seed",
        "3",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    kept = read_jsonl(out)
    assert kept, result.stderr
    for row in kept:
        assert row["environment"] == FILES_STATE
        assert any("TinyFileSystem.root" in line for line in row["blueprint_check"]["execution"]["diff"])


def test_a_write_made_twice_on_the_file_system_is_caught_by_necessity(files_tools: Path) -> None:
    rows = [
        {"id": "twice", "environment": FILES_STATE, "actions": [{"name": "mkdir", "arguments": {"dir_name": "a"}}] * 2},
        {
            "id": "once",
            "environment": FILES_STATE,
            "actions": [{"name": "cd", "arguments": {"folder": "work"}}, {"name": "mkdir", "arguments": {"dir_name": "a"}}],
        },
    ]
    with Executor(str(FILES), ExecutorOptions(workers=1)) as executor:
        twice, once = check_blueprints(rows, load_environment_tools(str(files_tools)), executor)
    assert (twice["rejected_by"], twice["reason"]) == ("blueprint_necessity", "write_without_change")
    assert once["keep_row_after_blueprint_check"] is True, once.get("reason_detail")


# --- what is checked before a token is spent --------------------------------------------


def test_a_library_of_plain_functions_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, *blueprint_command(PROJECT / "sample_data" / "apis.jsonl", tmp_path / "o.jsonl", "-m", "offline"))
    assert result.exit_code == 2
    assert "names no `class`: a blueprint's actions run on a stateful environment" in result.stderr
    assert "hint: write the library with `apigen library from-python FILE_OR_FOLDER --class NAME`" in result.stderr


def test_an_initial_state_without_the_library_class_is_refused(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"Shop": {}}))
    args = blueprint_command(store_tools, tmp_path / "o.jsonl", "-m", "offline")
    args[args.index("--initial-state") + 1] = str(state)
    result = invoke(runner, *args)
    assert result.exit_code == 2
    assert (
        f"error: `--initial-state` file `{state}` does not fit the library's classes (OnlineStore): "
        "it has no state for `OnlineStore`; `Shop` is no class of the library"
    ) in result.stderr


def test_a_state_the_class_refuses_stops_the_run_before_any_request(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"OnlineStore": {"customers": {}}}))
    args = blueprint_command(store_tools, tmp_path / "o.jsonl", "-m", "test-model", "-n", "2")
    args[args.index("--initial-state") + 1] = str(state)
    with LLMServer() as server:
        result = invoke(runner, *args, "--base-url", server.url)
        assert server.chat_requests() == []
    assert result.exit_code == 2
    assert f"error: the environment cannot be made from `{state}`" in result.stderr
    assert "unknown keys ['customers']" in result.stderr and "(environment_load_error)" in result.stderr
    assert "hint: check `--initial-state` against the classes `--functions` names" in result.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_a_missing_policy_file_is_an_error_naming_it(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    args = blueprint_command(store_tools, tmp_path / "o.jsonl", "-m", "offline")
    args[args.index("--policy") + 1] = str(tmp_path / "nope.md")
    result = invoke(runner, *args)
    assert result.exit_code == 2
    assert f"error: `--policy` file `{tmp_path / 'nope.md'}` cannot be read" in result.stderr


# --- a model over HTTP ------------------------------------------------------------------


def test_a_model_over_http_gets_the_schema_and_its_replies_become_rows(
    runner: CliRunner, store_tools: Path, tmp_path: Path
) -> None:
    good = {
        "instruction": "You are Maya Okafor (maya.okafor@example.com). You moved to 1 Main Street, Salem, OR 97301.",
        "actions": [
            {"name": "find_user_by_email", "arguments": {"email": "maya.okafor@example.com"}},
            {"name": "update_user_address", "arguments": {"user_id": "C-10482", **NEW_ADDRESS}},
        ],
        "outputs": [],
    }
    out = tmp_path / "bp.jsonl"
    personas = tmp_path / "personas.txt"
    personas.write_text('A retired teacher who types slowly.\n\n{"persona": "A busy nurse."}\n')
    with LLMServer() as server:
        server.enqueue(Reply.chat("```json\n" + json.dumps(good) + "\n```"), Reply.chat("I cannot write that."))
        result = invoke(
            runner,
            *blueprint_command(store_tools, out, "-m", "test-model", "-n", "2", "--seed", "5", "--personas", str(personas)),
            "--base-url",
            server.url,
        )
        requests = server.chat_requests()
    assert result.exit_code == 0, result.stderr
    assert len(requests) == 2
    body = requests[0].json
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["instruction", "actions", "outputs"]
    prompt = "\n".join(message["content"] for message in body["messages"])
    assert "Confirm before every change" in prompt  # the policy
    assert "A retired teacher who types slowly." in prompt or "A busy nurse." in prompt
    [kept] = read_jsonl(out)
    assert kept["id"] == "bp-5-0" and kept["actions"] == good["actions"] and kept["keep_row_after_blueprint_check"] is True
    assert kept["blueprint_source"]["persona"] in ("A retired teacher who types slowly.", "A busy nurse.")
    [rejected] = read_jsonl(tmp_path / "rejected.jsonl")
    assert (rejected["rejected_by"], rejected["reason"]) == ("blueprint", "unparseable_blueprint")
    assert rejected["raw_output"] == "I cannot write that."


def test_the_multi_turn_demo_shows_a_kept_blueprint_and_why_the_others_were_rejected(tmp_path: Path) -> None:
    done = multi_turn_demo(tmp_path / "mt")
    assert done.returncode == 0, done.stderr
    assert "blueprint: 8 passed, 4 rejected" in done.stderr
    shown = done.stdout.split("--- why the other blueprints were rejected")
    assert '"id": "bp-23-0"' in shown[0]
    reasons = [line.split()[1:3] for line in shown[1].split("\n---", 1)[0].splitlines()[1:]]  # (simulate's lines follow)
    assert sorted(reasons) == [
        ["blueprint_execution", "action_error:"],
        ["blueprint_format", "missing_required_argument:"],
        ["blueprint_necessity", "write_without_change:"],
        ["blueprint_policy", "policy_violation:"],
    ]


def test_a_hanging_or_crashing_action_rejects_its_blueprint_not_the_run(runner: CliRunner, tmp_path: Path) -> None:
    library = tmp_path / "saboteur.jsonl"
    assert invoke(runner, "library", "from-python", str(MISC), "--class", "Saboteur", "-o", str(library), "-q").exit_code == 0
    entries = [json.loads(line) for line in library.read_text().splitlines()]
    for entry in entries:  # `note` changes the state though its name says nothing: the library says so
        if entry["name"] == "note":
            entry["effect"] = "write"
    library.write_text("".join(json.dumps(entry) + "\n" for entry in entries))

    def row(row_id: str, *names: str) -> dict[str, Any]:
        return {"id": row_id, "environment": {"Saboteur": {}}, "actions": [{"name": name, "arguments": {}} for name in names]}

    rows = [row("hangs", "note", "hang"), row("dies", "note", "hard_exit"), row("fine", "note"), row("long", *["note"] * 65)]
    with Executor(str(MISC), ExecutorOptions(workers=2, timeout=1.0)) as executor:
        checked = list(check_blueprints(rows, load_environment_tools(str(library)), executor))
    assert [(row["id"], row.get("rejected_by"), row.get("reason")) for row in checked] == [
        ("hangs", "blueprint_execution", "timeout"),
        ("dies", "blueprint_execution", "crashed"),
        ("fine", None, None),
        ("long", "blueprint_format", "too_many_actions"),
    ]


# --- policy checks: the user's rules, in worker processes -------------------------------

POLICY_CHECKS = STORE / "policy_checks.py"


def test_the_guide_s_blueprint_example_says_what_the_page_shows(tmp_path: Path) -> None:
    shown, said, _printed = run_section_example("### `apigen blueprint`", tmp_path)
    assert shown and said[-len(shown) :] == shown


def test_the_guide_s_revision_example_prints_the_table_the_page_shows(tmp_path: Path) -> None:
    """Its first `# ` line is what the blueprint run says; the rest, the table `apigen stats` prints."""
    shown, _said, printed = run_section_example("**Revision** (`--max-revisions N`)", tmp_path)
    assert shown[0].startswith("passed at the first attempt:") and printed == shown[1:]


def test_the_guide_shows_a_policy_check_of_the_sample_file_as_it_is() -> None:
    guide = (PROJECT / "docs" / "multi-turn.md").read_text()
    shown = guide.split("`sample_data/store/policy_checks.py` holds two of the store's rules:\n\n```python\n", 1)[1]
    assert shown.split("```", 1)[0] in POLICY_CHECKS.read_text()


def test_policy_checks_run_in_workers_and_reject_with_what_they_found(
    store_tools: Path, store_executor: Executor, tmp_path: Path
) -> None:
    broken = tmp_path / "broken_checks.py"
    broken.write_text(
        "def raises(actions):\n    raise ValueError('no rule for ' + actions[0]['name'])\n\n"
        "def counts(actions):\n    return len(actions)\n"
    )
    find = ("find_user_by_email", {"email": "maya.okafor@example.com"})
    rows = [
        store_row("right", find, ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS})),
        store_row("unauthenticated", ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS})),
        # ORD-321060 is Kenji Watanabe's, not Maya Okafor's
        store_row("not-hers", find, ("cancel_pending_order", {"order_id": "ORD-321060", "reason": "no longer needed"})),
    ]
    environment = load_environment_tools(str(store_tools))
    with Executor(str(POLICY_CHECKS), ExecutorOptions(workers=1)) as checker:
        checks = PolicyChecks(find_policy_checks(str(POLICY_CHECKS)), checker)
        assert [check.name for check in checks.checks] == ["authenticate_first", "only_the_customers_own_orders"]
        right, unauthenticated, not_hers = check_blueprints(rows, environment, store_executor, policy_checks=checks)
    assert right["blueprint_check"]["policy"] == {"ok": True, "checks": ["authenticate_first", "only_the_customers_own_orders"]}
    assert right["keep_row_after_blueprint_check"] is True
    assert (unauthenticated["rejected_by"], unauthenticated["reason"]) == ("blueprint_policy", "policy_violation")
    assert unauthenticated["reason_detail"] == (
        "`authenticate_first`: action 1 `update_user_address` comes before the customer is authenticated"
    )
    assert not_hers["reason_detail"] == (
        "`only_the_customers_own_orders`: action 2 `cancel_pending_order` acts on order ORD-321060 of C-11167, not of C-10482"
    )
    with Executor(str(broken), ExecutorOptions(workers=1)) as checker:
        checks = PolicyChecks(find_policy_checks(str(broken)), checker)
        [raised] = check_blueprints([store_row("r", find)], environment, store_executor, policy_checks=checks)
    assert (raised["rejected_by"], raised["reason"]) == ("blueprint_policy", "policy_check_error")
    assert "the policy check `raises` failed: ValueError: no rule for find_user_by_email" in raised["reason_detail"]
    with Executor(str(broken), ExecutorOptions(workers=1)) as checker:
        checks = PolicyChecks((find_policy_checks(str(broken))[1],), checker)
        [counted] = check_blueprints([store_row("c", find)], environment, store_executor, policy_checks=checks)
    assert counted["reason_detail"] == (
        "the policy check `counts` returned 1; a check returns a list of violations (strings) or nothing"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def helper(text):\n    return text\n", "defines no policy check"),
        ("def check(actions:\n", "line 1 of"),
    ],
    ids=["no-check", "syntax-error"],
)
def test_a_policy_checks_file_that_cannot_serve_stops_the_run_before_any_request(
    runner: CliRunner, store_tools: Path, tmp_path: Path, text: str, message: str
) -> None:
    checks = tmp_path / "checks.py"
    checks.write_text(text)
    with LLMServer() as server:
        args = blueprint_command(store_tools, tmp_path / "o.jsonl", "-m", "test-model", "--policy-checks", str(checks))
        result = invoke(runner, *args, "--base-url", server.url)
        assert server.chat_requests() == []
    assert result.exit_code == 2
    assert message in result.stderr and str(checks) in result.stderr


# --- the review committee ---------------------------------------------------------------


def test_the_offline_committee_rejects_a_write_whose_values_the_user_never_gives(
    store_tools: Path, store_executor: Executor
) -> None:
    find = ("find_user_by_email", {"email": "maya.okafor@example.com"})
    grounded = store_row("grounded", find, ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS}))
    grounded["instruction"] = "You are Maya Okafor (maya.okafor@example.com); you moved to 1 Main Street, Salem, OR 97301."
    made_up = store_row("made-up", find, ("update_user_address", {"user_id": "C-10482", **NEW_ADDRESS}))
    made_up["instruction"] = "You are Maya Okafor (maya.okafor@example.com); you moved."
    chat = OfflineChatService(writers={"blueprint_review": offline_blueprint.review})
    review = Review.of(chat, JudgeSettings(judges=("offline", "offline", "offline")), policy=None)
    kept, rejected = check_blueprints(
        [grounded, made_up], load_environment_tools(str(store_tools)), store_executor, review=review
    )
    assert kept["keep_row_after_blueprint_check"] is True
    assert [judge["pass"] for judge in kept["blueprint_check"]["review"]["judges"]] == [True, True, True]
    assert (rejected["rejected_by"], rejected["reason"]) == ("blueprint_review", "review_rejected")
    assert rejected["reason_detail"] == (
        "3 of 3 judges said no: call 2 `update_user_address` uses address1 '1 Main Street', "
        "which the user does not give and no earlier call returned"
    )


def test_a_committee_over_http_decides_by_majority_with_every_vote_kept(
    runner: CliRunner, store_tools: Path, tmp_path: Path
) -> None:
    def blueprint(user: str, email: str, user_id: str) -> str:
        return json.dumps(
            {
                "instruction": f"You are {user} ({email}); you moved to 1 Main Street, Salem, OR 97301.",
                "actions": [
                    {"name": "find_user_by_email", "arguments": {"email": email}},
                    {"name": "update_user_address", "arguments": {"user_id": user_id, **NEW_ADDRESS}},
                ],
                "outputs": [],
            }
        )

    def vote(passed: bool, thought: str) -> Reply:
        return Reply.chat(json.dumps({"thought": thought, "pass": "yes" if passed else "no"}))

    # answered by what is asked, not by arrival order: checks stream, so a review may come before the next generation
    drafts = [
        blueprint("Maya Okafor", "maya.okafor@example.com", "C-10482"),
        blueprint("Kenji Watanabe", "kenji.watanabe@example.net", "C-11167"),
    ]
    verdicts = {
        ("judge-a", "maya"): [vote(True, "fine")],
        ("judge-b", "maya"): [vote(False, "the zip code is wrong")],
        ("judge-a", "kenji"): [Reply.chat("I would rather not say."), Reply.chat("Still no verdict."), Reply.chat("Nor now.")],
        ("judge-b", "kenji"): [vote(True, "looks right")],
    }
    lock = threading.Lock()

    def answer(request: Received) -> Reply:
        with lock:
            if request.model == "test-model":
                return Reply.chat(drafts.pop(0))
            shown = request.json["messages"][-1]["content"]
            return verdicts[(str(request.model), "maya" if "maya.okafor" in shown else "kenji")].pop(0)

    out = tmp_path / "bp.jsonl"
    with LLMServer(handler=answer) as server:
        args = blueprint_command(store_tools, out, "-m", "test-model", "-n", "2", "--seed", "4", "--concurrency", "1")
        result = invoke(runner, *args, "-J", "judge-a", "-J", "judge-b", "--base-url", server.url)
        requests = server.chat_requests()
    assert result.exit_code == 0, result.stderr
    assert sorted(str(request.model) for request in requests) == ["judge-a"] * 4 + ["judge-b"] * 2 + ["test-model"] * 2
    assert not any(verdicts.values()), "every scripted verdict was asked for"
    shown = next(
        request.json["messages"][-1]["content"]
        for request in requests
        if request.model == "judge-a" and "maya.okafor" in request.json["messages"][-1]["content"]
    )
    assert 'OnlineStore.users["C-10482"]["address"]["address1"]: "415 Alder Street" -> "1 Main Street"' in shown
    assert "Confirm before every change" in shown and "you moved to 1 Main Street" in shown
    [kept] = read_jsonl(out)
    [rejected] = read_jsonl(tmp_path / "rejected.jsonl")
    # two judges: one yes and one no is a tie, and a tie fails
    assert (rejected["id"], rejected["rejected_by"], rejected["reason"]) == ("bp-4-0", "blueprint_review", "review_rejected")
    assert rejected["reason_detail"] == "1 of 2 judges said no: the zip code is wrong"
    assert rejected["blueprint_check"]["review"]["judges"] == [
        {"model": "judge-a", "pass": True, "thought": "fine"},
        {"model": "judge-b", "pass": False, "thought": "the zip code is wrong"},
    ]
    # a judge with no readable verdict after its re-asks does not vote; the one that does decides
    assert kept["id"] == "bp-4-1" and kept["blueprint_check"]["review"]["ok"] is True
    assert [judge["pass"] for judge in kept["blueprint_check"]["review"]["judges"]] == [None, True]


# --- revision with critiques ------------------------------------------------------------


def test_rejected_blueprints_go_back_with_their_critique_and_every_attempt_is_kept(
    runner: CliRunner, store_tools: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bp.jsonl"
    args = [*blueprint_command(store_tools, out, "-m", "offline", "-J", "offline", "-n", "12", "--seed", "23")]
    args += ["-O", "offline_error_rate=0.3", "--policy-checks", str(POLICY_CHECKS), "--max-revisions", "2"]
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "passed at the first attempt: 8 of 12 (67%); after revisions: 11 of 12 (92%)" in lines
    assert lines[-1] == "blueprint: 11 passed, 1 rejected (write_without_change (blueprint_necessity) 1)"
    kept, [rejected] = read_jsonl(out), read_jsonl(tmp_path / "rejected.jsonl")
    assert sorted(row["id"] for row in [*kept, rejected]) == sorted(f"bp-23-{index}" for index in range(12))
    # a slip the critique names is not made again; a blueprint that fails the same way each time stays rejected
    revised = {
        row["id"]: [attempt["reason"] for attempt in row["blueprint_attempts"]] for row in kept if "blueprint_attempts" in row
    }
    assert revised == {"bp-23-2": ["policy_violation"], "bp-23-4": ["missing_required_argument"], "bp-23-10": ["action_error"]}
    first = next(row for row in kept if row["id"] == "bp-23-2")["blueprint_attempts"][0]
    assert first["rejected_by"] == "blueprint_policy" and first["actions"][0]["name"] == "update_user_address"
    assert [attempt["reason"] for attempt in rejected["blueprint_attempts"]] == ["write_without_change"] * 2


def test_a_revision_request_shows_the_model_its_blueprint_and_the_critique(
    runner: CliRunner, store_tools: Path, tmp_path: Path
) -> None:
    def blueprint(instruction: str) -> Reply:
        actions = [
            {"name": "find_user_by_email", "arguments": {"email": "maya.okafor@example.com"}},
            {"name": "update_user_address", "arguments": {"user_id": "C-10482", **NEW_ADDRESS}},
        ]
        return Reply.chat(json.dumps({"instruction": instruction, "actions": actions, "outputs": []}))

    out = tmp_path / "bp.jsonl"
    with LLMServer() as server:
        server.enqueue(
            blueprint("You are Maya Okafor; you moved."),
            Reply.chat(json.dumps({"thought": "the user never gives the new address", "pass": "no"})),
            blueprint("You are Maya Okafor (maya.okafor@example.com); you moved to 1 Main Street, Salem, OR 97301."),
            Reply.chat(json.dumps({"thought": "", "pass": "yes"})),
        )
        args = blueprint_command(
            store_tools, out, "-m", "test-model", "-J", "judge", "-n", "1", "--seed", "8", "--max-revisions", "1"
        )
        result = invoke(runner, *args, "--base-url", server.url)
        requests = server.chat_requests()
    assert result.exit_code == 0, result.stderr
    assert [request.model for request in requests] == ["test-model", "judge", "test-model", "judge"]
    asked_again = requests[2].json["messages"]
    assert asked_again[:-2] == requests[0].json["messages"]
    assert json.loads(asked_again[-2]["content"])["instruction"] == "You are Maya Okafor; you moved."
    assert asked_again[-1]["content"].startswith(
        "That task was checked and rejected (blueprint_review): 1 of 1 judges said no: the user never gives the new address\n"
    )
    [kept] = read_jsonl(out)
    assert kept["instruction"].endswith("Salem, OR 97301.") and kept["blueprint_check"]["review"]["ok"] is True
    assert kept["blueprint_attempts"] == [
        {
            "instruction": "You are Maya Okafor; you moved.",
            "actions": kept["actions"],
            "outputs": [],
            "rejected_by": "blueprint_review",
            "reason": "review_rejected",
            "reason_detail": "1 of 1 judges said no: the user never gives the new address",
        }
    ]
    assert "passed at the first attempt: 0 of 1 (0%); after revisions: 1 of 1 (100%)" in result.stderr


# --- negative blueprints ----------------------------------------------------------------


def test_negative_blueprints_change_nothing_and_are_counted_apart(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    out = tmp_path / "bp.jsonl"
    args = blueprint_command(store_tools, out, "-m", "offline", "-J", "offline", "-n", "20", "--seed", "23")
    result = invoke(runner, *args, "-O", "offline_error_rate=0.3", "--negative-share", "0.4")
    assert result.exit_code == 0, result.stderr
    assert "negative on purpose: 5 kept of 9 (policy_refusal 2 of 5, missing_detail 3 of 4)" in result.stderr.splitlines()
    kept, rejected = read_jsonl(out), read_jsonl(tmp_path / "rejected.jsonl")
    writes = {tool.name for tool in load_environment_tools(str(store_tools)).writes}
    negatives = [row for row in kept if row["blueprint_kind"] != "positive"]
    for row in negatives:
        assert not writes & {action["name"] for action in row["actions"]}
        assert row["blueprint_check"]["necessity"] == {"ok": True, "replays": 0, "unchanged": True}
        assert row["blueprint_check"]["execution"]["diff"] == []
        assert row["blueprint_check"]["review"]["ok"] is True
    assert any(row["instruction"].endswith(" yet.") for row in negatives if row["blueprint_kind"] == "missing_detail")
    made_anyway = [row for row in rejected if row["reason"] == "negative_changes_state"]
    assert made_anyway and all(row["rejected_by"] == "blueprint_necessity" for row in made_anyway)
    assert {row["blueprint_kind"] for row in kept} == {"positive", "policy_refusal", "missing_detail"}
    # a refusal is shown the tools that neither read nor write, and may end in a hand-over that says why
    refusals = [row for row in kept if row["blueprint_kind"] == "policy_refusal"]
    assert all("transfer_to_human_agents" in row["blueprint_source"]["sampled_apis"] for row in refusals)
    assert any(row["actions"][-1]["name"] == "transfer_to_human_agents" for row in refusals)


def test_a_refusal_may_need_no_call_at_all(store_tools: Path, store_executor: Executor) -> None:
    refusal = {**store_row("no-calls"), "blueprint_kind": "policy_refusal"}
    positive = store_row("no-calls-positive")
    kept, rejected = check_blueprints([refusal, positive], load_environment_tools(str(store_tools)), store_executor)
    assert kept["keep_row_after_blueprint_check"] is True
    assert (rejected["rejected_by"], rejected["reason"]) == ("blueprint_format", "no_actions")


# --- examples ---------------------------------------------------------------------------


def test_kept_blueprints_of_an_earlier_run_are_shown_as_examples(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    earlier = tmp_path / "earlier.jsonl"
    made = invoke(
        runner,
        *blueprint_command(
            store_tools, earlier, "-m", "offline", "-n", "12", "--seed", "23", "-q", rejects="earlier_rejected.jsonl"
        ),
    )
    assert made.exit_code == 0, made.stderr
    kept = {row["id"]: row for row in read_jsonl(earlier)}
    out = tmp_path / "bp.jsonl"
    with LLMServer(handler=blueprint_reply) as server:
        args = blueprint_command(store_tools, out, "-m", "test-model", "-n", "3", "--seed", "6", "--examples", str(earlier))
        result = invoke(runner, *args, "--base-url", server.url, "--concurrency", "1")
        requests = server.chat_requests()
    assert result.exit_code == 0, result.stderr
    rows = sorted(read_jsonl(out) + read_jsonl(tmp_path / "rejected.jsonl"), key=lambda row: int(row["id"].split("-")[-1]))
    assert len(rows) == len(requests) == 3
    for request, row in zip(requests, rows, strict=True):
        source = row["blueprint_source"]
        assert len(source["sampled_examples"]) == 2
        prompt = request.json["messages"][-1]["content"]
        assert "Tasks written before for this database (follow their form, do not copy them):" in prompt
        for key in source["sampled_examples"]:
            example = kept[key]
            assert example["instruction"] in prompt
        focus = source["sampled_apis"][-1]
        same = [key for key, example in kept.items() if example["actions"][-1]["name"] == focus]
        assert source["sampled_examples"][0] in same or not same


def test_an_examples_file_without_a_kept_blueprint_stops_the_run(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    rejected = tmp_path / "rejected_only.jsonl"
    rejected.write_text(
        json.dumps({"id": "x", "instruction": "You are.", "actions": [], "rejected_by": "blueprint_format"}) + "\n"
    )
    result = invoke(runner, *blueprint_command(store_tools, tmp_path / "o.jsonl", "-m", "offline", "--examples", str(rejected)))
    assert result.exit_code == 2
    assert f"error: `--examples` file `{rejected}` holds no kept blueprint whose actions call a write" in result.stderr


def test_a_blueprint_run_killed_mid_way_resumes_without_asking_again_for_what_it_wrote(store_tools: Path, tmp_path: Path) -> None:
    """kill -9 with the scripted server holding the 67th request: the rerun asks only for the blueprints not checkpointed.

    Blueprints are checked as a stream (``blueprint_checks.IN_FLIGHT``: 64 held at once): each is
    written as soon as it and every one before it are checked, while later ones still replay. When
    the run waits on the server after the 66th blueprint, those still replaying stay unwritten, and
    how many they are is the workers' pace, not the test's: at most 64 are held, so two at least are
    written, and a row is checkpointed when the next one comes, so the state holds 1 to 65 done. The
    rerun asks again for exactly the blueprints the state does not hold, and the files come out as
    the reference's, none lost and none twice.
    """

    def command(name: str, server: LLMServer, *extra: str) -> list[str]:
        args = blueprint_command(
            store_tools,
            tmp_path / f"{name}.jsonl",
            "-m",
            "test-model",
            "-n",
            "70",
            "--seed",
            "9",
            "--base-url",
            server.url,
            rejects=f"{name}_rejects.jsonl",
        )
        return [*args, "--concurrency", "2", *extra]

    with LLMServer(handler=blueprint_reply) as server:
        reference = apigen_process(command("reference", server))
        assert reference.returncode == 0, reference.stderr
        state_file = tmp_path / "resumed.jsonl.apigen-run.json"
        server.hold(after=66)
        try:
            with subprocess.Popen([*APIGEN, *command("resumed", server)], env=cli_env(), stderr=subprocess.DEVNULL) as process:
                assert server.wait_parked(1)
                while not state_file.exists() or saved_state(state_file)["requests_done"] < 1:
                    assert process.poll() is None, "the held run ended"
                    time.sleep(0.02)
                process.send_signal(signal.SIGKILL)
                process.wait()
        finally:
            server.release()
        state = saved_state(state_file)
        done = state["requests_done"]
        assert 1 <= done <= 65 and not state["complete"]
        log = tmp_path / "second.log.jsonl"
        second = apigen_process(command("resumed", server, "--log-llm", str(log)))
        assert second.returncode == 0, second.stderr

    assert read_jsonl(tmp_path / "resumed.jsonl") == read_jsonl(tmp_path / "reference.jsonl")  # none lost, none twice
    assert read_jsonl(tmp_path / "resumed_rejects.jsonl") == read_jsonl(tmp_path / "reference_rejects.jsonl")
    asked_again = sorted(int(entry["key"].rsplit("-", 1)[1]) for entry in read_jsonl(log))
    assert asked_again == list(range(done, 70))  # at most the 64 held, and the four never answered, asked again
    assert f"resumed: {done} of 70 blueprints were already written" in second.stderr
    summary = [line for line in reference.stderr.splitlines() if line.startswith("blueprint:")]
    assert summary and summary[0] in second.stderr  # the whole run's figures, not the second session's


def test_with_revisions_one_held_blueprint_does_not_hold_back_the_requests_of_the_others(
    store_tools: Path, tmp_path: Path
) -> None:
    """The server holds the first request it gets; the run goes on asking for the others, well past 64.

    Blueprints with `--max-revisions` went in windows of 64, each waited for whole before the
    next began, so one slow reply stalled 63 others. They now stream as the rest do: while one
    is held, up to the reorder window's requests (4 x `--concurrency`: 96 here) go out, and
    revisions join the same stream. Every fifth first reply names no tool of the store, so its
    blueprint is revised (answered with the same blueprint, rejected again), as is any other the
    checks reject; the rows come out in plan order, each in exactly one file.
    """

    def answer(request: Received) -> Reply:
        messages = request.json["messages"]
        if len(messages) > 2:  # a revision: the rejected blueprint, as the model wrote it before
            return Reply.chat(messages[-2]["content"])
        reply = blueprint_reply(request)
        if server.count % 5:
            return reply
        wrong = json.loads(reply.text or "")
        wrong["actions"] = [{"name": "no_such_tool", "arguments": {}}]
        return Reply.chat(json.dumps(wrong))

    out = tmp_path / "bp.jsonl"
    with LLMServer(handler=answer) as server:
        server.hold_when = lambda request: server.count == 1  # whichever blueprint it asks for
        args = blueprint_command(store_tools, out, "-m", "test-model", "-n", "120", "--seed", "4", "--max-revisions", "1")
        with subprocess.Popen([*APIGEN, *args, "--base-url", server.url, "--concurrency", "24"], env=cli_env()) as process:
            try:
                assert server.wait_parked(1)
                deadline = time.monotonic() + 60  # only a failing run waits this long: the windows stopped at 64
                while server.count <= 64 and process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                seen_while_held = server.count
            finally:
                server.release()
            assert process.wait() == 0
        requests = server.chat_requests()
    assert seen_while_held > 64
    kept, rejected = read_jsonl(out), read_jsonl(tmp_path / "rejected.jsonl")
    for rows in (kept, rejected):
        places = [int(row["id"].rsplit("-", 1)[1]) for row in rows]
        assert places == sorted(places)
    assert sorted(row["id"] for row in kept + rejected) == sorted(f"bp-4-{index}" for index in range(120))
    revised = [row for row in rejected if row.get("blueprint_attempts")]  # the same blueprint again: the same reason
    assert all([attempt["reason"] for attempt in row["blueprint_attempts"]] == [row["reason"]] for row in revised)
    assert "unknown_tool" in {row["reason"] for row in revised}
    assert len(requests) == 120 + len(revised)


def test_stats_and_report_on_blueprint_files_give_the_pass_rates_with_and_without_revisions(
    runner: CliRunner, store_tools: Path, tmp_path: Path
) -> None:
    out, rejects = tmp_path / "bp.jsonl", tmp_path / "rejected.jsonl"
    made = invoke(
        runner,
        *blueprint_command(store_tools, out, "-m", "offline", "-n", "20", "--seed", "23", "-O", "offline_error_rate=0.3"),
        *("--policy-checks", str(STORE / "policy_checks.py"), "-J", "offline", "--max-revisions", "2", "--negative-share", "0.3"),
    )
    assert made.exit_code == 0, made.stderr
    rows = read_jsonl(out) + read_jsonl(rejects)
    firsts = sum(1 for row in rows if "rejected_by" not in row and not row.get("blueprint_attempts"))
    assert f"passed at the first attempt: {firsts} of 20" in made.stderr and 0 < firsts < len(read_jsonl(out)) < 20

    stats = invoke(runner, "stats", str(out), str(rejects), "--json")
    assert stats.exit_code == 0, stats.stderr
    figures = json.loads(stats.stdout)
    assert (figures["requested"], figures["verified"], figures["first_attempt"]["verified"]) == (20, len(read_jsonl(out)), firsts)
    negatives = [row for row in rows if row["blueprint_kind"] != "positive"]
    assert (
        figures["negatives"]
        == {
            "requested": len(negatives),
            "verified": sum(1 for row in negatives if "rejected_by" not in row),
        }
        and negatives
    )
    by_check: dict[str, int] = {}
    for row in rows:
        for attempt in row.get("blueprint_attempts", []):
            by_check[attempt["rejected_by"].removeprefix("blueprint_")] = (
                by_check.get(attempt["rejected_by"].removeprefix("blueprint_"), 0) + 1
            )
    assert {
        name: sum(check["revised_for"].values()) for name, check in figures["checks"].items() if check["revised_for"]
    } == by_check
    final = {row["rejected_by"].removeprefix("blueprint_") for row in read_jsonl(rejects)}
    assert {name for name, check in figures["checks"].items() if check["rejected"]} == final

    text = invoke(runner, "stats", str(out), str(rejects))
    assert (
        text.stdout.splitlines()[0] == f"blueprints: {figures['verified']} verified of 20 requested ({figures['pass_rate']:.1%})"
    )
    assert "negative on purpose:" in text.stdout and "after revisions:" in text.stdout

    page, card = tmp_path / "report.html", tmp_path / "README.md"
    report = invoke(runner, "report", str(out), str(rejects), "--html", str(page), "--card", str(card), "--json")
    assert report.exit_code == 0, report.stderr
    assert json.loads(report.stdout) == figures
    html = page.read_text()
    assert f"{figures['first_attempt']['pass_rate']:.1%} at the first attempt" in html and 'data-chart="checks"' in html
    assert "| verified after revisions |" in card.read_text()
    assert report.stderr.splitlines()[-1] == f"report: {figures['requested']} blueprints read, {figures['verified']} verified"

    for command in (["stats"], ["report", "--json"]):  # without its rejects: said, not silently 100%
        alone = invoke(runner, *command, str(out))
        assert alone.exit_code == 0 and "give the run's rejects file too (`apigen stats BLUEPRINTS REJECTS`)" in alone.stderr


DEFAULTS = PROJECT / "tests" / "fixtures" / "environments" / "env_defaults.py"


def test_without_initial_state_the_classes_own_default_state_is_the_initial_state(runner: CliRunner, tmp_path: Path) -> None:
    tools, out = tmp_path / "shelf_tools.jsonl", tmp_path / "shelf.jsonl"
    made = invoke(runner, "library", "from-python", str(DEFAULTS), "--class", "LendingShelf", "-o", str(tools), "-q")
    assert made.exit_code == 0, made.stderr
    args = ["blueprint", str(tools), "--functions", str(DEFAULTS), "-m", "offline", "-n", "6", "--seed", "1", "-o", str(out)]
    result = invoke(runner, *args, "--rejects", str(tmp_path / "rejected.jsonl"))
    assert result.exit_code == 0, result.stderr
    rows = read_jsonl(out) + read_jsonl(tmp_path / "rejected.jsonl")
    default = {"LendingShelf": {"books": DEFAULT_BOOKS, "members": DEFAULT_MEMBERS}}
    assert len(rows) == 6 and all(row["environment"] == default for row in rows)
    [kept, *_] = read_jsonl(out)
    assert kept["actions"][-1] == {"name": "return_book", "arguments": {"book_id": "B-3"}}  # the one book lent by default
    assert kept["blueprint_check"]["execution"]["diff"] == [
        'LendingShelf.books["B-3"]["member_id"]: "M-1" -> null',
        'LendingShelf.books["B-3"]["status"]: "lent" -> "on_shelf"',
    ]


def test_a_default_state_that_does_not_load_back_stops_the_run_naming_the_class(
    runner: CliRunner, files_tools: Path, tmp_path: Path
) -> None:
    args = [
        "blueprint",
        str(files_tools),
        "--functions",
        str(FILES),
        "-m",
        "offline",
        "-n",
        "2",
        "-o",
        str(tmp_path / "out.jsonl"),
    ]
    result = invoke(runner, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: the default state of `TinyFileSystem` loads back into another state (its loader does not take what its state gives)"
    )
    assert "hint: pass `--initial-state FILE`" in result.stderr


DEFAULT_BOOKS = {
    "B-1": {"book_id": "B-1", "member_id": None, "status": "on_shelf", "title": "The Left Hand of Darkness"},
    "B-2": {"book_id": "B-2", "member_id": None, "status": "on_shelf", "title": "Kindred"},
    "B-3": {"book_id": "B-3", "member_id": "M-1", "status": "lent", "title": "Solaris"},
}
DEFAULT_MEMBERS = {"M-1": {"member_id": "M-1", "name": "Ada Obi"}, "M-2": {"member_id": "M-2", "name": "Lin Park"}}


def test_blueprints_piped_into_stats_are_refused_with_what_to_do(runner: CliRunner, store_tools: Path, tmp_path: Path) -> None:
    out = tmp_path / "bp.jsonl"
    made = invoke(runner, *blueprint_command(store_tools, out, "-m", "offline", "-n", "2", "--seed", "3", "-q"))
    assert made.exit_code == 0, made.stderr
    result = invoke(runner, "stats", "-", input=out.read_text())
    assert result.exit_code == 2
    assert result.stderr.startswith("error: row 1 of standard input is a task blueprint (`apigen blueprint` wrote it)")


def test_a_finished_blueprint_run_is_not_run_again_and_other_flags_are_refused(
    runner: CliRunner, store_tools: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bp.jsonl"
    first = invoke(runner, *blueprint_command(store_tools, out, "-m", "offline", "-n", "4", "--seed", "3"))
    assert first.exit_code == 0, first.stderr
    written = out.read_bytes()
    again = invoke(runner, *blueprint_command(store_tools, out, "-m", "offline", "-n", "4", "--seed", "3"))
    assert again.exit_code == 0, again.stderr
    assert f"`{out}` already holds this run, complete; pass `--overwrite` to run it again" in again.stderr
    assert out.read_bytes() == written
    assert [line for line in first.stderr.splitlines() if line.startswith("blueprint:")] == [
        line for line in again.stderr.splitlines() if line.startswith("blueprint:")
    ]
    other = invoke(runner, *blueprint_command(store_tools, out, "-m", "offline", "-n", "5", "--seed", "3"))
    assert other.exit_code == 2
    assert other.stderr.startswith(f"error: `{out}` holds a run made with other settings: `count` (was 4, now 5)")
    fresh = invoke(runner, *blueprint_command(store_tools, out, "-m", "offline", "-n", "5", "--seed", "3", "--overwrite"))
    assert fresh.exit_code == 0, fresh.stderr
    assert len(read_jsonl(out) + read_jsonl(tmp_path / "rejected.jsonl")) == 5


GATE = PROJECT / "tests" / "fixtures" / "environments" / "env_gate.py"


def test_blueprint_checks_stream_the_next_blueprint_starts_while_an_older_one_still_replays(tmp_path: Path) -> None:
    """Two held at most: the blueprint after a held one is read, and lets it go, while the held one still replays.

    Checked in windows of two, as they were, the held blueprint's window waited for it until the
    session's time limit, and the next was read only after both came out.
    """
    tools = tmp_path / "gate_tools.jsonl"
    made = invoke(CliRunner(), "library", "from-python", str(GATE), "--class", "Gate", "-o", str(tools), "-q")
    assert made.exit_code == 0, made.stderr
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    written: list[dict[str, Any]] = []
    out_when_read: list[int] = []

    def gate_row(row_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row_id,
            "instruction": "Go through.",
            "actions": [{"name": name, "arguments": arguments}],
            "outputs": [],
        } | {"environment": {"Gate": {}}}

    def release() -> None:
        with open(fifo, "w", encoding="utf-8") as pipe:  # waits until the held session opens its end
            pipe.write("let through")

    def rows() -> Iterator[dict[str, Any]]:
        yield gate_row("first", "look", {})
        yield gate_row("held", "pass_through", {"fifo": str(fifo)})
        out_when_read.append(len(written))
        threading.Thread(target=release, daemon=True).start()
        yield gate_row("third", "look", {})

    with Executor(str(GATE), ExecutorOptions(workers=2)) as executor:
        try:
            for row in check_blueprints(rows(), load_environment_tools(str(tools)), executor, in_flight=2):
                written.append(row)
        finally:
            with contextlib.suppress(OSError):  # a release still waiting for a reader (the windowed way) ends here
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    assert out_when_read == [1]  # only the first was out when the third was read: the held one was still replaying
    assert [row["id"] for row in written] == ["first", "held", "third"]  # in input order all the same
    held = written[1]
    assert held.get("keep_row_after_blueprint_check") is True, held.get("reason_detail")
    assert held["blueprint_check"]["execution"]["results"][0]["result"] == "let through"
