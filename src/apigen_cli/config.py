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

import functools
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
_OPTIONS_WITH_FLAGS = {
    "temperature": "--temperature",
    "max_tokens": "--max-tokens` or `--judge-max-tokens",
    "top_p": "--top-p",
    "seed": "--seed",
}
_OPTION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


QUERY_STYLES = ("simple", "multiple", "parallel", "parallel_multiple")  # the paper's four
GROUPS = ("llm", "generation", "execution", "judge", "batch")


@dataclass(frozen=True)
class Setting:
    """One setting, declared once: everything else (flags, env, files, ``config show``) derives from it.

    ``group`` says which commands take it (``llm``: generate, semantic-check, run;
    ``generation``: generate, run; ``execution``: exec-check, run; ``judge``:
    semantic-check, run). ``decides_rows`` is the resume contract: a rerun that
    changes such a setting writes other rows, so it cannot resume the earlier run.
    """

    name: str
    kind: str  # "str", "int", "float", "bool", "list", "patterns", "options", "choice", "range", "styles", "shard"
    default: Any
    flag: str
    help: str
    group: str = "llm"
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_minimum: bool = False
    decides_rows: bool = True

    @property
    def env(self) -> str:
        return "APIGEN_" + self.name.upper()


# Declarations by group (a setting's group says which commands take it).
_llm = functools.partial(Setting, group="llm")
_gen = functools.partial(Setting, group="generation")
_exec = functools.partial(Setting, group="execution")
_judge = functools.partial(Setting, group="judge")


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        # --- the LLM endpoint and its requests
        _llm("base_url", "str", None, "--base-url", "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.", metavar="URL"),
        _llm(
            "model",
            "list",
            (),
            "--model",
            "Model to ask; repeat for several. `offline` is the built-in backend (demos, tests).",
            aliases=("-m",),
            metavar="NAME",
        ),
        _llm(
            "api_key_env",
            "str",
            None,
            "--api-key-env",
            "Environment variable holding the API key (default: APIGEN_API_KEY, else OPENAI_API_KEY).",
            metavar="VAR",
        ),
        _llm(
            "temperature",
            "float",
            None,
            "--temperature",
            "Sampling temperature (unset: the provider's default).",
            minimum=0,
            metavar="T",
        ),
        _llm("top_p", "float", None, "--top-p", "Nucleus sampling mass.", minimum=0, metavar="P"),
        _llm(
            "seed",
            "int",
            None,
            "--seed",
            "Seed of the run's sampling, sent to providers that take one; makes `offline` repeatable.",
            metavar="N",
        ),
        _llm(
            "options",
            "options",
            {},
            "--option",
            "Any other provider parameter, VALUE read as JSON when it parses (`-O frequency_penalty=0.5`). Repeatable.",
            aliases=("-O",),
            metavar="KEY=VALUE",
        ),
        _llm(
            "concurrency", "int", 16, "--concurrency", "Requests in flight at most.", minimum=1, metavar="N", decides_rows=False
        ),
        _llm("rpm", "int", None, "--rpm", "Requests per minute at most.", minimum=1, metavar="N", decides_rows=False),
        _llm("tpm", "int", None, "--tpm", "Tokens per minute at most.", minimum=1, metavar="N", decides_rows=False),
        _llm("max_attempts", "int", 6, "--max-attempts", "Attempts per request, the first included.", minimum=1, metavar="N"),
        _llm(
            "max_retry_seconds",
            "float",
            120.0,
            "--max-retry-seconds",
            "Most seconds spent retrying one request.",
            minimum=0,
            metavar="SECONDS",
        ),
        _llm(
            "timeout",
            "float",
            120.0,
            "--timeout",
            "Seconds to wait for an LLM reply, per attempt.",
            minimum=0,
            exclusive_minimum=True,
            metavar="SECONDS",
        ),
        _llm(
            "stop_after_failures",
            "int",
            10,
            "--stop-after-failures",
            "Stop (exit 2) when N requests in a row failed after their retries; 0 never stops.",
            minimum=0,
            metavar="N",
            decides_rows=False,
        ),
        _llm(
            "max_reply_bytes",
            "int",
            4 * 1024 * 1024,
            "--max-reply-bytes",
            "Largest reply accepted, decoded; a larger one fails its row (`reply_too_large`).",
            minimum=1,
            metavar="BYTES",
        ),
        _llm(
            "json_mode",
            "choice",
            "schema",
            "--json-mode",
            "Structured output: a JSON Schema, any JSON object, or nothing.",
            choices=JSON_MODES,
            metavar="schema|object|off",
        ),
        _llm(
            "cache",
            "str",
            None,
            "--cache",
            "Keep successful replies in DIR (SQLite) and reuse them: a rerun sends no request twice.",
            metavar="DIR",
            decides_rows=False,
        ),
        _llm(
            "log_llm",
            "str",
            None,
            "--log-llm",
            "Append every exchange (row key, model, messages, reply, latency, tokens, attempts) to FILE as JSONL.",
            metavar="FILE",
            decides_rows=False,
        ),
        # --- what generate asks for
        _gen(
            "count",
            "int",
            100,
            "--count",
            "Rows wanted (requests = count / pairs per prompt, rounded up).",
            aliases=("-n",),
            minimum=1,
            metavar="N",
        ),
        _gen(
            "pairs_per_prompt",
            "int",
            3,
            "--pairs-per-prompt",
            "Query/answer pairs the model writes per request.",
            minimum=1,
            metavar="K",
        ),
        _gen(
            "max_tokens",
            "int",
            None,
            "--max-tokens",
            "Most tokens per generator reply (unset: 1024 + 512 per pair asked, at most 8192); 0 sends no limit.",
            minimum=0,
            metavar="N",
        ),
        _gen(
            "styles",
            "styles",
            "simple=0.4,multiple=0.2,parallel=0.2,parallel_multiple=0.2",
            "--styles",
            "Query styles and their weights.",
            metavar="STYLE=WEIGHT,...",
        ),
        _gen(
            "apis_per_prompt",
            "range",
            "2-4",
            "--apis-per-prompt",
            "APIs of one category offered in a multiple or parallel-multiple request.",
            minimum=1,
            metavar="MIN-MAX",
        ),
        _gen("examples", "str", None, "--examples", "Seed rows (xlam or apigen rows) for the few-shot examples.", metavar="FILE"),
        _gen(
            "examples_per_prompt",
            "range",
            "1-3",
            "--examples-per-prompt",
            "Few-shot examples per request, same style and category first.",
            minimum=0,
            metavar="MIN-MAX",
        ),
        _gen(
            "prompts",
            "str",
            None,
            "--prompts",
            "A folder of prompt templates replacing the built-in ones (see prompts/README.md).",
            metavar="DIR",
        ),
        _gen(
            "grow_examples",
            "bool",
            False,
            "--grow-examples",
            "Verified rows join the example pool later requests draw from (paper 3.1).",
        ),
        _gen(
            "example_pool",
            "int",
            1000,
            "--example-pool",
            "--grow-examples: rows the pool keeps (a reservoir).",
            minimum=1,
            metavar="N",
        ),
        _gen(
            "grow_lag",
            "int",
            64,
            "--grow-lag",
            "--grow-examples: a request sees rows of requests N or more before it.",
            minimum=1,
            metavar="N",
        ),
        # --- which part of the run's requests this process makes (issue 15)
        _gen(
            "shard",
            "shard",
            None,
            "--shard",
            "Make only shard K of N (K counted from 0, as Slurm array ids and JOB_COMPLETION_INDEX are): "
            "a contiguous block of the run's requests; `apigen merge` joins the shards. Needs `--seed`.",
            metavar="K/N",
            # Not in the fingerprint: all shards of a run share one, which `apigen merge` checks.
            # The shard is stored in the run state instead, and a resume of another shard is refused.
            decides_rows=False,
        ),
        # --- how calls are executed
        _exec(
            "functions",
            "str",
            None,
            "--functions",
            "Python functions of the tools: a .py file, a folder of .py files, or an importable module. "
            "May be omitted when every tool has an `http` binding.",
            metavar="PATH",
        ),
        _exec(
            "workers",
            "int",
            None,
            "--workers",
            "Worker processes for Python functions (unset: one per CPU).",
            minimum=1,
            metavar="N",
            decides_rows=False,
        ),
        _exec(
            "exec_timeout",
            "float",
            10.0,
            "--exec-timeout",
            "Time limit of one Python or MCP call; past it, the row fails.",
            minimum=0,
            exclusive_minimum=True,
            metavar="SECONDS",
        ),
        _exec(
            "memory_mb",
            "int",
            2048,
            "--memory-mb",
            "Address-space limit of each worker process; 0 for none.",
            minimum=0,
            metavar="MB",
        ),
        _exec(
            "max_result_chars",
            "int",
            4000,
            "--max-result-chars",
            "Cut each recorded result to about N characters.",
            minimum=1,
            metavar="N",
        ),
        _exec(
            "empty_result",
            "choice",
            "pass",
            "--empty-result",
            'Whether a result of null, [], {} or "" passes.',
            choices=("pass", "fail"),
            metavar="pass|fail",
        ),
        _exec(
            "error_result",
            "choice",
            "fail",
            "--error-result",
            'Whether a result that is an error payload ({"error": ...}, "Error: ...") passes.',
            choices=("pass", "fail"),
            metavar="pass|fail",
        ),
        _exec(
            "error_shaped",
            "bool",
            True,
            "--error-shaped",
            "A text result that reads as an error (`Database error: ...`, `Traceback ...`) is an error result, "
            "as the README's rule says; `--no-error-shaped` leaves text to `--error-pattern`.",
        ),
        _exec(
            "error_patterns",
            "patterns",
            (),
            "--error-pattern",
            "A text result whose first 4 KB this regular expression finds a match in is an error result too "
            "(Python `re.search`: anchor it with ^, `(?i)` ignores case). Repeatable; one per line in the variable.",
            metavar="REGEX",
        ),
        _exec(
            "pass_env",
            "list",
            (),
            "--pass-env",
            "Pass this environment variable (a glob such as `AWS_*` works) to the functions, MCP servers and `http` "
            "bindings, which otherwise get only PATH, HOME, LANG, LC_*, TZ, TMPDIR, PYTHONPATH and the like; its value "
            "(from 8 characters) is cut from every result. Repeatable.",
            metavar="NAME",
        ),
        _exec(
            "http_timeout",
            "float",
            10.0,
            "--http-timeout",
            "Time limit of one HTTP attempt.",
            minimum=0,
            exclusive_minimum=True,
            metavar="SECONDS",
        ),
        _exec(
            "http_concurrency",
            "int",
            8,
            "--http-concurrency",
            "HTTP calls in flight at once.",
            minimum=1,
            metavar="N",
            decides_rows=False,
        ),
        _exec(
            "http_retries",
            "int",
            2,
            "--http-retries",
            "Retries of an HTTP call on a transport error, 408, 429 or 5xx.",
            minimum=0,
            metavar="N",
        ),
        _exec(
            "http_max_reply_bytes",
            "int",
            4 * 1024 * 1024,
            "--http-max-reply-bytes",
            "Largest HTTP reply accepted (REST tools, MCP servers over HTTP), decoded; a larger one fails the row (`reply_too_large`).",
            minimum=1,
            metavar="BYTES",
        ),
        _exec(
            "http_redirects",
            "choice",
            "follow",
            "--http-redirects",
            "Follow redirects (to another origin without the headers that took environment values), "
            "only within the origin, or not at all.",
            choices=("follow", "same-origin", "none"),
            metavar="follow|same-origin|none",
        ),
        _exec(
            "mcp",
            "list",
            (),
            "--mcp",
            "Start this MCP server over stdio for the tools whose `mcp` binding names NAME "
            "(`--mcp units='python sample_data/mcp_server.py'`); a bare COMMAND is named after its script. Repeatable.",
            metavar="NAME=COMMAND",
        ),
        _exec(
            "mcp_url",
            "list",
            (),
            "--mcp-url",
            "Reach this MCP server over streamable HTTP for the tools bound to NAME. Repeatable.",
            metavar="NAME=URL",
        ),
        _exec(
            "mcp_concurrency",
            "int",
            8,
            "--mcp-concurrency",
            "MCP calls in flight at once, per server.",
            minimum=1,
            metavar="N",
            decides_rows=False,
        ),
        # --- how rows are judged
        _judge(
            "judge_model",
            "list",
            (),
            "--judge-model",
            "The judge; repeat for a committee that decides by majority. `offline` is the built-in rule judge.",
            aliases=("-J",),
            metavar="NAME",
        ),
        _judge("include_failed", "bool", False, "--include-failed", "Judge rows that failed execution too (they stay rejected)."),
        _judge(
            "judge_result_chars",
            "int",
            2000,
            "--judge-result-chars",
            "Cut each execution result shown to the judge to N characters.",
            minimum=1,
            metavar="N",
        ),
        _judge(
            "judge_max_tokens",
            "int",
            512,
            "--judge-max-tokens",
            "Most tokens per judge reply; 0 sends no limit.",
            minimum=0,
            metavar="N",
        ),
        _judge(
            "max_reasks",
            "int",
            2,
            "--max-reasks",
            "Times an unreadable verdict is asked again before the row is rejected.",
            minimum=0,
            metavar="N",
        ),
    )
}


