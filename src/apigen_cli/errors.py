"""The exceptions that stop a run.

Per-row problems are never exceptions: they become verdicts on the row. These
classes are for the few things that make a whole command unable to go on, and
each carries a ``hint`` telling the user how to get going again. Only the
command line (``cli/``) turns them into messages and exit codes.
"""

from __future__ import annotations


class ApigenError(Exception):
    """Base of every error apigen raises on purpose; ``hint`` says how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(ApigenError):
    """An input file is missing, unreadable or holds a malformed line."""


class ConfigError(ApigenError):
    """A flag, an environment variable or a config file has an unusable value."""


class EndpointError(ApigenError):
    """An LLM or REST endpoint is plainly unusable (unreachable, refused, unknown model)."""


class FunctionsError(ApigenError):
    """The user's Python functions (``--functions``) cannot be loaded."""


#: The name this error had before "library" came to mean only the API library; kept for callers.
LibraryError = FunctionsError


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped a command that had written rows; its text says where they are kept.

    Still a ``KeyboardInterrupt``, so that no ``except Exception`` of a caller swallows the stop.
    """
