"""The arguments of a REST tool, built from parameters that live in several places of a request.

Path, query, header and body parameters of one operation become one flat
``parameters`` object. Their names may clash (a path ``id`` and a body ``id``) or
not be usable as argument names (``page[size]``, ``X-Request-ID``); ``Arguments``
gives each a clean, unique name and remembers the name on the wire for the
binding's ``rename`` (query and body; path and header arguments are written into
the URL and header templates under their new names).
"""

from __future__ import annotations

import re
from typing import Any

_NOT_ARGUMENT = re.compile(r"[^A-Za-z0-9_]+")
_TEMPLATE = re.compile(r"\{([^}]*)\}")


class Arguments:
    """The parameters object being built, renaming a name seen before and remembering the name on the wire."""

    def __init__(self) -> None:
        self.properties: dict[str, Any] = {}
        self.required: list[str] = []
        self.rename: dict[str, str] = {}
        self.open_body = False

    def add(self, wire: str, location: str, schema: dict[str, Any], *, required: bool) -> str:
        name = _NOT_ARGUMENT.sub("_", wire).strip("_") or location
        if not re.match(r"[A-Za-z_]", name):
            name = f"{location}_{name}"
        if name in self.properties:
            name = f"{location}_{name}"
        number = 1
        base = name
        while name in self.properties:
            number += 1
            name = f"{base}_{number}"
        self.properties[name] = schema
        if required:
            self.required.append(name)
        if name != wire and location in ("query", "body"):
            self.rename[name] = wire
        return name


def literal_dollars(text: str) -> str:
    """Text of an API description written into a binding: its ``$`` stays a ``$`` (``$$``), never an environment variable.

    AWS IoT's ``/things/{thingName}/jobs/$next`` is a path, not a reference to ``$next``; only
    the user's own choices (``--auth SCHEME=ENV_VAR``, ``--base-url``) put variables in a binding.
    """
    return text.replace("$", "$$")


def fill_path(route: str, names: dict[str, str]) -> str:
    return _TEMPLATE.sub(lambda match: "{" + names.get(match.group(1), match.group(1)) + "}", route)


def template_names(route: str) -> list[str]:
    """The ``{name}`` s of a URL path template, in order."""
    return _TEMPLATE.findall(route)
