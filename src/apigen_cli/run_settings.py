"""The typed settings of a whole run, and the resume contract over them.

A Python caller fills in ``RunSettings`` directly; the CLI builds it from the
resolved settings (``config.resolve``) with ``run_settings_from``. Which settings
decide a run's rows is declared once, on each ``config.Setting``
(``decides_rows``): ``deciding_values`` reads those back from the typed settings,
and ``run_fingerprint`` digests them with the bytes of the input files, so a
rerun resumes only a run that would write the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .checkpoint import PLAN_VERSION_KEY, fingerprint
from .config import DEFAULT_KEY_VARIABLES, SETTINGS, LLMSettings
from .errors import ConfigError
from .execution.calls import ExecutorOptions, HttpOptions
from .rows.results import ErrorShapes
from .stages.exec_check import ExecPolicy
from .stages.sampling import PLAN_VERSION, GenerationSettings, GrowSettings
from .stages.semantic_check import JudgeSettings

if TYPE_CHECKING:
    from .execution.executor import Executor
    from .execution.mcp import McpOptions


@dataclass(frozen=True)
class ExecutionSettings:
    """How the execution check runs calls: the user's functions, worker and HTTP options, the verdict policy."""

    functions: str | None = None
    options: ExecutorOptions = field(default_factory=ExecutorOptions)
    http: HttpOptions = field(default_factory=HttpOptions)
    policy: ExecPolicy = field(default_factory=ExecPolicy)
    mcp: tuple[str, ...] = ()  # `--mcp NAME=COMMAND`: MCP servers the user allows apigen to start
    mcp_url: tuple[str, ...] = ()  # `--mcp-url NAME=URL`
    mcp_concurrency: int = 8

    def mcp_options(self) -> McpOptions:
        """The MCP servers allowed, parsed (``ConfigError`` for a bad one), and how calls to them go."""
        from .execution.mcp import McpOptions, parse_server, unique_servers

        servers = [parse_server(text, "--mcp") for text in self.mcp]
        servers += [parse_server(text, "--mcp-url") for text in self.mcp_url]
        return McpOptions(
            servers=unique_servers(servers),
            timeout=self.options.timeout,
            concurrency=self.mcp_concurrency,
            max_result_chars=self.options.max_result_chars,
            pass_env=self.options.pass_env,
            key_variables=self.options.key_variables,
            max_reply_bytes=self.http.max_reply_bytes,
        )

    def executor(self, on_output: Callable[[str], None] | None = None) -> Executor:
        """An executor for these settings (not started); ``on_output`` hears what functions print."""
        from .execution.executor import Executor  # here: the commands that never execute do not load the worker pool

        options = replace(self.options, on_output=on_output) if on_output is not None else self.options
        mcp = self.mcp_options() if self.mcp or self.mcp_url else None  # without servers, the MCP client is never loaded
        return Executor(self.functions, options, self.http, mcp)


@dataclass(frozen=True)
class RunSettings:
    """Everything an ``apigen run`` is made of.

    ``llm.models`` are the generators and ``judge.judges`` the judges (one client
    serves both). ``llm.seed`` seeds the sampling; left ``None``, a fresh seed is
    drawn, and a resumed run keeps the one it started with. ``generation.models``
    and ``generation.seed`` are filled in from ``llm``.
    """

    apis: str
    llm: LLMSettings
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    examples: str | None = None
    prompts: str | None = None
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    dedup: bool = False
    grow: GrowSettings | None = None  # --grow-examples: verified rows join the example pool
    only_executable: bool = False  # sample only the APIs something can execute (else such APIs are an error)

    def checked(self) -> RunSettings:
        """These settings, or a ``ConfigError`` for what cannot run (checked before any request)."""
        if not self.llm.models:
            raise ConfigError("no generator model is given", hint="pass `--model NAME` (or `--model offline`)")
        if self.grow is not None and self.generation.shard is not None:
            raise ConfigError(
                "`--grow-examples` cannot run in a shard: a request's pool holds rows of requests before it, made in other shards",
                hint="leave out `--shard`, or `--grow-examples`",
            )
        if not self.judge.judges:
            raise ConfigError(
                "no judge model is given",
                hint="pass `--judge-model NAME` (repeat it for a committee), or `--judge-model offline`",
            )
        check_shard(self.generation.shard, self.llm.seed)
        if self.generation.shard is not None and self.dedup:
            raise ConfigError(
                "`--dedup` cannot run in a shard: a shard sees only its own rows, so it would keep duplicates of other shards'",
                hint="leave out `--dedup`, and run `apigen dedup` over the merged dataset",
            )
        return self


