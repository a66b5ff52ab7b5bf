"""Settings precedence and sources, and `apigen config show` through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apigen_cli.config import LLMSettings, parse_options, resolve
from apigen_cli.errors import ConfigError

from .conftest import invoke, parse_stdout


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def user_file(text: str) -> Path:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "apigen" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_set(project: Path) -> None:
    resolved = resolve()
    assert set(resolved.sources.values()) == {"default"}
    assert resolved.llm_settings() == LLMSettings()


def test_each_layer_overrides_the_one_below(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user_file('model = "from-user"\nconcurrency = 2\ntimeout = 30\nbase_url = "http://user/v1"\nseed = 1\n')
    (project / "apigen.toml").write_text('model = ["from-project", "second"]\nconcurrency = 8\ntimeout = 60\n')
    monkeypatch.setenv("APIGEN_CONCURRENCY", "32")
    monkeypatch.setenv("APIGEN_TIMEOUT", "90")
    resolved = resolve({"timeout": 5.0})
    settings = resolved.llm_settings()
    assert settings.seed == 1 and resolved.sources["seed"].startswith("user config ")
    assert settings.base_url == "http://user/v1"
    assert settings.models == ("from-project", "second") and resolved.sources["model"] == "project config apigen.toml"
    assert settings.concurrency == 32 and resolved.sources["concurrency"] == "env APIGEN_CONCURRENCY"
    assert settings.timeout == 5.0 and resolved.sources["timeout"] == "flag --timeout"


def test_tool_apigen_in_pyproject_is_read_when_there_is_no_apigen_toml(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.apigen]\njson_mode = "object"\n[tool.apigen.options]\nstop = ["END"]\n'
    )
    resolved = resolve()
    assert resolved.values["json_mode"] == "object" and resolved.sources["json_mode"] == "project config pyproject.toml"
    assert resolved.values["options"] == {"stop": ["END"]}
    (project / "apigen.toml").write_text('json_mode = "off"\n')
    assert resolve().values["json_mode"] == "off"  # apigen.toml wins over pyproject.toml


def test_options_merge_across_layers_key_by_key(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "apigen.toml").write_text('[options]\nstop = ["END"]\nfrequency_penalty = 0.1\n')
    monkeypatch.setenv("APIGEN_OPTIONS", "presence_penalty=0.3")
    resolved = resolve({"options": ["frequency_penalty=0.5", "reasoning_effort=low"]})
    assert resolved.values["options"] == {
        "stop": ["END"],
        "frequency_penalty": 0.5,
        "presence_penalty": 0.3,
        "reasoning_effort": "low",
    }
    assert resolved.option_sources == {
        "stop": "project config apigen.toml",
        "frequency_penalty": "flag --option",
        "presence_penalty": "env APIGEN_OPTIONS",
        "reasoning_effort": "flag --option",
    }


def test_model_lists_from_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIGEN_MODEL", "gpt-4o-mini, offline")
    assert resolve().llm_settings().models == ("gpt-4o-mini", "offline")


def test_option_values_are_read_as_json_when_they_parse() -> None:
    assert parse_options(['stop=["\\n"]', "frequency_penalty=0.5", "logprobs=true", "user=alice", "note=a=b"]) == {
        "stop": ["\n"],
        "frequency_penalty": 0.5,
        "logprobs": True,
        "user": "alice",
        "note": "a=b",
    }


@pytest.mark.parametrize(
    ("pairs", "message", "hint"),
    [
        (["oops"], '`-O` "oops" should be KEY=VALUE', "for example"),
        (["model=x"], "`-O`: apigen sets `model` itself", "use `--model`"),
        (["messages=[]"], "`-O`: apigen sets `messages` itself", None),
        (["temperature=0.2"], "`-O`: `temperature` has a setting of its own", "use `--temperature`"),
        (["=3"], '`-O` "=3" should be KEY=VALUE', "for example"),
    ],
)
def test_bad_options_are_config_errors(pairs: list[str], message: str, hint: str | None) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_options(pairs)
    assert raised.value.message == message
    assert (raised.value.hint or "").startswith(hint or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("concurrency = 0\n", "`concurrency` in `apigen.toml` should be at least 1, got 0"),
        ('concurrency = "8"\n', '`concurrency` in `apigen.toml` should be a number, got the string "8"'),
        ("temperature = true\n", "`temperature` in `apigen.toml` should be a number, got true"),
        ('json_mode = "strict"\n', '`json_mode` in `apigen.toml` is "strict", not one of: schema, object, off'),
        ("model = 3\n", "`model` in `apigen.toml` should be a name or a list of names, got 3"),
        ("timeout = 0\n", "`timeout` in `apigen.toml` should be greater than 0, got 0"),
        ('modle = "x"\n', "`modle` in `apigen.toml` is not a setting apigen knows"),
        ('api_key = "sk-1"\n', "`api_key` in `apigen.toml` is not a setting apigen knows"),
    ],
)
def test_bad_file_values_name_the_key_and_the_file(project: Path, text: str, message: str) -> None:
    (project / "apigen.toml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        resolve()
    assert raised.value.message == message
    if "api_key" in text:
        assert raised.value.hint is not None and "APIGEN_API_KEY" in raised.value.hint


def test_invalid_toml_names_the_file(project: Path) -> None:
    (project / "apigen.toml").write_text("model = [\n")
    with pytest.raises(ConfigError, match="`apigen.toml` is not valid TOML"):
        resolve()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("APIGEN_MAX_ATTEMPTS", "many", '`APIGEN_MAX_ATTEMPTS` should be a whole number, got "many"'),
        ("APIGEN_TIMEOUT", "-1", "`APIGEN_TIMEOUT` should be greater than 0, got -1"),
        ("APIGEN_JSON_MODE", "yes", '`APIGEN_JSON_MODE` is "yes", not one of: schema, object, off'),
        ("APIGEN_OPTIONS", "{not json", "`APIGEN_OPTIONS` is not a valid JSON object"),
    ],
)
def test_bad_environment_values_name_the_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        resolve()
    assert raised.value.message.startswith(message)


# --- apigen config show ---------------------------------------------------------------


def test_config_show_prints_each_value_and_its_source(runner: CliRunner, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "apigen.toml").write_text('model = "offline"\nconcurrency = 8\n[options]\nstop = ["END"]\n')
    monkeypatch.setenv("APIGEN_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("APIGEN_CONCURRENCY", "12")
    result = invoke(runner, "config", "show", "--json", "--concurrency", "64", "-O", "frequency_penalty=0.5")
    assert result.exit_code == 0, result.stderr
    entries = {entry["name"]: entry for entry in parse_stdout(result.stdout)}
    assert entries["base_url"] == {"name": "base_url", "value": "http://127.0.0.1:8000/v1", "source": "env APIGEN_BASE_URL"}
    assert entries["model"] == {"name": "model", "value": ["offline"], "source": "project config apigen.toml"}
    assert entries["concurrency"] == {"name": "concurrency", "value": 64, "source": "flag --concurrency"}
    assert entries["options.stop"]["source"] == "project config apigen.toml"
    assert entries["options.frequency_penalty"] == {"name": "options.frequency_penalty", "value": 0.5, "source": "flag --option"}
    assert entries["json_mode"] == {"name": "json_mode", "value": "schema", "source": "default"}
    assert entries["api_key"] == {"name": "api_key", "value": "(not set)", "source": "env APIGEN_API_KEY / OPENAI_API_KEY"}
    assert result.stderr == ""


def test_config_show_plain_text_lines_up(runner: CliRunner, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIGEN_MODEL", "gpt-4o-mini")
    result = invoke(runner, "config", "show", "-m", "offline", "-m", "local")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["base_url", "-", "default"]
    assert lines[1].split() == ["model", "offline,", "local", "flag", "--model"]
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # values start in one column


def test_config_show_never_prints_a_key(runner: CliRunner, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-very-secret-0042"
    monkeypatch.setenv("MY_PROVIDER_KEY", secret)
    monkeypatch.setenv("APIGEN_API_KEY", "sk-another-secret")
    for arguments in (["config", "show"], ["config", "show", "--json", "--api-key-env", "MY_PROVIDER_KEY"]):
        result = invoke(runner, *arguments)
        assert result.exit_code == 0
        assert secret not in result.stdout + result.stderr and "sk-another-secret" not in result.stdout + result.stderr
    entries = {entry["name"]: entry for entry in parse_stdout(result.stdout)}
    assert entries["api_key"] == {"name": "api_key", "value": "(set, redacted)", "source": "env MY_PROVIDER_KEY"}


def test_config_show_reports_a_bad_setting_as_an_error(runner: CliRunner, project: Path) -> None:
    (project / "apigen.toml").write_text('json_mode = "strict"\n')
    result = invoke(runner, "config", "show")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == """error: `json_mode` in `apigen.toml` is "strict", not one of: schema, object, off\n"""
    (project / "apigen.toml").unlink()
    result = invoke(runner, "config", "show", "-O", "model=x")
    assert result.exit_code == 2
    assert result.stderr == "error: `-O`: apigen sets `model` itself\n\nhint: use `--model`\n"


def test_config_show_values_are_json_per_line(runner: CliRunner, project: Path) -> None:
    result = invoke(runner, "config", "show", "--json")
    names = [json.loads(line)["name"] for line in result.stdout.splitlines()]
    assert names[:4] == ["base_url", "model", "api_key_env", "api_key"]
    assert "cache" in names and "log_llm" in names


def test_a_misspelt_variable_is_named_not_ignored(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIGEN_MODLE", "offline")
    monkeypatch.setenv("APIGEN_DEBUG", "0")  # read, though not a setting: no warning
    result = invoke(runner, "config", "show", "--json")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: `APIGEN_MODLE` is set but is not a variable apigen reads (`APIGEN_MODEL`?); "
        "`apigen config show` lists the settings\n"
    )


def test_error_patterns_come_from_every_layer_and_a_bad_one_is_named(
    runner: CliRunner, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "apigen.toml").write_text("error_shaped = false\nerror_patterns = ['^Oops']\n")
    show = invoke(runner, "config", "show", "--json")
    entries = {entry["name"]: entry for entry in parse_stdout(show.stdout)}
    assert entries["error_shaped"] == {"name": "error_shaped", "value": False, "source": "project config apigen.toml"}
    assert entries["error_patterns"] == {"name": "error_patterns", "value": ["^Oops"], "source": "project config apigen.toml"}
    # A pattern may hold commas and spaces: the variable holds one per line.
    monkeypatch.setenv("APIGEN_ERROR_PATTERNS", "^query failed, code \\d+\n(?i)^denied")
    assert resolve().values["error_patterns"] == ["^query failed, code \\d+", "(?i)^denied"]
    show = invoke(runner, "config", "show", "--json", "--error-pattern", "^x y", "--error-shaped")
    entries = {entry["name"]: entry for entry in parse_stdout(show.stdout)}
    assert entries["error_patterns"] == {"name": "error_patterns", "value": ["^x y"], "source": "flag --error-pattern"}
    assert entries["error_shaped"]["value"] is True

    bad = invoke(runner, "exec-check", "--error-pattern", "(unclosed", input="")
    assert bad.exit_code == 2
    assert bad.stderr.startswith(
        "error: `--error-pattern`: `(unclosed` is not a valid regular expression: missing ), unterminated subpattern at position 0\n\n"
        "hint: write a Python regular expression"
    )
    monkeypatch.setenv("APIGEN_ERROR_PATTERNS", "[a-")
    with pytest.raises(ConfigError, match="^`APIGEN_ERROR_PATTERNS`: `\\[a-` is not a valid regular expression"):
        resolve()
