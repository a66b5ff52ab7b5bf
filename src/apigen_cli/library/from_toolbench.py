"""``apigen library from-toolbench``: ToolBench / RapidAPI tool files as tools with ``http`` bindings.

A ToolBench tool file (``data/toolenv/tools/<Category>/<tool>.json``) holds
``tool_name``, ``tool_description`` and ``api_list``: each API has ``name``,
``url``, ``method``, ``description`` and ``required_parameters`` /
``optional_parameters`` typed ``STRING``, ``NUMBER``, ``BOOLEAN``, ``ENUM``,
``ARRAY``, ``OBJECT``, ``DATE``, ``TIME``, ``GEOPOINT`` or ``FILE``. Each API
becomes one tool named as ToolBench names it (``<api>_for_<tool>``), with the
folder as its category. RapidAPI wants a key header and a host header: the key
comes from an environment variable the user names (``--key-env``), the host is
the tool's own; ``--base-url`` sends the calls elsewhere (a proxy, a local mock).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from ..rows.jsonl import json_error_text, loads
from .http_arguments import Arguments, fill_path, literal_dollars, template_names
from .output import Imported, UniqueNames, check_base_url, check_env_name, sanitise_name

_TYPES = {
    "STRING": {"type": "string"},
    "NUMBER": {"type": "number"},
    "INTEGER": {"type": "integer"},
    "BOOLEAN": {"type": "boolean"},
    "ENUM": {"type": "string"},
    "ARRAY": {"type": "array"},
    "OBJECT": {"type": "object"},
    "DATE (YYYY-MM-DD)": {"type": "string", "format": "date"},
    "DATE": {"type": "string", "format": "date"},
    "TIME (24-HOUR HH:MM)": {"type": "string"},
    "TIME": {"type": "string"},
    "GEOPOINT (LATITUDE, LONGITUDE)": {"type": "string"},
    "GEOPOINT": {"type": "string"},
}
_BODY_METHODS = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class ToolBenchImport:
    """Where calls go and which headers carry the key and the host."""

    key_env: str | None = None  # environment variable holding the RapidAPI key
    key_header: str = "X-RapidAPI-Key"
    host_header: str = "X-RapidAPI-Host"
    base_url: str | None = None  # replaces scheme and host of every URL


def from_toolbench(path: str, options: ToolBenchImport) -> Imported:
    """Every API of the tool file ``path``, or of every ``*.json`` under the folder ``path``."""
    check_base_url(options.base_url)
    check_env_name(options.key_env, "--key-env")
    root = Path(path)
    if root.is_dir():
        files = sorted(item for item in root.rglob("*.json") if item.is_file())
        if not files:
            raise InputError(
                f"the folder `{path}` holds no .json tool file", hint="pass a ToolBench tools folder or one tool file"
            )
    elif root.is_file():
        files = [root]
    else:
        raise InputError(f"`{path}` does not exist", hint="pass a ToolBench tool .json file or a folder of them")
    result = Imported()
    names = UniqueNames()
    for file in files:
        category = file.parent.resolve().name.replace("_", " ")  # ToolBench keeps one folder per category
        _read_tool(file, category, options, names, result)
    if options.key_env is None and result.tools:
        result.notes.append(
            f"no `--key-env` was given, so calls carry no `{options.key_header}` header (RapidAPI refuses them without one)"
        )
    return result


def _read_tool(file: Path, category: str, options: ToolBenchImport, names: UniqueNames, result: Imported) -> None:
    try:
        tool = loads(file.read_bytes())
    except ValueError as error:
        raise InputError(
            f"`{file}` is not valid JSON: {json_error_text(error)}", hint="fix the file, or move it out of the folder"
        ) from None
    except OSError as error:
        raise InputError(f"`{file}` cannot be read: {error.strerror or error}") from None
    if not isinstance(tool, dict) or not isinstance(tool.get("api_list"), list):
        raise InputError(
            f"`{file}` is not a ToolBench tool file (no `api_list`)", hint="each file holds one tool: tool_name, api_list"
        )
    tool_name = str(tool.get("tool_name") or tool.get("standardized_name") or file.stem)
    host = str(tool.get("host") or "")
    for index, api in enumerate(tool["api_list"]):
        where = f"`{file}` api_list[{index}]"
        if not isinstance(api, dict) or not isinstance(api.get("name"), str) or not api["name"].strip():
            raise InputError(f"{where} has no `name`", hint="each API of `api_list` needs a name, a url and a method")
        try:
            result.tools.append(_api_tool(api, tool, tool_name, host, category, options, names, where))
        except _Skip as reason:
            result.notes.append(f"{where} (`{api['name']}`) is skipped: {reason}")
            result.skipped += 1


class _Skip(Exception):
    """An API that a JSON call cannot make."""


def _api_tool(
    api: dict[str, Any],
    tool: dict[str, Any],
    tool_name: str,
    host: str,
    category: str,
    options: ToolBenchImport,
    names: UniqueNames,
    where: str,
) -> dict[str, Any]:
    url = api.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise _Skip(f"its `url` is {url!r}, not an http(s) URL")
    method = str(api.get("method") or "GET").upper()
    parts = urlsplit(url)
    host = host or parts.netloc
    if options.base_url:
        url = options.base_url.rstrip("/") + literal_dollars((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    else:
        url = literal_dollars(url)
    arguments = Arguments()
    path_names: dict[str, str] = {}
    in_path = set(template_names(parts.path))
    query: list[str] = []
    for group, required in (("required_parameters", True), ("optional_parameters", False)):
        listed = api.get(group) or []
        if not isinstance(listed, list):
            raise _Skip(f"`{group}` is not a list")
        for parameter in listed:
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str) or not parameter["name"]:
                raise _Skip(f"a parameter of `{group}` has no name")
            schema = _schema(parameter)
            wire = parameter["name"]
            location = "path" if wire in in_path else ("body" if method in _BODY_METHODS else "query")
            argument = arguments.add(wire, location, schema, required=required or location == "path")
            if location == "path":
                path_names[wire] = argument
            elif method in _BODY_METHODS and location == "query":
                query.append(argument)
    missing = sorted(in_path - set(path_names))
    if missing:
        raise _Skip(f"its URL uses `{{{missing[0]}}}`, which no parameter names")
    headers: dict[str, str] = {}
    if host:
        headers[options.host_header] = literal_dollars(host)
    if options.key_env:
        headers[options.key_header] = "${" + options.key_env + "}"
    binding: dict[str, Any] = {"method": method, "url": fill_path(url, path_names)}
    if query:
        binding["query"] = query
    if headers:
        binding["headers"] = headers
    if arguments.rename:
        binding["rename"] = arguments.rename
    description = str(api.get("description") or "").strip()
    about = str(tool.get("tool_description") or "").strip()
    if about and about not in description:
        description = f"{description} (part of {tool_name}: {about})" if description else about
    name = names.claim(sanitise_name(f"{sanitise_name(api['name'])}_for_{sanitise_name(tool_name)}").lower())
    parameters: dict[str, Any] = {"type": "object", "properties": arguments.properties, "required": arguments.required}
    return {"name": name, "description": description, "parameters": parameters, "category": category, "http": binding}


def _schema(parameter: dict[str, Any]) -> dict[str, Any]:
    declared = str(parameter.get("type") or "STRING").strip().upper()
    if declared in ("FILE", "BINARY"):
        raise _Skip(f"its parameter `{parameter['name']}` is a file upload")
    schema: dict[str, Any] = dict(_TYPES.get(declared, {"type": "string"}))
    text = str(parameter.get("description") or "").strip()
    if text:
        schema["description"] = text
    default = parameter.get("default")
    if default not in (None, ""):
        # ToolBench's defaults are the examples RapidAPI's playground fills in.
        schema["examples"] = [_typed(default, schema.get("type"))]
    return schema


def _typed(value: Any, kind: Any) -> Any:
    """An example value in its parameter's type (ToolBench writes numbers and booleans as strings)."""
    if not isinstance(value, str):
        return value
    try:
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() else number
        if kind == "integer":
            return int(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    except ValueError:
        return value
    return value
