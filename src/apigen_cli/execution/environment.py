"""Which environment variables may leave apigen: into a worker's environment or an HTTP request.

A function or an HTTP binding comes with the data, so a secret-looking variable
(an API key, a token) is handed out only when the user names it with ``--pass-env``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping

#: Environment variables never passed to workers unless ``pass_env`` names them.
SECRET_PATTERNS = ("*KEY*", "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*CREDENTIAL*", "APIGEN_*", "OPENAI_*")
#: Set in workers unless already set: one thread per numeric library, since the pool
#: already uses every core (as loky does), and a fixed hash seed so set and dict order,
#: hence results, are the same from run to run.
WORKER_DEFAULTS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


def may_hand_out(name: str, pass_env: Iterable[str] = ()) -> bool:
    """May this variable leave apigen (to a worker, into a request)? Not if its name looks secret, unless passed."""
    upper = name.upper()
    if not any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_PATTERNS):
        return True
    return any(fnmatch.fnmatchcase(name, wanted) for wanted in pass_env)


class HandOutEnvironment(Mapping[str, str]):
    """``os.environ`` as HTTP bindings may use it: only the variables ``--pass-env`` names.

    A binding comes with the rows and names its own host, so any variable it fills in
    (``$DATABASE_URL`` as much as ``$ITEMS_KEY``) goes wherever the row says: only those
    the user allowed may go out.
    """

    def __init__(self, pass_env: Iterable[str] = ()) -> None:
        self.pass_env = tuple(pass_env)

    def allows(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, wanted) for wanted in self.pass_env)

    def __getitem__(self, name: str) -> str:
        if not self.allows(name):
            raise KeyError(name)
        return os.environ[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in os.environ if self.allows(name))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def worker_environment(environ: Mapping[str, str], pass_env: Iterable[str] = ()) -> dict[str, str]:
    """The environment a worker gets: ``environ`` without secret-looking variables, unless passed."""
    keep = tuple(pass_env)
    env = {name: value for name, value in environ.items() if may_hand_out(name, keep)}
    for name, value in WORKER_DEFAULTS.items():
        env.setdefault(name, value)
    return env