_batch = functools.partial(Setting, group="batch", decides_rows=False)


# A batch changes how requests travel, never which rows come back: a run resumes with or without them.
SETTINGS.update(
    (setting.name, setting)
    for setting in (
        _batch(
            "batch",
            "bool",
            False,
            "--batch",
            "Send the LLM requests through the provider's batch API (needs `-o FILE`; a rerun picks the batches up).",
        ),
        _batch(
            "batch_dir",
            "str",
            None,
            "--batch-dir",
            "Self-hosted: write DIR/requests.jsonl for `vllm run-batch` and stop; rerun once DIR/results.jsonl is there.",
            metavar="DIR",
        ),
        _batch(
            "batch_max_requests",
            "int",
            50_000,
            "--batch-max-requests",
            "Most requests in one batch; more are split.",
            minimum=1,
            metavar="N",
        ),
        _batch(
            "batch_max_bytes",
            "int",
            200_000_000,
            "--batch-max-bytes",
            "Largest batch input file; larger ones are split.",
            minimum=1,
            metavar="BYTES",
        ),
        _batch(
            "batch_poll_seconds",
            "float",
            10.0,
            "--batch-poll-seconds",
            "First wait between status checks; it doubles up to 5 minutes.",
            minimum=0,
            metavar="S",
        ),
    )
)


