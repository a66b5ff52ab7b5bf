"""Issue 12, REST tools under attack: time and memory bounded, no variable goes where it should not.

``apigen exec-check`` runs as a process against hostile servers on 127.0.0.1; every
attack checks that it ended by itself, its exit code, and that every input row came
out once, kept or rejected with its reason; the memory attacks measure peak RSS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import read_jsonl, write_jsonl
from .hostile import Ran, run_cli
from .hostile_server import HostileServer, echo_request, gzip_bomb, huge, redirect, trickle

RSS_CEILING_MB = 120


def row(ident: str, http: dict[str, Any], arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    tool = {"name": "fetch", "parameters": {"type": "object", "properties": {}}, "http": http}
    return {"id": ident, "query": "q", "tools": [tool], "answers": [{"name": "fetch", "arguments": arguments or {}}]}


def exec_check(
    tmp_path: Path, rows: list[dict[str, Any]], *flags: str, env: dict[str, str] | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], Ran]:
    source, output, rejects = tmp_path / "rows.jsonl", tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    write_jsonl(source, rows)
    ran = run_cli("exec-check", str(source), "-o", str(output), "--rejects", str(rejects), *flags, env=env, deadline=40)
    assert not ran.killed, "the run outlived its deadline"
    assert ran.exit_code == 0, ran.stderr
    kept = {found["id"]: found for found in read_jsonl(output)}
    rejected = {found["id"]: found for found in read_jsonl(rejects)}
    assert sorted([*kept, *rejected]) == sorted(found["id"] for found in rows)  # every row once
    return kept, rejected, ran


@pytest.mark.parametrize("where", ["headers", "body", "chunked"])
def test_a_trickling_reply_is_cut_at_the_http_timeout_of_the_whole_attempt(tmp_path: Path, where: str) -> None:
    body = json.dumps({"data": "x" * 4000}).encode()  # 80 s at a byte per 20 ms
    with HostileServer(trickle(body, every=0.02, where=where)) as server:
        _kept, rejected, _ran = exec_check(
            tmp_path, [row("slow", {"url": server.url + "/x"})], "--http-timeout", "0.5", "--http-retries", "0"
        )
    assert rejected["slow"]["reason"] == "timeout" and "no reply within 0.5 s" in rejected["slow"]["reason_detail"]


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
def test_a_proxy_trickling_its_reply_is_cut_at_the_http_timeout_too(tmp_path: Path, variable: str) -> None:
    body = json.dumps({"data": "x" * 4000}).encode()  # 80 s at a byte per 20 ms
    with HostileServer(trickle(body, every=0.02, where="body")) as proxy:
        env = {variable: proxy.url, variable.lower(): proxy.url, "NO_PROXY": "", "no_proxy": ""}
        _kept, rejected, _ran = exec_check(
            tmp_path, [row("proxied", {"url": "http://tools.example/x"})], "--http-timeout", "0.5", "--http-retries", "0", env=env
        )
        assert proxy.requests and proxy.requests[0].path == "http://tools.example/x"  # it did go through the proxy
    assert rejected["proxied"]["reason"] == "timeout" and "no reply within 0.5 s" in rejected["proxied"]["reason_detail"]


def test_no_proxy_sends_its_hosts_past_the_proxy(tmp_path: Path) -> None:
    with HostileServer(echo_request()) as server:
        env = {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "localhost,127.0.0.1"}  # a proxy nobody answers at
        kept, _rejected, _ran = exec_check(tmp_path, [row("direct", {"url": server.url + "/x"})], "--http-retries", "0", env=env)
    assert kept["direct"]["execution_result"][0]["result"]["path"] == "/x"


@pytest.mark.parametrize("behaviour", [gzip_bomb(256 << 20), huge(64 << 20)], ids=["gzip-bomb", "huge"])
def test_a_reply_over_the_cap_is_rejected_with_flat_memory(tmp_path: Path, behaviour: Any) -> None:
    with HostileServer(behaviour) as server:
        kept, rejected, ran = exec_check(
            tmp_path, [row("big", {"url": server.url + "/x"})], "--http-max-reply-bytes", "1000000", "--http-retries", "0"
        )
    assert rejected["big"]["reason"] == "reply_too_large" and "1,000,000 bytes" in rejected["big"]["reason_detail"]
    assert ran.peak_rss_mb < RSS_CEILING_MB


def test_path_arguments_cannot_climb_out_of_the_template(tmp_path: Path) -> None:
    with HostileServer(echo_request()) as server:
        http = {"url": server.url + "/v1/items/{a}/{b}/{c}"}
        rows = [
            row("climb", http, {"a": "..", "b": "..", "c": "x"}),
            row("dot", http, {"a": ".", "b": "b", "c": "c"}),
            row("fine", http, {"a": "a..", "b": "...", "c": "x/../y"}),
        ]
        kept, rejected, _ran = exec_check(tmp_path, rows)
        seen = [request.path for request in server.requests]
    assert rejected["climb"]["reason"] == "invalid_arguments" and "`..`" in rejected["climb"]["reason_detail"]
    assert rejected["dot"]["reason"] == "invalid_arguments"
    assert seen == ["/v1/items/a../.../x%2F..%2Fy"]
    assert kept["fine"]["execution_result"][0]["result"]["path"] == seen[0]


def test_a_redirect_to_another_origin_leaves_the_environment_values_behind(tmp_path: Path) -> None:
    env = {"ITEMS_KEY": "ik-123456", "PROXY_TOKEN": "pt-654321"}
    http = {
        "url": "{base}/x",
        "headers": {"X-Api-Key": "$ITEMS_KEY", "Proxy-Authorization": "Basic $PROXY_TOKEN", "X-Plain": "kept"},
    }
    flags = ("--pass-env", "ITEMS_KEY", "--pass-env", "PROXY_TOKEN", "--http-retries", "0")
    with HostileServer(echo_request()) as elsewhere, HostileServer(redirect(elsewhere.url + "/landed")) as server:
        binding = {**http, "url": server.url + "/x"}
        kept, _rejected, _ran = exec_check(tmp_path, [row("moved", binding)], *flags, env=env)
        [arrived] = elsewhere.requests
        assert server.requests[0].headers["x-api-key"] == "ik-123456"  # the binding's own host got it
    assert arrived.path == "/landed" and arrived.headers["x-plain"] == "kept"
    assert "x-api-key" not in arrived.headers and "proxy-authorization" not in arrived.headers
    assert kept["moved"]["execution_result"][0]["result"]["path"] == "/landed"

    with HostileServer(echo_request()) as elsewhere, HostileServer(redirect(elsewhere.url + "/landed")) as server:
        binding = {**http, "url": server.url + "/x"}
        _kept, rejected, _ran = exec_check(tmp_path, [row("moved", binding)], *flags, "--http-redirects", "same-origin", env=env)
        assert elsewhere.requests == []
    assert rejected["moved"]["reason"] == "http_error" and "another origin" in rejected["moved"]["reason_detail"]


def test_a_variable_not_passed_rejects_its_row_and_the_others_go_on(tmp_path: Path) -> None:
    env = {"SERVICE_TOKEN": "st-secret", "DATABASE_URL": "postgres://user:pw@db/x", "ALLOWED_ID": "42"}
    with HostileServer(echo_request()) as server:
        rows = [
            row("secret", {"url": server.url + "/a", "headers": {"X-T": "$SERVICE_TOKEN"}}),
            row("plain", {"url": server.url + "/b?db=${DATABASE_URL}"}),
            row("allowed", {"url": server.url + "/c/$ALLOWED_ID"}),
        ]
        kept, rejected, ran = exec_check(tmp_path, rows, "--pass-env", "ALLOWED_ID", env=env)
        seen = [request.path for request in server.requests]
    assert rejected["secret"]["reason"] == rejected["plain"]["reason"] == "binding_not_allowed"
    assert "`--pass-env DATABASE_URL`" in rejected["plain"]["reason_detail"]
    assert seen == ["/c/42"] and "allowed" in kept
    assert "st-secret" not in ran.stderr + json.dumps(rejected) and "pw@db" not in json.dumps(rejected)


def test_the_query_string_of_a_binding_url_is_kept(tmp_path: Path) -> None:
    with HostileServer(echo_request()) as server:
        kept, _rejected, _ran = exec_check(tmp_path, [row("q", {"url": server.url + "/x?fixed=1&format=json"}, {"q": "red"})])
        [seen] = server.requests
    assert seen.path == "/x?fixed=1&format=json&q=red"
    assert kept["q"]["execution_result"][0]["ok"]


def test_an_argument_cannot_choose_the_origin_that_receives_the_key(tmp_path: Path) -> None:
    """Arguments fill path segments and query values only: the scheme, host and port are the binding's own."""
    key = {"X-Api-Key": "$ITEMS_KEY"}
    with HostileServer(echo_request()) as intended, HostileServer(echo_request()) as thief:
        env = {"ITEMS_KEY": "ik-123456", "ITEMS_BASE": intended.url}
        rows = [
            row("port", {"url": "http://127.0.0.1:{port}/x", "headers": key}, {"port": thief.port}),
            row("host", {"url": "http://{host}/x", "headers": key}, {"host": f"127.0.0.1:{thief.port}"}),
            row("scheme", {"url": "{scheme}://127.0.0.1/x", "headers": key}, {"scheme": "http"}),
            row("after-host", {"url": intended.url + "{rest}", "headers": key}, {"rest": f"@127.0.0.1:{thief.port}/steal"}),
            row("after-variable", {"url": "${ITEMS_BASE}{rest}", "headers": key}, {"rest": f":{thief.port}/steal"}),
            row("in-path", {"url": "${ITEMS_BASE}/items/{id}", "headers": key}, {"id": f"@127.0.0.1:{thief.port}/steal"}),
            row("in-query", {"url": intended.url + "/items?id={id}", "headers": key}, {"id": f"x#@127.0.0.1:{thief.port}/"}),
        ]
        kept, rejected, _ran = exec_check(tmp_path, rows, "--pass-env", "ITEMS_*", "--http-retries", "0", env=env)
        assert thief.requests == []
        seen = sorted(request.path for request in intended.requests)
    for ident in ("port", "host", "scheme", "after-host", "after-variable"):
        assert rejected[ident]["reason"] == "invalid_tool_definition", ident
        assert "only the path and the query" in rejected[ident]["reason_detail"], ident
    assert "`{port}`" in rejected["port"]["reason_detail"]
    assert sorted(kept) == ["in-path", "in-query"]
    assert seen == [f"/items/%40127.0.0.1%3A{thief.port}%2Fsteal", f"/items?id=x%23%40127.0.0.1%3A{thief.port}%2F"]


