"""MCP servers under attack: replies, stderr and processes bounded.

``apigen`` runs as a process (``library from-mcp``, ``exec-check --mcp/--mcp-url``) against
hostile servers: over HTTP a raw-socket server on 127.0.0.1, over stdio servers written
with the ``mcp`` SDK. Each attack checks the exit code, the message, and the bound itself
(peak RSS, bytes on disk, processes left), never how long it took.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import read_jsonl, write_jsonl
from .hostile import run_cli
from .hostile_server import HostileServer, gzip_bomb, mcp_over_http

RSS_CEILING_MB = 150
CAP = "4,194,304 bytes"
TOOL = {
    "name": "echo",
    "description": "Echo the text.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


def test_from_mcp_over_http_caps_a_gzip_bomb_listing_the_tools(tmp_path: Path) -> None:
    with HostileServer(mcp_over_http([TOOL], tools_list=gzip_bomb(512 << 20))) as server:
        ran = run_cli("library", "from-mcp", "--url", server.url + "/mcp", "--name", "bomb", "-o", str(tmp_path / "lib.jsonl"))
    assert not ran.killed
    assert ran.exit_code == 2, ran.stderr
    assert "error: the MCP server `bomb`" in ran.stderr and CAP in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.peak_rss_mb < RSS_CEILING_MB


def test_a_gzip_bomb_answering_a_call_over_http_rejects_its_row_with_flat_memory(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {
            "id": "bomb",
            "query": "q",
            "tools": [
                {
                    **{key: TOOL[key] for key in ("name", "description")},
                    "parameters": TOOL["inputSchema"],
                    "mcp": {"server": "bomb", "tool": "echo"},
                }
            ],
            "answers": [{"name": "echo", "arguments": {"text": "hi"}}],
        }
    ]
    source, output, rejects = tmp_path / "rows.jsonl", tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    write_jsonl(source, rows)
    with HostileServer(mcp_over_http([TOOL], tools_call=gzip_bomb(512 << 20))) as server:
        ran = run_cli(
            "exec-check", str(source), "--mcp-url", f"bomb={server.url}/mcp", "-o", str(output), "--rejects", str(rejects)
        )
    assert not ran.killed
    assert ran.exit_code == 0, ran.stderr
    [rejected] = read_jsonl(rejects)
    assert rejected["reason"] == "reply_too_large", rejected
    assert CAP in rejected["reason_detail"]
    assert ran.peak_rss_mb < RSS_CEILING_MB