def settings_of(*groups: str) -> list[Setting]:
    """The settings of these groups, in declaration order."""
    return [setting for setting in SETTINGS.values() if setting.group in groups]


# --- the LLM settings -----------------------------------------------------------------


@dataclass(frozen=True)
class LLMSettings:
    """Everything the chat services need to know; holds no secret, so ``repr`` is safe to show.

    ``options`` are provider parameters sent as they are (keys starting with
    ``offline_`` go to the offline backend only). ``max_tokens`` is no LLM setting
    but each stage's (``GenerationSettings``, ``JudgeSettings``): their replies differ in size. ``reorder_window`` bounds how many
    rows may wait for an earlier one (default: four times ``concurrency``).
    """

    base_url: str | None = None
    models: tuple[str, ...] = ()
    api_key_env: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    concurrency: int = 16
    rpm: int | None = None
    tpm: int | None = None
    max_attempts: int = 6
    max_retry_seconds: float = 120.0
    timeout: float = 120.0
    stop_after_failures: int = 10
    max_reply_bytes: int = 4 * 1024 * 1024  # decoded; a hostile server's gzip bomb stops here
    json_mode: str = "schema"
    cache_dir: str | None = None
    log_path: str | None = None
    reorder_window: int | None = None

    @property
    def window(self) -> int:
        return self.reorder_window if self.reorder_window is not None else max(4 * self.concurrency, 16)


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
            top_p=values["top_p"],
            seed=values["seed"],
            options=dict(values["options"]),
            concurrency=values["concurrency"],
            rpm=values["rpm"],
            tpm=values["tpm"],
            max_attempts=values["max_attempts"],
            max_retry_seconds=values["max_retry_seconds"],
            timeout=values["timeout"],
            stop_after_failures=values["stop_after_failures"],
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