@pytest.mark.parametrize("route", ["@127.0.0.1:{thief}/steal", ":{thief}/steal", "{{host}}/steal"])
def test_an_openapi_path_cannot_move_the_base_url_to_another_origin(tmp_path: Path, route: str) -> None:
    """A path key is joined to `--base-url`: one that does not start with `/` would write the host, port or userinfo."""
    with HostileServer(echo_request()) as intended, HostileServer(echo_request()) as thief:
        path = route.format(thief=thief.port)
        spec = tmp_path / "spec.json"
        operation = {"operationId": "steal", "security": [{"key": []}]}
        if "{host}" in path:
            operation["parameters"] = [{"name": "host", "in": "path", "required": True, "schema": {"type": "string"}}]
        spec.write_text(
            json.dumps(
                {
                    "openapi": "3.0.3",
                    "info": {"title": "t", "version": "1"},
                    "components": {"securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}},
                    "paths": {path: {"get": operation}},
                }
            )
        )
        library = tmp_path / "library.jsonl"
        ran = run_cli(
            "library", "from-openapi", str(spec), "--base-url", intended.url, "--auth", "key=ITEMS_KEY", "-o", str(library)
        )
        assert thief.requests == []
    assert ran.exit_code == 2, ran.stderr
    assert f"at `/paths/{path.replace('/', '~1')}`" in ran.stderr
    assert "a path should start with `/`" in ran.stderr and "Traceback" not in ran.stderr
    assert not library.exists() or library.read_text() == ""
