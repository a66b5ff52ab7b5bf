"""``apigen library from-openapi``: one tool with an ``http`` binding per operation of an OpenAPI spec.

OpenAPI 3.0 and 3.1 and Swagger 2.0 are read. An operation's path, query and
header parameters and the properties of its JSON body become one ``parameters``
object; a name used twice (a path ``id`` and a body ``id``) is given a prefix
(``body_id``) and mapped back with the binding's ``rename``. The binding is the
one ``exec-check`` runs (see ``execution/rest.py``). A ``$`` in the spec's paths and server
URLs is written ``$$``: the spec's text is literal, not a reference to an environment variable.

Keys never come from the file: a security scheme becomes a header (or query
parameter) filled from an environment variable the user names (``--auth
SCHEME=ENV_VAR``). What a JSON call cannot carry (multipart forms, file uploads,
other body types, cookies that a call must set) skips the operation, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..schema.tools import numeric_bounds
from .http_arguments import Arguments, fill_path, literal_dollars
from .output import Imported, UniqueNames, check_base_url, sanitise_name
from .spec_file import Document, pointer, read_document

METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_SCHEMA_KEYS = (
    "type",
    "description",
    "enum",
    "const",
    "default",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "examples",
    "nullable",
    "readOnly",
)
_SET_BY_CLIENT = ("accept", "content-type", "authorization")
_SERVER_VARIABLE = re.compile(r"\{([^}]+)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_SCHEMA_DEPTH = 24
# A shared schema is written out at every use (the tools' JSON Schema is read without `$ref`s by
# format-check, the offline generator and the trial arguments): a few KB of schemas that each use
# the next ten times would write out millions. One operation's arguments hold at most this many
# schemas, written out; past it the spec is refused, naming the shared schema.
_MAX_SCHEMA_NODES = 20_000


@dataclass(frozen=True)
class OpenApiImport:
    """What the user says about the spec: the base URL to use, and the environment variable of each security scheme."""

    base_url: str | None = None
    auth: Mapping[str, str] = field(default_factory=dict)  # scheme name -> environment variable


class _Skip(Exception):
    """An operation that a JSON tool call cannot carry; the message says why."""


def from_openapi(path: str, options: OpenApiImport) -> Imported:
    """Read the spec at ``path`` and return one tool per operation (``InputError`` for a bad spec)."""
    check_base_url(options.base_url)
    document = Document(path, read_document(path))
    return _Converter(document, options).run()


class _Converter:
    def __init__(self, document: Document, options: OpenApiImport) -> None:
        self.document = document
        self.options = options
        self.result = Imported()
        self.names = UniqueNames()
        self._cycle_notes: set[str] = set()
        self._auth_notes: set[str] = set()
        self.swagger = False
        self._operation = ""  # `METHOD /route` of the operation being converted
        self._schema_nodes = 0  # the schemas its arguments have written out so far

    # --- the whole spec -------------------------------------------------------------

    def run(self) -> Imported:
        root = self.document.root
        if not isinstance(root, dict):
            raise self.document.error("", "the spec should be an object (with `openapi` or `swagger` and `paths`)")
        version = root.get("openapi", root.get("swagger"))
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            version = str(version)  # `swagger: 2.0` unquoted in YAML is a number
        if not isinstance(version, str) or not version.startswith(("2.", "3.")):
            raise self.document.error(
                "", 'this is not an OpenAPI 3 or Swagger 2 document (no `openapi: 3.x` or `swagger: "2.0"`)'
            )
        self.swagger = version.startswith("2.")
        paths = root.get("paths")
        if not isinstance(paths, dict):
            raise self.document.error("/paths", "`paths` should be an object of operations")
        unknown = sorted(set(self.options.auth) - set(self._schemes()))
        if unknown:
            raise self.document.error(
                pointer("components", "securitySchemes") if not self.swagger else "/securityDefinitions",
                f"there is no security scheme `{unknown[0]}` (the spec has: {', '.join(sorted(self._schemes())) or 'none'})",
                hint="pass `--auth SCHEME=ENV_VAR` with a scheme name from the spec",
            )
        default_base = self._server_url(root, "")
        for route, item in paths.items():
            item_where = pointer("paths", route)
            if not route.startswith("/"):
                # The path is joined to the server URL: without its `/`, it would write the
                # host, port or user of the URL, and send the keys elsewhere.
                raise self.document.error(item_where, f"a path should start with `/`, and `{route}` does not")
            item, item_where = self.document.deref(item, item_where)
            if not isinstance(item, dict):
                raise self.document.error(item_where, "a path item should be an object")
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                where = item_where + pointer(method)
                if not isinstance(operation, dict):
                    raise self.document.error(where, "an operation should be an object")
                shown = f"{method.upper()} {route}"
                try:
                    tool = self._tool(route, method, item, operation, where, default_base)
                except _Skip as reason:
                    self.result.notes.append(f"`{shown}` ({where}) is skipped: {reason}")
                    self.result.skipped += 1
                    continue
                self.result.tools.append(tool)
        return self.result

    def _schemes(self) -> dict[str, Any]:
        root = self.document.root
        found = root.get("securityDefinitions") if self.swagger else (root.get("components") or {}).get("securitySchemes")
        return found if isinstance(found, dict) else {}

    def _server_url(self, holder: dict[str, Any], where: str) -> str | None:
        """The first server's URL with its variables' defaults filled in (Swagger: scheme, host, basePath)."""
        if self.swagger:
            host = holder.get("host")
            if not isinstance(host, str) or not host:
                return None
            schemes = holder.get("schemes") or ["https"]
            scheme = "https" if "https" in schemes else str(schemes[0])
            return f"{scheme}://{host}{holder.get('basePath') or ''}"
        servers = holder.get("servers")
        if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
            return None
        server = servers[0]
        url = server.get("url")
        if not isinstance(url, str):
            raise self.document.error(where + "/servers/0/url", "a server's `url` should be a string")
        variables = server.get("variables") or {}

        def fill(match: re.Match[str]) -> str:
            variable = variables.get(match.group(1)) if isinstance(variables, dict) else None
            if not isinstance(variable, dict) or "default" not in variable:
                raise self.document.error(
                    where + "/servers/0/variables", f"the server variable `{match.group(1)}` has no default"
                )
            return str(variable["default"])

        return _SERVER_VARIABLE.sub(fill, url)

    # --- one operation --------------------------------------------------------------

    def _tool(
        self, route: str, method: str, item: dict[str, Any], operation: dict[str, Any], where: str, default_base: str | None
    ) -> dict[str, Any]:
        self._operation, self._schema_nodes = f"{method.upper()} {route}", 0
        spec_base = self._server_url(operation, where) or self._server_url(item, where) or default_base
        base = self.options.base_url or (literal_dollars(spec_base) if spec_base else None)
        if not base or not base.lower().startswith(("http://", "https://")):
            raise self.document.error(
                "/servers" if not self.swagger else "/host",
                f"the spec gives no absolute server URL for `{method.upper()} {route}`"
                + (f" (its server URL is `{spec_base}`, relative to where the spec is published)" if spec_base else ""),
                hint="pass `--base-url https://host/prefix`: it replaces the server URL, prefix included",
            )
        if operation.get("callbacks"):
            self.result.notes.append(f"`{method.upper()} {route}` ({where}): its callbacks are left out")
        arguments = Arguments()
        path_names: dict[str, str] = {}
        header_templates: dict[str, str] = {}
        query: list[str] = []
        for parameter, parameter_where in self._parameters(item, operation, where):
            location = parameter.get("in")
            wire = parameter.get("name")
            if not isinstance(wire, str) or not wire:
                raise self.document.error(parameter_where, "a parameter has no `name`")
            if location == "body":
                self._body(self._swagger_body(parameter, parameter_where), arguments)
                continue
            if location == "formData":
                raise _Skip("it takes a form (`in: formData`), which a JSON call cannot send")
            if location == "cookie":
                if parameter.get("required"):
                    raise _Skip(f"it needs the cookie `{wire}`, which the http binding cannot set")
                self.result.notes.append(f"`{method.upper()} {route}`: the cookie parameter `{wire}` is left out")
                continue
            if location not in ("path", "query", "header"):
                raise self.document.error(parameter_where, f"`in` is {location!r}, not path, query, header or cookie")
            if location == "header" and wire.lower() in _SET_BY_CLIENT:
                continue  # OpenAPI: these header parameters are ignored (the client sets them)
            schema = self._parameter_schema(parameter, parameter_where)
            if parameter.get("description") and "description" not in schema:
                schema["description"] = str(parameter["description"]).strip()
            argument = arguments.add(wire, location, schema, required=location == "path" or bool(parameter.get("required")))
            if location == "path":
                path_names[wire] = argument
            elif location == "header":
                header_templates[wire] = "{" + argument + "}"
            else:
                query.append(argument)
        if not self.swagger and operation.get("requestBody") is not None:
            body_where = where + "/requestBody"
            body, body_where = self.document.deref(operation["requestBody"], body_where)
            if isinstance(body, dict):
                schema = self._json_body_schema(body, body_where)
                self._body(schema, arguments)
        url = base.rstrip("/") + fill_path(literal_dollars(route), path_names)
        missing = [name for name in re.findall(r"\{([^}]*)\}", route) if name not in path_names]
        if missing:
            raise self.document.error(where, f"the path uses `{{{missing[0]}}}`, which no path parameter declares")
        headers = dict(header_templates)
        url = self._security(operation, headers, url, method, route)
        binding: dict[str, Any] = {"method": method.upper(), "url": url}
        if query and method.upper() in ("POST", "PUT", "PATCH"):
            binding["query"] = query
        if headers:
            binding["headers"] = headers
        if arguments.rename:
            binding["rename"] = arguments.rename
        parameters: dict[str, Any] = {"type": "object", "properties": arguments.properties, "required": arguments.required}
        if arguments.open_body:
            parameters["additionalProperties"] = True
        tags = operation.get("tags")
        category = str(tags[0]) if isinstance(tags, list) and tags and str(tags[0]).strip() else self._title()
        return {
            "name": self._name(route, method, operation, where),
            "description": _description(operation),
            "parameters": parameters,
            "category": category,
            "http": binding,
        }

    def _name(self, route: str, method: str, operation: dict[str, Any], where: str) -> str:
        raw = operation.get("operationId")
        if raw is None:
            return self.names.claim(sanitise_name(f"{method}{route}"))
        if not isinstance(raw, str) or not raw.strip():
            raise self.document.error(where + "/operationId", "`operationId` should be a non-empty string")
        name = self.names.claim(sanitise_name(raw))
        if name != raw:
            self.result.notes.append(f"`{method.upper()} {route}` is named `{name}`")
        return name

    def _title(self) -> str:
        info = self.document.root.get("info")
        title = info.get("title") if isinstance(info, dict) else None
        return str(title).strip() if isinstance(title, str) and title.strip() else "uncategorised"

    def _parameters(self, item: dict[str, Any], operation: dict[str, Any], where: str) -> list[tuple[dict[str, Any], str]]:
        """The path item's parameters, overridden by the operation's own (same name and ``in``)."""
        found: dict[tuple[Any, Any], tuple[dict[str, Any], str]] = {}
        item_where = where.rsplit("/", 1)[0]
        for holder, holder_where in ((item, item_where), (operation, where)):
            listed = holder.get("parameters") or []
            if not isinstance(listed, list):
                raise self.document.error(holder_where + "/parameters", "`parameters` should be a list")
            for index, raw in enumerate(listed):
                parameter, parameter_where = self.document.deref(raw, f"{holder_where}/parameters/{index}")
                if not isinstance(parameter, dict):
                    raise self.document.error(parameter_where, "a parameter should be an object")
                found[(parameter.get("name"), parameter.get("in"))] = (parameter, parameter_where)
        return list(found.values())

    def _parameter_schema(self, parameter: dict[str, Any], where: str) -> dict[str, Any]:
        if self.swagger:
            if parameter.get("type") == "file":
                raise _Skip("it uploads a file")
            return self.schema(parameter, where)
        if "schema" in parameter:
            return self.schema(parameter["schema"], where + "/schema")
        content = parameter.get("content")
        if isinstance(content, dict):
            for media, entry in content.items():
                if _is_json(media) and isinstance(entry, dict):
                    return self.schema(entry.get("schema", {}), f"{where}/content/{pointer(media)[1:]}/schema")
            raise _Skip(f"its parameter `{parameter.get('name')}` is not JSON")
        return {}

    def _swagger_body(self, parameter: dict[str, Any], where: str) -> dict[str, Any]:
        return self.schema(parameter.get("schema", {}), where + "/schema")

    def _json_body_schema(self, body: dict[str, Any], where: str) -> dict[str, Any]:
        content = body.get("content")
        if not isinstance(content, dict) or not content:
            return {}
        for media, entry in content.items():
            if _is_json(media) and isinstance(entry, dict):
                return self.schema(entry.get("schema", {}), f"{where}/content/{pointer(media)[1:]}/schema")
        kinds = ", ".join(f"`{media}`" for media in content)
        if any(media.startswith("multipart/") for media in content):
            raise _Skip(f"its body is a multipart form ({kinds}), which a JSON call cannot send")
        raise _Skip(f"its body is {kinds}, not JSON")

    def _body(self, schema: dict[str, Any], arguments: Arguments) -> None:
        """The body's properties as arguments; a body that is not an object cannot be spread into them.

        A property the body's schema requires is a required argument, whether or not the body
        itself is (``requestBody.required`` defaults to false, and most specs that leave it out
        need the body all the same). Spread into arguments, "no body at all" cannot be told from
        "a body without its required fields": the tools ask for the fields, so that every call
        made is one the API takes, at the cost of never making the rare call without a body.
        """
        if not schema:
            return
        kind = schema.get("type")
        if kind not in (None, "object") or (kind is None and "properties" not in schema):
            shown = f"of type {kind}" if isinstance(kind, str) else "not a plain object"
            raise _Skip(f"its JSON body is {shown}, which cannot be spread into named arguments")
        properties = schema.get("properties") or {}
        inner_required = set(schema.get("required") or [])
        for name, property_schema in properties.items():
            if property_schema.pop("readOnly", False):
                continue  # the server sets it; a request does not send it
            arguments.add(str(name), "body", property_schema, required=name in inner_required)
        if not properties or schema.get("additionalProperties") not in (None, False):
            arguments.open_body = True

    def _security(self, operation: dict[str, Any], headers: dict[str, str], url: str, method: str, route: str) -> str:
        """Headers or query parameters for the first security requirement the user gave variables for."""
        requirements = operation.get("security", self.document.root.get("security"))
        if not isinstance(requirements, list) or not requirements:
            return url
        schemes = self._schemes()
        wanted: list[str] = []
        for requirement in requirements:
            if not isinstance(requirement, dict):
                continue
            if not requirement:  # `{}`: this operation may also be called without credentials
                return url
            names = list(requirement)
            if all(name in self.options.auth for name in names):
                for name in names:
                    url = self._apply_scheme(name, schemes.get(name), self.options.auth[name], headers, url)
                return url
            wanted.extend(name for name in names if name not in wanted)
        for name in wanted:
            if name not in self._auth_notes:
                self._auth_notes.add(name)
                self.result.notes.append(
                    f"operations such as `{method.upper()} {route}` need the security scheme `{name}`"
                    f" ({_scheme_text(schemes.get(name))}): pass `--auth {name}=ENV_VAR` to send it from the environment"
                )
        return url

    def _apply_scheme(self, name: str, scheme: Any, variable: str, headers: dict[str, str], url: str) -> str:
        value = "$" + "{" + variable + "}"
        if not isinstance(scheme, dict):
            raise self.document.error("/components/securitySchemes", f"the security scheme `{name}` is not defined")
        kind = scheme.get("type")
        if kind == "apiKey":
            where, key = scheme.get("in"), str(scheme.get("name") or "")
            if where == "header":
                headers[key] = value
            elif where == "query":
                url += ("&" if "?" in url else "?") + f"{key}={value}"
            elif where == "cookie":
                headers["Cookie"] = f"{key}={value}"
        elif kind in ("http", "basic") and str(scheme.get("scheme", "basic")).lower() == "basic":
            headers["Authorization"] = f"Basic {value}"  # the variable holds base64 of user:password
        elif kind in ("http", "oauth2", "openIdConnect"):
            headers["Authorization"] = f"Bearer {value}"
        else:
            raise self.document.error("/components/securitySchemes", f"the security scheme `{name}` has type {kind!r}")
        return url

    # --- schemas --------------------------------------------------------------------

    def schema(self, raw: Any, where: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """A JSON Schema that ``schema/tools.py`` reads, from an OpenAPI schema: refs inlined, cycles cut, 3.0 nullable kept."""
        if len(seen) > _MAX_SCHEMA_DEPTH:
            return {}
        self._schema_nodes += 1
        if self._schema_nodes > _MAX_SCHEMA_NODES:
            shared = seen[0][1:] if seen else where
            raise self.document.error(
                shared,
                f"`{self._operation}`: its schemas written out (each `$ref` at every use) come to more than "
                f"{_MAX_SCHEMA_NODES:,}, which no tool definition can carry",
                hint="fix the spec: use fewer levels of shared schemas in this operation, or leave the operation out",
            )
        if isinstance(raw, dict) and isinstance(raw.get("$ref"), str):
            reference = raw["$ref"]
            if reference in seen:
                if reference not in self._cycle_notes:
                    self._cycle_notes.add(reference)
                    self.result.notes.append(f"`{reference}` contains itself; at {where} the inner one is typed as any value")
                return {}
            target = self.schema(self.document.lookup(reference, where), reference[1:], (*seen, reference))
            # OpenAPI 3.1 lets a $ref have siblings (a description, a default): they win over the target's.
            siblings = _kept(raw)
            return {**target, **siblings} if siblings else target
        if raw is True or raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.document.error(where, f"a schema should be an object, got {type(raw).__name__}")
        schema = _kept(raw)
        if raw.get("type") == "file":
            raise _Skip("it uploads a file")
        if "example" in raw and "examples" not in schema:
            schema["examples"] = [raw["example"]]
        if schema.get("format") == "binary":
            raise _Skip("it uploads binary data")
        for combiner in ("anyOf", "oneOf"):
            if isinstance(raw.get(combiner), list):
                schema[combiner] = [
                    self.schema(option, f"{where}/{combiner}/{index}", seen) for index, option in enumerate(raw[combiner])
                ]
        if isinstance(raw.get("allOf"), list):
            merged = [self.schema(part, f"{where}/allOf/{index}", seen) for index, part in enumerate(raw["allOf"])]
            schema = _merge_all_of([*merged, schema])
        if isinstance(raw.get("properties"), dict):
            properties = schema.setdefault("properties", {})
            for key, value in raw["properties"].items():
                properties[str(key)] = self.schema(value, f"{where}/properties/{pointer(str(key))[1:]}", seen)
        if isinstance(raw.get("required"), list):
            schema["required"] = list(dict.fromkeys([*schema.get("required", []), *raw["required"]]))
        if "items" in raw:
            schema["items"] = self.schema(raw["items"], where + "/items", seen)
        additional = raw.get("additionalProperties")
        if isinstance(additional, bool):
            schema["additionalProperties"] = additional
        elif isinstance(additional, dict):
            schema["additionalProperties"] = self.schema(additional, where + "/additionalProperties", seen)
        if schema.get("type") == "object" and "properties" not in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = True  # a free-form object
        return schema


def _kept(raw: dict[str, Any]) -> dict[str, Any]:
    """The keys of an OpenAPI schema that a tool's schema keeps; its bounds as JSON Schema says them
    today, so that Swagger 2's ``minimum: 0, exclusiveMinimum: true`` is ``exclusiveMinimum: 0``."""
    return {**{key: raw[key] for key in _SCHEMA_KEYS if key in raw}, **numeric_bounds(raw)}


