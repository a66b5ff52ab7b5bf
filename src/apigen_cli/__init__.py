"""apigen: turn API definitions into verified function-calling training data.

The stages are plain Python generators over rows (dicts), importable without the CLI::

    from apigen_cli import format_check, read_rows
    kept = [row for row in format_check(read_rows("rows.jsonl")) if "rejected_by" not in row]
"""

from __future__ import annotations

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
