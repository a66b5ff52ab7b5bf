"""apigen: turn API definitions into verified function-calling training data.

The stages are plain Python generators over rows (dicts), importable without the CLI::

    from apigen_cli import format_check, read_rows
    kept = [row for row in format_check(read_rows("rows.jsonl")) if "rejected_by" not in row]
"""

from __future__ import annotations

__version__ = "0.1.0"

from .chat import ChatRequest, ChatResult, ChatService
from .config import LLMSettings
from .dedup import dedup
from .errors import ApigenError, ConfigError, EndpointError, InputError, LibraryError
from .exec_check import ExecPolicy, exec_check
from .executor import Executor, ExecutorOptions, HttpOptions, Outcome
from .format_check import format_check
from .generate import generate, prepare_generation
from .io import read_rows
from .llm import open_chat_service
from .negatives import negatives
from .pipeline import PipelineParts, run_pipeline
from .prompts import load_prompts
from .records import Row
from .report import PipelineReport
from .sampling import GenerationSettings, plan_requests
from .semantic_check import JudgeSettings, semantic_check
from .tools import Tool, compile_tool, compile_tools

__all__ = [
    "ApigenError",
    "ChatRequest",
    "ChatResult",
    "ChatService",
    "ConfigError",
    "EndpointError",
    "ExecPolicy",
    "Executor",
    "ExecutorOptions",
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
    "Tool",
    "__version__",
    "compile_tool",
    "compile_tools",
    "dedup",
    "exec_check",
    "format_check",
    "generate",
    "load_prompts",
    "negatives",
    "open_chat_service",
    "plan_requests",
    "prepare_generation",
    "read_rows",
    "run_pipeline",
    "semantic_check",
]
