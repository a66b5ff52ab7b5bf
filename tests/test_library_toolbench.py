"""from-toolbench: ToolBench tool files written by the tests, called through a local mock of RapidAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from .conftest import invoke, parse_stdout
from .json_http import JsonHandler, base_url, serving

WEATHER = {
    "tool_name": "Weather Now",
    "tool_description": "Current weather by city.",
    "host": "weather-now.p.rapidapi.com",
    "api_list": [
        {
            "name": "Current weather",
            "url": "https://weather-now.p.rapidapi.com/current/{city}",
            "description": "Weather in a city now.",
            "method": "GET",
            "required_parameters": [{"name": "city", "type": "STRING", "description": "City name", "default": "Paris"}],
            "optional_parameters": [
                {"name": "units", "type": "ENUM", "description": "metric or imperial", "default": "metric"},
                {"name": "days", "type": "NUMBER", "description": "Forecast days", "default": "3"},
            ],
        },
        {
            "name": "Upload photo",
            "url": "https://weather-now.p.rapidapi.com/photo",
            "method": "POST",
            "required_parameters": [{"name": "photo", "type": "FILE", "description": "A picture"}],
            "optional_parameters": [],
        },
    ],
}


class RapidServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RapidHandler)

    @property
    def base(self) -> str:
        return base_url(self)


class RapidHandler(JsonHandler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        ok = self.headers.get("X-RapidAPI-Key") == "rk-1" and self.headers.get("X-RapidAPI-Host") == "weather-now.p.rapidapi.com"
        body = {"path": parts.path, "query": parse_qs(parts.query)} if ok else {"message": "You are not subscribed"}
        self.send_json(200 if ok else 403, body)


@pytest.fixture(scope="module")
def server() -> Iterator[RapidServer]:
    with serving(RapidServer()) as running:
        yield running


@pytest.fixture
def tools_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tools" / "Weather"
    folder.mkdir(parents=True)
    (folder / "weather_now.json").write_text(json.dumps(WEATHER))
    return tmp_path / "tools"


def test_a_tools_folder_becomes_tools_with_rapidapi_headers(runner: CliRunner, tools_dir: Path) -> None:
    result = invoke(runner, "library", "from-toolbench", str(tools_dir), "--key-env", "RAPIDAPI_KEY")
    assert result.exit_code == 0, result.stderr
    [tool] = parse_stdout(result.stdout)
    assert tool["name"] == "current_weather_for_weather_now"
    assert tool["category"] == "Weather"
    assert tool["description"] == "Weather in a city now. (part of Weather Now: Current weather by city.)"
    assert tool["http"] == {
        "method": "GET",
        "url": "https://weather-now.p.rapidapi.com/current/{city}",
        "headers": {"X-RapidAPI-Host": "weather-now.p.rapidapi.com", "X-RapidAPI-Key": "${RAPIDAPI_KEY}"},
    }
    assert tool["parameters"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name", "examples": ["Paris"]},
            "units": {"type": "string", "description": "metric or imperial", "examples": ["metric"]},
            "days": {"type": "number", "description": "Forecast days", "examples": [3]},
        },
        "required": ["city"],
    }
    assert "api_list[1] (`Upload photo`) is skipped: its parameter `photo` is a file upload" in result.stderr
    assert result.stderr.rstrip().endswith("from-toolbench: 1 API written, 1 skipped")


def test_the_converted_tools_answer_through_check(
    runner: CliRunner, tools_dir: Path, server: RapidServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "apis.jsonl"
    made = invoke(
        runner,
        "library",
        "from-toolbench",
        str(tools_dir),
        "--key-env",
        "RAPIDAPI_KEY",
        "--base-url",
        server.base,
        "-o",
        str(library),
    )
    assert made.exit_code == 0, made.stderr
    monkeypatch.setenv("RAPIDAPI_KEY", "rk-1")
    checked = invoke(runner, "library", "check", str(library), "--pass-env", "RAPIDAPI_KEY", "--http-retries", "0")
    assert checked.exit_code == 0, checked.stderr
    assert '{"path": "/current/Paris", "query": {}}' in checked.stderr
    assert "check: 1 of 1 API answered" in checked.stderr
    monkeypatch.setenv("RAPIDAPI_KEY", "wrong")
    refused = invoke(runner, "library", "check", str(library), "--pass-env", "RAPIDAPI_KEY", "--http-retries", "0", "--strict")
    assert refused.exit_code == 1
    assert "wrong" not in refused.stderr


def test_a_file_that_is_not_a_tool_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"tool_name": "x"}')
    result = invoke(runner, "library", "from-toolbench", str(bad))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: `{bad}` is not a ToolBench tool file (no `api_list`)")
    assert "hint: " in result.stderr


def test_flags_that_cannot_work_are_errors_naming_the_flag(runner: CliRunner, tools_dir: Path) -> None:
    bad_env = invoke(runner, "library", "from-toolbench", str(tools_dir), "--key-env", "my-key")
    assert bad_env.exit_code == 2
    assert bad_env.stderr.startswith("error: `--key-env` is 'my-key', not the name of an environment variable")
    bad_url = invoke(runner, "library", "from-toolbench", str(tools_dir), "--base-url", "localhost:8080")
    assert bad_url.exit_code == 2
    assert bad_url.stderr.startswith("error: `--base-url` is 'localhost:8080', not an http(s) URL")
    assert bad_url.stdout == ""


def test_check_without_the_key_variable_says_which_to_set(runner: CliRunner, tools_dir: Path, tmp_path: Path) -> None:
    library = tmp_path / "apis.jsonl"
    invoke(runner, "library", "from-toolbench", str(tools_dir), "--key-env", "NO_SUCH_VARIABLE_SET", "-o", str(library))
    refused = invoke(runner, "library", "check", str(library))  # a binding fills only variables the user passes
    assert refused.exit_code == 0 and "--pass-env" in refused.stderr
    result = invoke(runner, "library", "check", str(library), "--pass-env", "NO_SUCH_VARIABLE_SET")
    assert result.exit_code == 2
    assert "uses `$NO_SUCH_VARIABLE_SET` in header `X-RapidAPI-Key`, which is not set in the environment" in result.stderr
    assert "hint: export NO_SUCH_VARIABLE_SET=..." in result.stderr


def test_a_dollar_in_a_tool_url_is_literal(runner: CliRunner, tmp_path: Path) -> None:
    api = {**WEATHER["api_list"][0], "url": "https://weather-now.p.rapidapi.com/$metric/{city}"}  # type: ignore[dict-item]
    (tmp_path / "dollar.json").write_text(json.dumps({**WEATHER, "api_list": [api]}))
    result = invoke(runner, "library", "from-toolbench", str(tmp_path / "dollar.json"))
    assert result.exit_code == 0, result.stderr
    [tool] = parse_stdout(result.stdout)
    assert tool["http"]["url"] == "https://weather-now.p.rapidapi.com/$$metric/{city}"
    based = invoke(runner, "library", "from-toolbench", str(tmp_path / "dollar.json"), "--base-url", "http://127.0.0.1:9")
    assert parse_stdout(based.stdout)[0]["http"]["url"] == "http://127.0.0.1:9/$$metric/{city}"
