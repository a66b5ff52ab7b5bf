"""Issue 12, the LLM client under attack: time and memory bounded, the key never leaves.

Each attack runs the real CLI as a process (``hostile.run_cli``) against a hostile
server on 127.0.0.1 and checks that it ended by itself (no kill at the deadline),
its exit code, its peak RSS, and that the one request is accounted for as a row.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .conftest import read_jsonl
from .hostile import run_cli
from .hostile_server import HostileServer, answer, completion, echo_key, gzip_bomb, huge, response, trickle
from .run_helpers import generate_args

KEY = "sk-hostile-0123456789abcdef"
#: The CLI's own footprint is well below this; a reply held whole or a bomb inflated is far above.
RSS_CEILING_MB = 120


def after_one_good_reply(behaviour: Any) -> Any:
    """The first request is answered well, the others by the attack.

    A stage whose every request failed exits 2 (issue 11); one good request first
    keeps the attack's row a row, rejected, in a run that ends normally.
    """
    good = answer(json.dumps([{"query": "What is 2 plus 3?", "answers": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}]))
    served = {"count": 0}

    def behaviour_after(seen: Any) -> Any:
        served["count"] += 1
        return good(seen) if served["count"] == 1 else behaviour(seen)

    return behaviour_after


def generate(
    server: HostileServer, tmp_path: Path, *extra: str, deadline: float = 60.0, good_first: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], object]:
    """``generate`` of two requests, one at a time: the first answered well, the second by the attack.

    Returns the rows of the attacked request only (kept and rejected) and the run.
    ``good_first=False``: one request, answered by the server as it is.
    """
    if good_first:
        server.behaviour = after_one_good_reply(server.behaviour)
    output, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    count = 6 if good_first else 3
    url, flags = f"{server.url}/v1", ["--max-attempts", "1", *extra]
    one_at_a_time = generate_args(
        *flags, base_url=url, model="m", count=count, concurrency=1, seed=1, out=output, rejects=rejects
    )
    ran = run_cli(*one_at_a_time, env={"APIGEN_API_KEY": KEY}, deadline=deadline)
    assert not ran.killed, "the run outlived its deadline"
    assert ran.exit_code == 0, ran.stderr

    def attacked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not good_first:
            return rows
        return [row for row in rows if int(str(row.get("request_id", "x-1")).rsplit("-", 1)[1]) != 0]

    kept = read_jsonl(output) if output.exists() else []
    rejected = read_jsonl(rejects) if rejects.exists() else []
    return attacked(kept), attacked(rejected), ran


@pytest.mark.parametrize("where", ["headers", "body", "chunked"])
def test_a_trickling_reply_is_cut_at_the_timeout_of_the_whole_attempt(tmp_path: Path, where: str) -> None:
    # 4000 bytes at one per 20 ms: 80 s if every byte reset the clock.
    text = json.dumps([{"query": "q" * 3000, "answers": []}])
    with HostileServer(trickle(completion(text), every=0.02, where=where)) as server:
        kept, rejected, ran = generate(server, tmp_path, "--timeout", "0.5", deadline=40)
    assert kept == []
    [row] = rejected
    assert row["reason"] == "llm_error" and "no reply within 0.5 s" in row["reason_detail"]


def test_a_gzip_bomb_stops_at_the_reply_cap(tmp_path: Path) -> None:
    with HostileServer(gzip_bomb(256 << 20)) as server:  # 256 MiB once inflated, 250 kB on the wire
        kept, rejected, ran = generate(server, tmp_path, "--max-reply-bytes", "1000000")
    assert kept == []
    [row] = rejected
    assert row["reason"] == "reply_too_large" and "1,000,000 bytes" in row["reason_detail"]
    assert ran.peak_rss_mb < RSS_CEILING_MB  # type: ignore[attr-defined]


def test_a_huge_valid_reply_is_rejected_not_stored(tmp_path: Path) -> None:
    with HostileServer(huge(64 << 20)) as server:
        kept, rejected, ran = generate(server, tmp_path, "--max-reply-bytes", "1000000")
    [row] = rejected
    assert kept == [] and row["reason"] == "reply_too_large" and "raw_output" not in row
    assert ran.peak_rss_mb < RSS_CEILING_MB  # type: ignore[attr-defined]


def test_an_encoding_apigen_did_not_ask_for_is_refused(tmp_path: Path) -> None:
    body = completion("[]")
    with HostileServer(lambda _seen: [response(200, body, {"content-encoding": "br"})]) as server:
        kept, rejected, _ran = generate(server, tmp_path)
    [row] = rejected
    assert kept == [] and row["reason"] == "llm_error" and "`br`" in row["reason_detail"]


ECHOES = {"whole": slice(None), "cut short": slice(0, -6), "its tail": slice(-16, None), "a middle": slice(9, 27)}


@pytest.mark.parametrize("echoed", ECHOES)
def test_a_reply_echoing_the_key_leaves_it_out_of_rows_log_and_cache(tmp_path: Path, echoed: str) -> None:
    log, cache = tmp_path / "llm.jsonl", tmp_path / "cache"
    with HostileServer(echo_key(part=ECHOES[echoed])) as server:
        kept, rejected, ran = generate(server, tmp_path, "--log-llm", str(log), "--cache", str(cache))
        assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"  # the attack did see it
    assert len(kept) + len(rejected) >= 1
    everything = json.dumps(kept) + json.dumps(rejected) + log.read_text() + ran.stderr + ran.stdout  # type: ignore[attr-defined]
    with sqlite3.connect(cache / "responses.sqlite3") as db:
        everything += json.dumps(db.execute("SELECT * FROM responses").fetchall())
    assert "***" in everything and KEY not in everything
    assert not any(KEY[start : start + 12] in everything for start in range(len(KEY) - 11))  # nor a piece of 12


@pytest.mark.parametrize("verbose", [False, True])
def test_a_401_echoing_the_key_keeps_it_out_of_stderr_even_verbose(tmp_path: Path, verbose: bool) -> None:
    flags = ["-v"] if verbose else []
    with HostileServer(echo_key(status=401)) as server:
        ran = run_cli(
            *generate_args(*flags, base_url=f"{server.url}/v1", model="m", count=3), env={"APIGEN_API_KEY": KEY}, deadline=40
        )
    assert not ran.killed and ran.exit_code == 2  # -v shows the traceback, and keeps the exit code
    assert "not valid" in ran.stderr and KEY not in ran.stderr + ran.stdout
    assert ("Traceback" in ran.stderr) is verbose


def test_a_reply_cut_by_length_is_not_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    text = json.dumps([{"query": "q", "answers": [{"name": "f", "arguments": {}}]}])
    with HostileServer(answer(text, finish_reason="length")) as server:
        generate(server, tmp_path, "--cache", str(cache), good_first=False)
        generate(server, tmp_path, "--cache", str(cache), "--max-tokens", "4000", good_first=False)
        generate(server, tmp_path, "--cache", str(cache), good_first=False)
        assert len(server.requests) == 3  # every run asked again: nothing cut short came from the cache
    with HostileServer(answer(text)) as server:
        generate(server, tmp_path, "--cache", str(cache), good_first=False)
        generate(server, tmp_path, "--cache", str(cache), good_first=False)
        assert len(server.requests) == 1  # a whole reply is cached as before


@pytest.mark.parametrize("models", ["trickle", "echo"])
def test_the_model_list_behind_a_404_is_bounded_and_redacted(tmp_path: Path, models: str) -> None:
    def behaviour(seen: Any) -> Any:
        if seen.method == "GET" and models == "trickle":
            return trickle(b'{"data": [' + b" " * 5000 + b"]}", every=0.02)(seen)
        if seen.method == "GET":
            sent = seen.headers.get("authorization", "")
            return [response(200, json.dumps({"data": [{"id": f"model-for-{sent}"}]}).encode())]
        return [response(404, b'{"error": {"message": "model not found"}}')]

    with HostileServer(behaviour) as server:
        ran = run_cli(*generate_args(base_url=f"{server.url}/v1", model="m", count=3), env={"APIGEN_API_KEY": KEY})
    assert not ran.killed and ran.exit_code == 2
    assert "does not serve model `m`" in ran.stderr and KEY not in ran.stderr
    assert ("model-for-Bearer ***" in ran.stderr) is (models == "echo")
