"""The opt-in response cache (``--cache DIR``): SQLite in WAL mode.

Keyed by a hash of the endpoint and the whole request body (model, messages,
options, response format), so a rerun of the same command sends no request for
rows already answered. Only successful, whole replies are stored (one cut off by
``finish_reason: "length"`` is not: a larger budget must not get it again). WAL mode and a busy
timeout let several apigen processes share one cache folder.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError
from .chat import ChatResult

FILE_NAME = "responses.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


class ResponseCache:
    """A folder holding ``responses.sqlite3``; usable from several threads and processes."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self.write_failures = 0
        self._lock = threading.Lock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(f"`--cache {folder}` cannot be used: {error}", hint="name a folder apigen may write to") from None
        try:
            self._set_up()
        except sqlite3.Error as error:
            self._db.close()
            raise ConfigError(
                f"`--cache {folder}` cannot be used: `{self.path}`: {error}",
                hint="name another folder, or delete the damaged cache file",
            ) from None

    def _set_up(self) -> None:
        """WAL mode and the table. Switching to WAL can answer "locked" without waiting while
        another process switches the same new file, so that step is retried for a while."""
        self._db.execute("PRAGMA busy_timeout = 30000")
        for attempt in range(100):
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute(_SCHEMA)
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == 99:
                    raise
                time.sleep(0.02 + 0.01 * (attempt % 5))
        self._db.execute("PRAGMA synchronous = NORMAL")

    @staticmethod
    def key(endpoint: str, body: dict[str, Any]) -> str:
        """A stable hash of where a request goes and everything it says."""
        data = orjson.dumps([endpoint, body], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(data).hexdigest()

    def get(self, key: str) -> ChatResult | None:
        """The stored reply, marked ``cached`` (it cost nothing this run: no tokens), or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT text FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return ChatResult(row[0], attempts=0, cached=True)

    def put(self, key: str, model: str, result: ChatResult) -> None:
        """Store a successful reply; failures, and replies cut by the token budget, are never stored."""
        if not result.ok or result.text is None or result.cut_off:
            return
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                    (key, model, result.text, result.prompt_tokens, result.completion_tokens, time.time()),
                )
        except sqlite3.Error:  # a busy or full disk loses a cache entry, never the row
            self.write_failures += 1

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