#: APIGEN_* variables that are not settings but are read all the same.
OTHER_VARIABLES = frozenset({"APIGEN_API_KEY", "APIGEN_DEBUG", "APIGEN_DUMPABLE"})


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """The ``APIGEN_*`` variables that name no setting, each with the known name it is likeliest a slip for.

    A misspelt variable (``APIGEN_MODLE``) would otherwise be ignored without a word.
    """
    import difflib

    known = {setting.env for setting in SETTINGS.values()} | OTHER_VARIABLES
    found = []
    for name in sorted(os.environ if environ is None else environ):
        if name.startswith("APIGEN_") and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
            found.append((name, close[0] if close else None))
    return found


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
    values = {name: _default(setting) for name, setting in SETTINGS.items()}
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


def _default(setting: Setting) -> Any:
    value = setting.default
    if setting.kind in ("range", "styles") and isinstance(value, str):
        return _checked(setting, value, f"the default of `{setting.name}`")
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
    if kind == "patterns":
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
            raise ConfigError(f"{origin} should be a regular expression or a list of them, got {_show(raw)}")
        compile_patterns(raw, origin)
        return list(raw)
    if kind == "options":
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin} should be a table of provider parameters, got {_show(raw)}")
        return _checked_options(raw, origin)
    if kind in ("int", "float") and isinstance(raw, str):
        raise ConfigError(f"{origin} should be a number, got the string {_show(raw)}", hint="write it without quotes")
    if kind == "bool" and not isinstance(raw, bool):
        raise ConfigError(f"{origin} should be true or false, got {_show(raw)}")
    if kind == "styles" and isinstance(raw, dict):
        raw = ",".join(f"{name}={weight}" for name, weight in raw.items())
    if kind == "range" and isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if kind == "range" and isinstance(raw, list) and len(raw) == 2:
        raw = f"{raw[0]}-{raw[1]}"
    return _checked(setting, raw, origin)


