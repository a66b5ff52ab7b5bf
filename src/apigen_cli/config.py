"""Settings: where each value comes from, and the LLM settings built from them.

Precedence, highest first: a command-line flag, an ``APIGEN_*`` environment
variable, the project file (``./apigen.toml``, else ``[tool.apigen]`` in
``./pyproject.toml``), the user file (``$XDG_CONFIG_HOME/apigen/config.toml``),
then the defaults. Every resolved value remembers its source, so ``apigen config
show`` can say why a setting has the value it has.

API keys are never settings: they are read from the environment only
(``APIGEN_API_KEY``, else ``OPENAI_API_KEY``, or the variable that ``api_key_env``
names) and nothing here stores or shows them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_KEY_VARIABLES = ("APIGEN_API_KEY", "OPENAI_API_KEY")
JSON_MODES = ("schema", "object", "off")

# Provider parameters that apigen sets itself, or that have a flag of their own.
_RESERVED_OPTIONS = {"model": "--model", "messages": None, "stream": None, "n": None}
_OPTIONS_WITH_FLAGS = {"temperature": "--temperature", "max_tokens": "--max-tokens", "top_p": "--top-p", "seed": "--seed"}
_OPTION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Setting:
    """One setting: its key in config files, its flag, its variable, its kind and default."""

    name: str
    kind: str  # "str", "int", "float", "list", "options", "choice"
    default: Any
    flag: str
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_minimum: bool = False

    @property
    def env(self) -> str:
        return "APIGEN_" + self.name.upper()


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("base_url", "str", None, "--base-url", "URL of an OpenAI-compatible API, e.g. http://localhost:8000/v1"),
        Setting("model", "list", (), "--model", "model name(s); `offline` is the built-in backend"),
        Setting("api_key_env", "str", None, "--api-key-env", "environment variable holding the API key"),
        Setting("temperature", "float", None, "--temperature", "sampling temperature (unset: the provider's default)", minimum=0),
        Setting("max_tokens", "int", None, "--max-tokens", "most tokens per reply", minimum=1),
        Setting("top_p", "float", None, "--top-p", "nucleus sampling mass", minimum=0),
        Setting("seed", "int", None, "--seed", "seed for providers that take one, and for the offline backend"),
        Setting("options", "options", {}, "--option", "other provider parameters (`-O KEY=VALUE`)"),
        Setting("concurrency", "int", 16, "--concurrency", "requests in flight at most", minimum=1),
        Setting("rpm", "int", None, "--rpm", "requests per minute at most", minimum=1),
        Setting("tpm", "int", None, "--tpm", "tokens per minute at most", minimum=1),
        Setting("max_attempts", "int", 6, "--max-attempts", "attempts per request, first one included", minimum=1),
        Setting(
            "max_retry_seconds", "float", 120.0, "--max-retry-seconds", "most seconds spent on one request's retries", minimum=0
        ),
        Setting(
            "timeout", "float", 120.0, "--timeout", "seconds to wait for a reply, per attempt", minimum=0, exclusive_minimum=True
        ),
        Setting(
            "max_reply_bytes",
            "int",
            4 * 1024 * 1024,
            "--max-reply-bytes",
            "largest reply accepted, in bytes once decoded",
            minimum=1,
        ),
        Setting("json_mode", "choice", "schema", "--json-mode", "structured output: schema, object or off", choices=JSON_MODES),
        Setting("cache", "str", None, "--cache", "folder of the response cache (off when unset)"),
        Setting("log_llm", "str", None, "--log-llm", "JSONL file that every exchange is appended to"),
    )
}


# --- the LLM settings -----------------------------------------------------------------


@dataclass(frozen=True)
class LLMSettings:
    """Everything the chat services need to know; holds no secret, so ``repr`` is safe to show.

    ``options`` are provider parameters sent as they are (keys starting with
    ``offline_`` go to the offline backend only). ``reorder_window`` bounds how many
    rows may wait for an earlier one (default: four times ``concurrency``).
    """

    base_url: str | None = None
    models: tuple[str, ...] = ()
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    concurrency: int = 16
    rpm: int | None = None
    tpm: int | None = None
    max_attempts: int = 6
    max_retry_seconds: float = 120.0
    timeout: float = 120.0
    max_reply_bytes: int = 4 * 1024 * 1024  # decoded; a hostile server's gzip bomb stops here
    json_mode: str = "schema"
    cache_dir: str | None = None
    log_path: str | None = None
    reorder_window: int | None = None

    @property
    def window(self) -> int:
        return self.reorder_window if self.reorder_window is not None else max(4 * self.concurrency, 16)

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key from the environment (see ``find_api_key``); never stored on the settings."""
        return find_api_key(self.api_key_env, environ)[0]


