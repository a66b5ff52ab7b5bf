"""Which environment variables may leave apigen: into user code's environment or an HTTP request.

Functions, MCP servers and HTTP bindings come with the data, so what they get is an
allowlist, not a scrub: a secret's name says nothing reliable about it (``DATABASE_URL``,
``SESSION_COOKIE`` and ``HF_AUTH`` hold secrets as much as ``*_KEY`` does). User code gets
``BASE_VARIABLES`` (where things are, the language and time zone, the terminal: none of
it secret) and what the user names with ``--pass-env``, nothing else.

What user code may see, it may also send back; so the values ``--pass-env`` hands out and
apigen's own keys are cut out of every result (``secrets_to_cut``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping

from ..config import DEFAULT_KEY_VARIABLES

#: What user code gets without ``--pass-env``: paths, locale, time zone, terminal. Globs, matched with case.
#: Proxies are left out: their URLs may hold a password (pass them by name when functions need them).
BASE_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "PYTHONPATH",  # a library imported by module name must be found by the workers as by the user's shell
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
#: Set in workers unless already set: one thread per numeric library, since the pool
#: already uses every core (as loky does), and a fixed hash seed so set and dict order,
#: hence results, are the same from run to run. The user's own values of these are kept.
WORKER_DEFAULTS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}
#: A value handed out shorter than this is not cut from results: it cannot be told from
#: ordinary text (a region `eu`, a flag `on`), and is too short to be a key.
MIN_SECRET_CHARS = 8


def is_passed(name: str, pass_env: Iterable[str]) -> bool:
    """Does ``--pass-env`` (names or globs such as ``AWS_*``) name this variable?"""
    return any(fnmatch.fnmatchcase(name, wanted) for wanted in pass_env)


def is_base(name: str) -> bool:
    """Is this a variable user code gets without asking (``BASE_VARIABLES``, ``WORKER_DEFAULTS``)?"""
    return name in WORKER_DEFAULTS or any(fnmatch.fnmatchcase(name, allowed) for allowed in BASE_VARIABLES)


class HandOutEnvironment(Mapping[str, str]):
    """``os.environ`` as HTTP bindings may use it: only the variables ``--pass-env`` names.

    A binding comes with the rows and names its own host, so any variable it fills in
    (``$DATABASE_URL`` as much as ``$ITEMS_KEY``) goes wherever the row says: only those
    the user allowed may go out.
    """

    def __init__(self, pass_env: Iterable[str] = ()) -> None:
        self.pass_env = tuple(pass_env)

    def allows(self, name: str) -> bool:
        return is_passed(name, self.pass_env)

    def __getitem__(self, name: str) -> str:
        if not self.allows(name):
            raise KeyError(name)
        return os.environ[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in os.environ if self.allows(name))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def worker_environment(environ: Mapping[str, str], pass_env: Iterable[str] = ()) -> dict[str, str]:
    """The environment user code gets (a worker, an MCP server, an imported library): the base variables and those passed."""
    keep = tuple(pass_env)
    env = {name: value for name, value in environ.items() if is_base(name) or is_passed(name, keep)}
    for name, value in WORKER_DEFAULTS.items():
        env.setdefault(name, value)
    return env


def secrets_to_cut(
    environ: Mapping[str, str], pass_env: Iterable[str] = (), key_variables: Iterable[str] = DEFAULT_KEY_VARIABLES
) -> tuple[str, ...]:
    """The values no result may carry: apigen's keys, and every value ``--pass-env`` hands out (from ``MIN_SECRET_CHARS``).

    Base variables are not cut even when passed: user code gets them without asking (a path in a result stays).
    """
    keep = tuple(pass_env)
    names = {name for name in environ if is_passed(name, keep) and not is_base(name)} | set(key_variables)
    return tuple(sorted({environ[name] for name in names if len(environ.get(name, "")) >= MIN_SECRET_CHARS}))
