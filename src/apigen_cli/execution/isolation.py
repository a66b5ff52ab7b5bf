"""Keeping user code out of apigen's own process: its environment (the keys) and its memory.

A function or an MCP server runs as the user, so by default it could read
``/proc/<apigen>/environ`` (the environment apigen started with, keys included: unsetting
a variable later does not change that file) and ``/proc/<apigen>/mem``. Linux checks both
as it checks ``ptrace``: a process that is not *dumpable* can be read only by a process
holding ``CAP_SYS_PTRACE``. So:

- apigen makes itself not dumpable (``hide_this_process``) before it starts any user code,
  which also turns off its core dumps and lets a debugger attach only with root's rights
  (``APIGEN_DUMPABLE=1``, and only that, leaves it as it was: ``APIGEN_DEBUG=1`` is for
  tracebacks, which a user asks for without meaning to open apigen's keys to the code it runs);
- the process that runs user code (a worker, the subreaper above an MCP server, the child
  that imports a library) gives up, before any user code runs, the capabilities that read
  other processes' or the kernel's memory (``give_up_reading_others``). That matters only
  when apigen runs as root, which holds them all; they leave the bounding set too, so
  nothing the code starts, even as root, gets them back.

Both are Linux only and quiet elsewhere: macOS has no ``/proc``. Needs only the standard
library: the worker loads this module by path.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: Capabilities that read another process's or the kernel's memory, or load code into the kernel:
#: CAP_SYS_MODULE, CAP_SYS_RAWIO (/proc/kcore, /dev/mem), CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF.
READING_CAPABILITIES = (16, 17, 19, 21, 38, 39)
#: The variable that, set to 1, leaves apigen dumpable: for a debugger, and for code you trust.
DUMPABLE_VARIABLE = "APIGEN_DUMPABLE"


def hide_this_process() -> bool:
    """Make this process's ``/proc`` files (environ, mem) unreadable to processes without ``CAP_SYS_PTRACE``.

    ``APIGEN_DUMPABLE=1`` leaves it readable, so that ``py-spy`` or ``gdb`` (or a test reading
    ``/proc/PID/wchan``) can look at it without root's rights; user code can then too.
    """
    if os.environ.get(DUMPABLE_VARIABLE) == "1":
        return False
    libc = _libc()
    return libc is not None and int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0


def give_up_reading_others() -> None:
    """Drop ``READING_CAPABILITIES`` from this process and from all it will start (a no-op without them)."""
    libc = _libc()
    if libc is None:
        return
    import ctypes

    for capability in READING_CAPABILITIES:
        libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)  # fails without CAP_SETPCAP: then there is nothing to drop

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(_LINUX_CAPABILITY_VERSION_3, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        return
    for capability in READING_CAPABILITIES:
        keep = ~(1 << (capability % 32)) & 0xFFFFFFFF
        word = data[capability // 32]
        word.effective &= keep
        word.permitted &= keep
        word.inheritable &= keep
    libc.capset(ctypes.byref(header), data)


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