def find_api_key(api_key_env: str | None, environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``(key, variable)``: the named variable, else ``APIGEN_API_KEY``, else ``OPENAI_API_KEY``."""
    environ = os.environ if environ is None else environ
    names = (api_key_env,) if api_key_env else DEFAULT_KEY_VARIABLES
    for name in names:
        value = environ.get(name)
        if value:
            return value, name
    return None, None


# --- resolution -----------------------------------------------------------------------

DEFAULT_SOURCE = "default"


@dataclass
class Resolved:
    """The effective settings: ``values[name]`` and ``sources[name]``; per-key sources for options."""

    values: dict[str, Any]
    sources: dict[str, str]
    option_sources: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def llm_settings(self) -> LLMSettings:
        values = self.values
        return LLMSettings(
            base_url=values["base_url"],
            models=tuple(values["model"]),
            api_key_env=values["api_key_env"],
            temperature=values["temperature"],
            max_tokens=values["max_tokens"],
            top_p=values["top_p"],
            seed=values["seed"],
            options=dict(values["options"]),
            concurrency=values["concurrency"],
            rpm=values["rpm"],
            tpm=values["tpm"],
            max_attempts=values["max_attempts"],
            max_retry_seconds=values["max_retry_seconds"],
            timeout=values["timeout"],
            max_reply_bytes=values["max_reply_bytes"],
            json_mode=values["json_mode"],
            cache_dir=values["cache"],
            log_path=values["log_llm"],
        )


def user_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "apigen" / "config.toml"


def project_config(cwd: Path) -> tuple[Path, dict[str, Any]] | None:
    """The project's settings: ``./apigen.toml``, else ``[tool.apigen]`` of ``./pyproject.toml``."""
    own = cwd / "apigen.toml"
    if own.is_file():
        return own, _read_toml(own)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool")
        section = tool.get("apigen") if isinstance(tool, dict) else None
        if isinstance(section, dict):
            return pyproject, section
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"`{_show_path(path)}` is not valid TOML: {error}", hint="fix the file, or move it away") from None
    except OSError as error:
        raise ConfigError(f"`{_show_path(path)}` cannot be read: {error.strerror or error}") from None


def resolve(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> Resolved:
    """Resolve every setting. ``flags`` maps setting names to values given on the command line.

    Flag values are those Typer parsed (``model`` a list, ``options`` a list of
    ``KEY=VALUE`` strings); ``None`` or an empty list means "not given".
    """
    environ = os.environ if environ is None else environ
    folder = Path(cwd) if cwd is not None else Path.cwd()
    values = {name: _copy_default(setting.default) for name, setting in SETTINGS.items()}
    sources = dict.fromkeys(SETTINGS, DEFAULT_SOURCE)
    option_sources: dict[str, str] = {}
    files: list[Path] = []

    def apply(name: str, value: Any, source: str) -> None:
        if name == "options":
            values["options"] = {**values["options"], **value}
            option_sources.update(dict.fromkeys(value, source))
        else:
            values[name] = value
        sources[name] = source

    layers: list[tuple[Path, dict[str, Any], str]] = []
    user_file = user_config_path(environ)
    if user_file.is_file():
        layers.append((user_file, _read_toml(user_file), "user config"))
    found = project_config(folder)
    if found is not None:
        layers.append((found[0], found[1], "project config"))
    for path, table, label in layers:
        files.append(path)
        for key, raw in table.items():
            setting = SETTINGS.get(key)
            origin = f"`{key}` in `{_show_path(path)}`"
            if setting is None:
                raise ConfigError(f"{origin} is not a setting apigen knows", hint=_known_settings_hint(key))
            apply(key, _from_toml(setting, raw, origin), f"{label} {_show_path(path)}")

    for name, setting in SETTINGS.items():
        text = environ.get(setting.env)
        if text is not None and text.strip() != "":
            apply(name, _from_text(setting, text, f"`{setting.env}`"), f"env {setting.env}")

    for name, value in (flags or {}).items():
        setting = SETTINGS[name]
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        apply(name, _from_flag(setting, value), f"flag {setting.flag}")
    return Resolved(values, sources, option_sources, files)


def _copy_default(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _show_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _known_settings_hint(key: str) -> str:
    if key in ("api_key", "key", "openai_api_key"):
        return "keys come from the environment only: set APIGEN_API_KEY (or name another variable with `api_key_env`)"
    return "known settings: " + ", ".join(SETTINGS)


# --- reading one value ----------------------------------------------------------------


def _from_toml(setting: Setting, raw: Any, origin: str) -> Any:
    kind = setting.kind
    if kind == "list":
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(item, str) and item.strip() for item in raw):
            raise ConfigError(f"{origin} should be a name or a list of names, got {_show(raw)}")
        return [item.strip() for item in raw]
    if kind == "options":
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin} should be a table of provider parameters, got {_show(raw)}")
        return _checked_options(raw, origin)
    if kind in ("int", "float") and isinstance(raw, str):
        raise ConfigError(f"{origin} should be a number, got the string {_show(raw)}", hint="write it without quotes")
    return _checked(setting, raw, origin)