def _from_text(setting: Setting, text: str, origin: str) -> Any:
    """A value from an environment variable."""
    kind = setting.kind
    text = text.strip()
    if kind == "list":
        return [item for item in re.split(r"[,\s]+", text) if item]
    if kind == "patterns":  # a pattern may hold commas and spaces: one per line
        patterns = [line for line in text.splitlines() if line.strip()]
        compile_patterns(patterns, origin)
        return patterns
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
    if kind == "bool":
        lowered = text.lower()
        if lowered not in _BOOL_WORDS:
            raise ConfigError(f"{origin} should be true or false (1/0, yes/no), got {_show(text)}")
        return _BOOL_WORDS[lowered]
    return _checked(setting, text, origin)


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _from_flag(setting: Setting, value: Any) -> Any:
    """A value typed on the command line: read exactly as the same text in ``APIGEN_*`` would be."""
    origin = f"`{setting.flag}`"
    if setting.kind == "options":
        return parse_options(list(value), "`-O`")
    if setting.kind == "patterns":
        if any(not item for item in value):
            raise ConfigError(f"{origin} is given an empty value", hint=f"give {origin} a value, or leave it out")
        compile_patterns(value, origin)
        return list(value)
    if setting.kind == "list":
        if any(not item.strip() for item in value):
            raise ConfigError(f"{origin} is given an empty value", hint=f"give {origin} a value, or leave it out")
        return [item.strip() for item in value]
    if isinstance(value, str):
        return _from_text(setting, value, origin)
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
    elif kind == "range":
        if not isinstance(value, (str, tuple)):
            raise ConfigError(f"{origin} should be a number or a range like 2-4, got {_show(value)}")
        return value if isinstance(value, tuple) else parse_range(value, origin, minimum=int(setting.minimum or 0))
    elif kind == "shard":
        if not isinstance(value, (str, tuple)):
            raise ConfigError(f"{origin} should be a shard like 0/4, got {_show(value)}")
        return value if isinstance(value, tuple) else parse_shard(value, origin)
    elif kind == "styles":
        if not isinstance(value, (str, tuple)):
            raise ConfigError(f"{origin} should be STYLE=WEIGHT pairs, got {_show(value)}")
        return value if isinstance(value, tuple) else tuple(parse_styles(value, origin).items())
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