def check_shard(shard: tuple[int, int] | None, seed: int | None) -> None:
    """A shard needs the seed given: with a fresh seed each, the shards would cut different plans."""
    if shard is not None and seed is None:
        raise ConfigError(
            f"`--shard {shard[0]}/{shard[1]}` needs `--seed`: every shard must cut the same plan",
            hint="pass the same `--seed N` to every shard",
        )


def judge_settings_from(values: Mapping[str, Any], llm: LLMSettings) -> JudgeSettings:
    """The judge settings from resolved values; the judges may still be empty (``RunSettings.checked`` says so)."""
    return JudgeSettings(
        judges=tuple(values["judge_model"]),
        include_failed=bool(values["include_failed"]),
        max_result_chars=values["judge_result_chars"],
        with_schema=llm.json_mode == "schema",
        max_reasks=values["max_reasks"],
        max_tokens=values["judge_max_tokens"],
    )


def generation_settings_from(values: Mapping[str, Any], llm: LLMSettings) -> GenerationSettings:
    """What ``generate`` is asked for; ``seed`` is 0 until the run chooses one."""
    return GenerationSettings(
        count=values["count"],
        pairs_per_prompt=values["pairs_per_prompt"],
        styles=tuple(values["styles"]),
        apis_per_prompt=tuple(values["apis_per_prompt"]),
        examples_per_prompt=tuple(values["examples_per_prompt"]),
        models=llm.models,
        seed=llm.seed if llm.seed is not None else 0,
        shard=values["shard"],
        max_tokens=values["max_tokens"],
    )


def grow_settings_from(values: Mapping[str, Any]) -> GrowSettings | None:
    """``--grow-examples`` and its pool, or ``None`` when the pool stays the seed examples."""
    if not values["grow_examples"]:
        return None
    return GrowSettings(size=values["example_pool"], lag=values["grow_lag"])


def key_variables(api_key_env: str | None) -> tuple[str, ...]:
    """Where apigen's keys may be: the variable ``--api-key-env`` names, and the default ones."""
    return tuple(dict.fromkeys((*((api_key_env,) if api_key_env else ()), *DEFAULT_KEY_VARIABLES)))


def execution_settings_from(values: Mapping[str, Any]) -> ExecutionSettings:
    return ExecutionSettings(
        functions=values["functions"],
        options=ExecutorOptions(
            workers=values["workers"],
            timeout=values["exec_timeout"],
            memory_mb=values["memory_mb"],
            max_result_chars=values["max_result_chars"],
            pass_env=tuple(values["pass_env"]),
            key_variables=key_variables(values["api_key_env"]),
        ),
        http=HttpOptions(
            timeout=values["http_timeout"],
            concurrency=values["http_concurrency"],
            retries=values["http_retries"],
            max_reply_bytes=values["http_max_reply_bytes"],
            redirects=values["http_redirects"],
        ),
        policy=ExecPolicy(
            fail_on_empty=values["empty_result"] == "fail",
            fail_on_error_result=values["error_result"] == "fail",
            error_shapes=ErrorShapes(built_in=values["error_shaped"], patterns=tuple(values["error_patterns"])),
        ),
        mcp=tuple(values["mcp"]),
        mcp_url=tuple(values["mcp_url"]),
        mcp_concurrency=values["mcp_concurrency"],
    )


def run_settings_from(
    values: Mapping[str, Any], apis: str, llm: LLMSettings, *, dedup: bool = False, only_executable: bool = False
) -> RunSettings:
    """The run the resolved ``values`` describe (``llm`` is ``Resolved.llm_settings()``)."""
    return RunSettings(
        apis=apis,
        llm=llm,
        judge=judge_settings_from(values, llm),
        generation=generation_settings_from(values, llm),
        examples=values["examples"],
        prompts=values["prompts"],
        execution=execution_settings_from(values),
        dedup=dedup,
        only_executable=only_executable,
        grow=grow_settings_from(values),
    )