def _from_text(setting: Setting, text: str, origin: str) -> Any:
    """A value from an environment variable."""
    kind = setting.kind
    text = text.strip()
    if kind == "list":
        return [item for item in re.split(r"[,\s]+", text) if item]
    if kind == "options":
        if text.startswith("{"):
            try:
                table = json.loads(text)
            except ValueError as error:
                raise ConfigError(f"{origin} is not a valid JSON object: {error}") from None
            if not isinstance(table, dict):
                raise ConfigError(f"{origin} should be a JSON object or KEY=VALUE pairs")
            return _checked_options(table, origin)
        return parse_options(text.split(), origin)
    if kind == "int":
        try:
            return _checked(setting, int(text), origin)
        except ValueError:
            raise ConfigError(f"{origin} should be a whole number, got {_show(text)}") from None
    if kind == "float":
        try:
            return _checked(setting, float(text), origin)
        except ValueError:
            raise ConfigError(f"{origin} should be a number, got {_show(text)}") from None
    return _checked(setting, text, origin)


def _from_flag(setting: Setting, value: Any) -> Any:
    origin = f"`{setting.flag}`"
    if setting.kind == "options":
        return parse_options(list(value), "`-O`")
    if setting.kind == "list":
        return [item.strip() for item in value if item.strip()]
    return _checked(setting, value, origin)


def _checked(setting: Setting, value: Any, origin: str) -> Any:
    kind = setting.kind
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{origin} should be a whole number, got {_show(value)}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{origin} should be a number, got {_show(value)}")
        value = float(value)
    elif kind in ("str", "choice"):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{origin} should be a non-empty string, got {_show(value)}")
        value = value.strip()
        if kind == "choice" and value not in setting.choices:
            raise ConfigError(f"{origin} is {_show(value)}, not one of: {', '.join(setting.choices)}")
    if setting.minimum is not None and isinstance(value, (int, float)):
        too_small = value <= setting.minimum if setting.exclusive_minimum else value < setting.minimum
        if too_small:
            bound = "greater than" if setting.exclusive_minimum else "at least"
            raise ConfigError(f"{origin} should be {bound} {setting.minimum:g}, got {value:g}")
    return value


def parse_options(pairs: Sequence[str], origin: str = "`-O`") -> dict[str, Any]:
    """``KEY=VALUE`` strings into provider parameters; VALUE is read as JSON when it parses."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"{origin} {_show(pair)} should be KEY=VALUE",
                hint="for example `-O frequency_penalty=0.5` or `-O stop='[\"\\n\"]'`",
            )
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return _checked_options(options, origin)


def _checked_options(options: Mapping[str, Any], origin: str) -> dict[str, Any]:
    for key in options:
        if not isinstance(key, str) or not _OPTION_KEY.match(key):
            raise ConfigError(f"{origin}: {_show(key)} is not a usable parameter name")
        if key in _RESERVED_OPTIONS:
            flag = _RESERVED_OPTIONS[key]
            raise ConfigError(f"{origin}: apigen sets `{key}` itself", hint=f"use `{flag}`" if flag else None)
        if key in _OPTIONS_WITH_FLAGS:
            raise ConfigError(
                f"{origin}: `{key}` has a setting of its own",
                hint=f"use `{_OPTIONS_WITH_FLAGS[key]}` (or `{key}` in apigen.toml)",
            )
    return dict(options)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


# --- showing --------------------------------------------------------------------------


def describe(resolved: Resolved, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One entry per setting for ``apigen config show``: ``name``, ``value``, ``source``; secrets redacted."""
    entries: list[dict[str, Any]] = []
    for name in SETTINGS:
        value = resolved.values[name]
        if name == "options":
            for key, option in sorted(value.items()):
                entries.append(
                    {"name": f"options.{key}", "value": option, "source": resolved.option_sources.get(key, DEFAULT_SOURCE)}
                )
            if not value:
                entries.append({"name": "options", "value": {}, "source": resolved.sources[name]})
            continue
        entries.append(
            {"name": name, "value": list(value) if isinstance(value, tuple) else value, "source": resolved.sources[name]}
        )
        if name == "api_key_env":
            key, variable = find_api_key(value, environ)
            entries.append(
                {
                    "name": "api_key",
                    "value": "(set, redacted)" if key else "(not set)",
                    "source": f"env {variable}" if variable else "env " + (value or " / ".join(DEFAULT_KEY_VARIABLES)),
                }
            )
    return entries
