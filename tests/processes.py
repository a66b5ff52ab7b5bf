"""Whether a process the tests started (or that apigen started) is still there, read from Linux's /proc."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """Alive and not a zombie (a container's init may not reap orphans at once); gone if /proc cannot say."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