def setting_values(settings: RunSettings) -> dict[str, Any]:
    """Every declared setting's value, read back from the typed settings (the inverse of ``run_settings_from``)."""
    llm, judge, generation, execution = settings.llm, settings.judge, settings.generation, settings.execution
    options, http, policy = execution.options, execution.http, execution.policy
    return {
        "base_url": llm.base_url,
        "model": llm.models,
        "api_key_env": llm.api_key_env,
        "temperature": llm.temperature,
        "max_tokens": generation.max_tokens,
        "top_p": llm.top_p,
        "seed": llm.seed,
        "options": dict(llm.options),
        "concurrency": llm.concurrency,
        "rpm": llm.rpm,
        "tpm": llm.tpm,
        "max_attempts": llm.max_attempts,
        "max_retry_seconds": llm.max_retry_seconds,
        "timeout": llm.timeout,
        "stop_after_failures": llm.stop_after_failures,
        "max_reply_bytes": llm.max_reply_bytes,
        "json_mode": llm.json_mode,
        "cache": llm.cache_dir,
        "log_llm": llm.log_path,
        "count": generation.count,
        "pairs_per_prompt": generation.pairs_per_prompt,
        "styles": generation.styles,
        "apis_per_prompt": generation.apis_per_prompt,
        "examples": settings.examples,
        "examples_per_prompt": generation.examples_per_prompt,
        "prompts": settings.prompts,
        "grow_examples": settings.grow is not None,
        "example_pool": settings.grow.size if settings.grow is not None else SETTINGS["example_pool"].default,
        "grow_lag": settings.grow.lag if settings.grow is not None else SETTINGS["grow_lag"].default,
        "shard": generation.shard,
        "functions": execution.functions,
        "workers": options.workers,
        "exec_timeout": options.timeout,
        "memory_mb": options.memory_mb,
        "max_result_chars": options.max_result_chars,
        "empty_result": "fail" if policy.fail_on_empty else "pass",
        "error_result": "fail" if policy.fail_on_error_result else "pass",
        "error_shaped": policy.error_shapes.built_in,
        "error_patterns": policy.error_shapes.patterns,
        "pass_env": options.pass_env,
        "http_timeout": http.timeout,
        "http_concurrency": http.concurrency,
        "http_retries": http.retries,
        "http_max_reply_bytes": http.max_reply_bytes,
        "http_redirects": http.redirects,
        "mcp": execution.mcp,
        "mcp_url": execution.mcp_url,
        "mcp_concurrency": execution.mcp_concurrency,
        "judge_model": judge.judges,
        "include_failed": judge.include_failed,
        "judge_result_chars": judge.max_result_chars,
        "max_reasks": judge.max_reasks,
        "judge_max_tokens": judge.max_tokens,
    }


def deciding_values(settings: RunSettings) -> dict[str, Any]:
    """The settings that decide which rows a run writes (``Setting.decides_rows``), by name."""
    values = setting_values(settings)
    deciding = {name: plain_setting(value) for name, value in values.items() if SETTINGS[name].decides_rows}
    deciding["dedup"] = settings.dedup
    deciding[PLAN_VERSION_KEY] = PLAN_VERSION  # the same seed plans other requests in another version
    if settings.only_executable:  # (left out when off, so that earlier runs' fingerprints stand)
        deciding["only_executable"] = True
    return deciding


def run_fingerprint(settings: RunSettings) -> str:
    """The digest a resumable run is known by: its deciding settings and the bytes of its inputs."""
    files = [settings.apis, *(path for path in (settings.examples, settings.execution.functions, settings.prompts) if path)]
    return fingerprint(deciding_values(settings), files)


def chosen_seed(seed: int | None) -> int:
    """The seed given, else a fresh one (printed at the end, so the run can be repeated)."""
    return seed if seed is not None else random.SystemRandom().randrange(1, 2**31)


def with_seed(settings: RunSettings, seed: int) -> RunSettings:
    """The same run with its sampling seed fixed (the generation's; the LLM's stays as given)."""
    return replace(settings, generation=replace(settings.generation, seed=seed, models=settings.llm.models))


def plain_setting(value: Any) -> Any:
    """A setting's value as JSON keeps it (tuples as lists, mappings sorted), so a saved one compares equal."""
    if isinstance(value, tuple):
        return [plain_setting(item) for item in value]
    if isinstance(value, Mapping):
        return {key: plain_setting(item) for key, item in sorted(value.items())}
    return value
