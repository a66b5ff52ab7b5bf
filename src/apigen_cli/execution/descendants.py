"""Finding and ending every process a worker started, whatever it did to get away.

Killing a worker's process group misses what a function started in a session of
its own (``start_new_session=True``, ``setsid``) and what it double-forked. So:

- each worker makes itself a *child subreaper* (Linux ``prctl``): orphans of its
  descendants are re-parented to it rather than to init, and stay in its tree;
- after every call that returned, the worker ends what the call left running
  (``end_strays``) before it takes the next call, and reaps it;
- when the pool stops a worker (a timeout), it freezes and kills the worker's
  whole tree (``kill_tree``), found through ``/proc/PID/task/TID/children``.

An MCP server started over stdio is held the same way: it runs below
``python descendants.py COMMAND...`` (``contained``), a subreaper that waits for the
server and, when it exits or is told to stop, ends whatever it left behind.

Where ``/proc`` has no ``children`` files (macOS, old kernels), only the process
group is killed, as before. A cgroup per worker would also catch processes that a
function hands to another parent on purpose, but needs privileges most machines
do not grant.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType, ModuleType

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Have orphaned descendants re-parented to this process (Linux); whether it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (every thread's), from ``/proc``; empty when unknown."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                found.extend(int(word) for word in listing.read().split())
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    found: list[int] = []
    seen = {pid}
    frontier = [pid]
    while frontier:
        below = [child for parent in frontier for child in children(parent) if child not in seen]
        seen.update(below)
        found.extend(below)
        frontier = below
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def kill_tree(root: int, *, include_root: bool = True) -> int:
    """Freeze ``root``'s tree (so that nothing forks away meanwhile), then kill it all; how many died."""
    if include_root:
        _signal(root, signal.SIGSTOP)
    frozen: list[int] = []
    for _round in range(100):  # each round freezes what the last found; a frozen tree stops growing
        fresh = [pid for pid in descendants(root) if pid not in frozen]
        if not fresh:
            break
        for pid in fresh:
            _signal(pid, signal.SIGSTOP)
        frozen.extend(fresh)
    for pid in frozen:
        _signal(pid, signal.SIGKILL)
    if include_root:
        _signal(root, signal.SIGKILL)
    return len(frozen) + (1 if include_root else 0)


def end_strays(wait_seconds: float = 1.0) -> None:
    """In a worker, after a call: kill whatever the call left running below us, and reap it.

    Costs one ``waitpid`` when the call started nothing (the common case). Reaping
    waits at most ``wait_seconds`` (a process we may not signal is left alone).
    """
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return  # no child at all
    kill_tree(os.getpid(), include_root=False)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.001)


def contained(command: Sequence[str]) -> list[str]:
    """``command`` run below a subreaper that ends what it leaves (``contain``); for a process we do not start ourselves."""
    return [sys.executable, os.path.abspath(__file__), *command]


def contain(command: Sequence[str]) -> int:
    """Run ``command`` as our child on our stdin, stdout and stderr; when it ends, or we are told to stop, end its tree.

    Returns its exit status (127 when it cannot start, saying why on stderr).
    """
    import subprocess  # here: workers load this module too, and start faster without it

    become_subreaper()
    _signal_when_parent_dies(signal.SIGTERM)
    _isolation().give_up_reading_others()  # as root, the server could otherwise read apigen's memory

    def stop(signum: int, _frame: FrameType | None) -> None:
        kill_tree(os.getpid(), include_root=False)
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        child = subprocess.Popen(list(command))
    except OSError as error:
        print(f"cannot start `{command[0]}`: {error.strerror or error}", file=sys.stderr, flush=True)
        return 127
    _let_go_of_standard_streams()  # the pipes end when the command (and what it started) is gone, not us
    while True:
        try:
            pid, status = os.waitpid(-1, 0)  # reaps orphans re-parented to us as it goes
        except ChildProcessError:
            return 0
        if pid == child.pid:
            break
    end_strays()
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _isolation() -> ModuleType:
    if __package__:
        from . import isolation

        return isolation
    return importlib.import_module("isolation")  # run by path: this file's folder is first on sys.path


def _signal_when_parent_dies(signum: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # PR_SET_PDEATHSIG


def _let_go_of_standard_streams() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(devnull, descriptor)
    os.close(devnull)


if __name__ == "__main__":  # run by path: `python descendants.py COMMAND...`
    sys.exit(contain(sys.argv[1:]) if len(sys.argv) > 1 else 2)
