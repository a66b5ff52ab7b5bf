"""MCP servers under attack: replies, stderr and processes bounded.

``apigen`` runs as a process (``library from-mcp``, ``exec-check --mcp/--mcp-url``) against
hostile servers: over HTTP a raw-socket server on 127.0.0.1, over stdio servers written
with the ``mcp`` SDK. Each attack checks the exit code, the message, and the bound itself
(peak RSS, bytes on disk, processes left), never how long it took.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import PROJECT, read_jsonl, write_jsonl
from .hostile import run_cli
from .hostile_server import HostileServer, gzip_bomb, mcp_over_http
from .test_hostile_processes import gone_soon

RSS_CEILING_MB = 150
HOSTILE = [sys.executable, str(PROJECT / "tests" / "mcp_hostile_server.py")]
STDIO = shlex.join(HOSTILE)
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


def mcp_row(ident: str, tool: str, arguments: dict[str, Any], server: str = "tests") -> dict[str, Any]:
    parameters = {"type": "object", "properties": {name: {} for name in arguments}}
    definition = {"name": tool, "parameters": parameters, "mcp": {"server": server, "tool": tool}}
    return {"id": ident, "query": "q", "tools": [definition], "answers": [{"name": tool, "arguments": arguments}]}


def start_cli(*args: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``apigen ARGS`` as a process the test holds (its stdout and stderr in files of ``tmp_path``)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("APIGEN_")}
    environment["PYTHONPATH"] = str(PROJECT / "src")
    environment["APIGEN_DUMPABLE"] = "1"  # apigen stays dumpable: its /proc/PID/fd is readable by the test without root's rights
    with open(tmp_path / "cli.out", "wb") as out, open(tmp_path / "cli.err", "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "apigen_cli", *args], stdout=out, stderr=err, env=environment)


def wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    """Until ``path`` exists (the server reached its hold), or fail if the process ends first."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "apigen ended before the server reached its hold"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def largest_open_file(pid: int) -> int:
    """The size of the largest regular file (deleted ones included) ``pid`` holds open."""
    sizes = [0]
    for descriptor in os.listdir(f"/proc/{pid}/fd"):
        try:
            found = os.stat(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue
        if (found.st_mode & 0o170000) == 0o100000:
            sizes.append(found.st_size)
    return max(sizes)


def test_a_stdio_server_flooding_its_stderr_leaves_a_bounded_tail(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    source, output, rejects = tmp_path / "rows.jsonl", tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    write_jsonl(source, [mcp_row("flood", "flood", {"megabytes": 50, "hold": str(hold)})])
    process = start_cli(
        "exec-check", str(source), "--mcp", f"tests={STDIO}", "-o", str(output), "--rejects", str(rejects), tmp_path=tmp_path
    )
    try:
        wait_for(hold, process)  # the server has written 50 MB on its stderr, and waits
        assert largest_open_file(process.pid) < 1 << 20  # neither kept in a file ...
        (tmp_path / "hold.release").touch()
        assert process.wait(timeout=60) == 0, (tmp_path / "cli.err").read_text()
    finally:
        process.kill()
    [rejected] = read_jsonl(rejects)
    assert rejected["reason"] == "mcp_server_exited"
    assert rejected["reason_detail"].endswith(
        "its stderr ends (apigen keeps only the last 64 KB of 52,428,828 bytes): the server is about to exit"
    )


def test_a_grandchild_in_its_own_session_does_not_outlive_from_mcp(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    ran = run_cli("library", "from-mcp", "-o", str(tmp_path / "lib.jsonl"), "--", *HOSTILE, "--escape-at-start", str(pid_file))
    assert ran.exit_code == 0, ran.stderr
    assert gone_soon(int(pid_file.read_text()))


def test_a_grandchild_a_call_started_in_its_own_session_does_not_outlive_exec_check(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    source, output = tmp_path / "rows.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [mcp_row("escape", "escape", {"pid_file": str(pid_file)})])
    ran = run_cli("exec-check", str(source), "--mcp", f"tests={STDIO}", "-o", str(output))
    assert ran.exit_code == 0, ran.stderr
    assert [row["id"] for row in read_jsonl(output)] == ["escape"]
    assert gone_soon(int(pid_file.read_text()))