def compile_patterns(texts: Sequence[str], origin: str = "`--error-pattern`") -> tuple[re.Pattern[str], ...]:
    """Regular expressions compiled; a bad one raises ``ConfigError`` naming it and where it was given."""
    compiled = []
    for text in texts:
        try:
            compiled.append(re.compile(text))
        except re.error as error:
            raise ConfigError(
                f"{origin}: `{text}` is not a valid regular expression: {error}",
                hint="write a Python regular expression, e.g. `--error-pattern '(?i)^query failed'`",
            ) from None
    return tuple(compiled)


def parse_styles(text: str, origin: str = "`--styles`") -> dict[str, float]:
    """``simple=0.4,multiple=0.2`` → weights; a style left out is not generated."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip().replace("-", "_")
        if name not in QUERY_STYLES:
            raise ConfigError(f"{origin} names the style `{name}`", hint=f"the styles are: {', '.join(QUERY_STYLES)}")
        try:
            weight = float(value) if value.strip() else 1.0
        except ValueError:
            raise ConfigError(
                f"{origin}: the weight of `{name}` is `{value}`, not a number", hint="write e.g. simple=0.4,parallel=0.6"
            ) from None
        if weight < 0:
            raise ConfigError(f"{origin}: the weight of `{name}` is negative")
        weights[name] = weight
    if not weights or sum(weights.values()) <= 0:
        raise ConfigError(
            f"{origin} gives no style a positive weight",
            hint="e.g. --styles simple=0.4,multiple=0.2,parallel=0.2,parallel_multiple=0.2",
        )
    return weights


def parse_shard(text: str, origin: str = "`--shard`") -> tuple[int, int]:
    """``2/4`` → (2, 4): shard K of N, K counted from 0 (so ``$SLURM_ARRAY_TASK_ID/$N`` works as it is)."""
    index_text, sep, count_text = text.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"{origin} takes K/N with 0 <= K < N (shards are counted from 0), not `{text.strip()}`",
            hint="for 4 shards give `--shard 0/4` ... `--shard 3/4`",
        )
    return index, count


def parse_range(text: str, origin: str, minimum: int = 0) -> tuple[int, int]:
    """``2-4`` or ``3`` → (low, high)."""
    low_text, _, high_text = text.strip().partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if high_text else low
    except ValueError:
        raise ConfigError(f"{origin} takes a number or a range like 2-4, not `{text}`") from None
    if low < minimum or high < low:
        raise ConfigError(f"{origin} {text}: the range must run upwards from at least {minimum}")
    return low, high


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


def show_setting_value(setting: Setting, value: Any) -> Any:
    """A resolved value as a person (and ``config show --json``) would write it."""
    if setting.kind == "range" and isinstance(value, tuple):
        low, high = value
        return str(low) if low == high else f"{low}-{high}"
    if setting.kind == "shard" and isinstance(value, tuple):
        return f"{value[0]}/{value[1]}"
    if setting.kind == "styles" and isinstance(value, tuple):
        return ",".join(f"{name}={weight:g}" for name, weight in value)
    return list(value) if isinstance(value, tuple) else value


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
        entries.append({"name": name, "value": show_setting_value(SETTINGS[name], value), "source": resolved.sources[name]})
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
