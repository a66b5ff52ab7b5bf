"""apigen: turn API definitions into verified function-calling training data.

The stages are plain Python generators over rows (dicts), importable without the CLI::

    from apigen_cli import format_check, read_rows
    kept = [row for row in format_check(read_rows("rows.jsonl")) if "rejected_by" not in row]

Every name below is imported on first use (PEP 562): a command importing one module, as
``apigen generate`` imports ``apigen_cli.stages.generate``, does not load the pipeline, the
executor or the other stages with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import LLMSettings
    from .errors import ApigenError, ConfigError, EndpointError, FunctionsError, InputError, LibraryError
    from .execution.calls import ExecutorOptions, HttpOptions, Outcome
    from .execution.executor import Executor
    from .execution.sessions import SessionCall, SessionOutcome, SessionRequest
    from .llm.chat import ChatRequest, ChatResult, ChatService
    from .llm.service import open_chat_service
    from .pipeline import PipelineParts, RunOutcome, RunTarget, open_run, run, run_pipeline
    from .report import PipelineReport
    from .rows.jsonl import read_rows
    from .rows.records import Row
    from .run_settings import ExecutionSettings, RunSettings, run_fingerprint
    from .schema.tools import Tool, compile_tool, compile_tools
    from .stages.dedup import dedup
    from .stages.exec_check import ExecPolicy, exec_check
    from .stages.format_check import format_check
    from .stages.generate import generate, prepare_generation
    from .stages.negatives import negatives
    from .stages.prompts import load_prompts
    from .stages.sampling import GenerationSettings, plan_requests
    from .stages.semantic_check import JudgeSettings, semantic_check
    from .version import __version__

_MODULE_OF = {
    "LLMSettings": ".config",
    "ApigenError": ".errors",
    "ConfigError": ".errors",
    "EndpointError": ".errors",
    "FunctionsError": ".errors",
    "InputError": ".errors",
    "LibraryError": ".errors",
    "ExecutorOptions": ".execution.calls",
    "HttpOptions": ".execution.calls",
    "Outcome": ".execution.calls",
    "Executor": ".execution.executor",
    "SessionCall": ".execution.sessions",
    "SessionOutcome": ".execution.sessions",
    "SessionRequest": ".execution.sessions",
    "ChatRequest": ".llm.chat",
    "ChatResult": ".llm.chat",
    "ChatService": ".llm.chat",
    "open_chat_service": ".llm.service",
    "PipelineParts": ".pipeline",
    "RunOutcome": ".pipeline",
    "RunTarget": ".pipeline",
    "open_run": ".pipeline",
    "run": ".pipeline",
    "run_pipeline": ".pipeline",
    "PipelineReport": ".report",
    "read_rows": ".rows.jsonl",
    "Row": ".rows.records",
    "ExecutionSettings": ".run_settings",
    "RunSettings": ".run_settings",
    "run_fingerprint": ".run_settings",
    "Tool": ".schema.tools",
    "compile_tool": ".schema.tools",
    "compile_tools": ".schema.tools",
    "dedup": ".stages.dedup",
    "ExecPolicy": ".stages.exec_check",
    "exec_check": ".stages.exec_check",
    "format_check": ".stages.format_check",
    "generate": ".stages.generate",
    "prepare_generation": ".stages.generate",
    "negatives": ".stages.negatives",
    "load_prompts": ".stages.prompts",
    "GenerationSettings": ".stages.sampling",
    "plan_requests": ".stages.sampling",
    "JudgeSettings": ".stages.semantic_check",
    "semantic_check": ".stages.semantic_check",
    "__version__": ".version",
}


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module the first time it is asked for, then keep it here."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ApigenError",
    "ChatRequest",
    "ChatResult",
    "ChatService",
    "ConfigError",
    "EndpointError",
    "ExecPolicy",
    "ExecutionSettings",
    "Executor",
    "ExecutorOptions",
    "FunctionsError",
    "GenerationSettings",
    "HttpOptions",
    "InputError",
    "JudgeSettings",
    "LLMSettings",
    "LibraryError",
    "Outcome",
    "PipelineParts",
    "PipelineReport",
    "Row",
    "RunOutcome",
    "RunSettings",
    "RunTarget",
    "SessionCall",
    "SessionOutcome",
    "SessionRequest",
    "Tool",
    "compile_tool",
    "compile_tools",
    "dedup",
    "exec_check",
    "format_check",
    "generate",
    "load_prompts",
    "negatives",
    "open_chat_service",
    "open_run",
    "plan_requests",
    "prepare_generation",
    "read_rows",
    "run",
    "run_fingerprint",
    "run_pipeline",
    "semantic_check",
    "__version__",
]