def _merge_all_of(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """``allOf`` of object schemas as one object schema (properties and required united)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "properties":
                merged.setdefault("properties", {}).update(value)
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    if "properties" in merged:
        merged.setdefault("type", "object")
    return merged


def _is_json(media: str) -> bool:
    kind = media.split(";")[0].strip().lower()
    return kind in ("application/json", "*/*") or kind.endswith("+json")


def _description(operation: dict[str, Any]) -> str:
    summary = str(operation.get("summary") or "").strip()
    details = str(operation.get("description") or "").strip()
    if summary and details and details != summary:
        return f"{summary}\n\n{details}"
    return summary or details


def _scheme_text(scheme: Any) -> str:
    if not isinstance(scheme, dict):
        return "not defined in the spec"
    if scheme.get("type") == "apiKey":
        return f"an API key in {scheme.get('in')} `{scheme.get('name')}`"
    return f"{scheme.get('type')} {scheme.get('scheme', '')}".strip()


def parse_auth(values: list[str]) -> dict[str, str]:
    """``["api_key=PETSTORE_KEY"]`` -> ``{"api_key": "PETSTORE_KEY"}``; ``ValueError`` with the reason."""
    found: dict[str, str] = {}
    for value in values:
        scheme, separator, variable = value.partition("=")
        if not separator or not scheme.strip() or not _ENV_NAME.match(variable.strip()):
            raise ValueError(f"`{value}` should be SCHEME=ENV_VAR, with the name of an environment variable")
        found[scheme.strip()] = variable.strip()
    return found
