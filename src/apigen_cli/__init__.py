"""apigen: turn API definitions into verified function-calling training data.

The stages are plain Python generators over rows (dicts), importable without the CLI::

    from apigen_cli import format_check, read_rows
    kept = [row for row in format_check(read_rows("rows.jsonl")) if "rejected_by" not in row]
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ApigenError, ConfigError, EndpointError, InputError, LibraryError
from .format_check import format_check
from .io import read_rows
from .records import Row
from .tools import Tool, compile_tool, compile_tools

__all__ = [
    "ApigenError",
    "ConfigError",
    "EndpointError",
    "InputError",
    "LibraryError",
    "Row",
    "Tool",
    "__version__",
    "compile_tool",
    "compile_tools",
    "format_check",
    "read_rows",
]

# exec-check: executing calls (Python functions in worker processes, REST APIs over httpx)
from .exec_check import ExecPolicy, exec_check  # noqa: E402
from .executor import Executor, ExecutorOptions, HttpOptions, Outcome  # noqa: E402

__all__ += ["ExecPolicy", "Executor", "ExecutorOptions", "HttpOptions", "Outcome", "exec_check"]
