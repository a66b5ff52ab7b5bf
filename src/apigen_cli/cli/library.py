"""`apigen library`: make, check and merge API libraries.

A library is made from what the user already has (Python code, an OpenAPI spec, an MCP
server, ToolBench files), so that nobody writes tool definitions by hand. Each command calls
one function of library/ and writes library JSONL (stdout or -o); notes go to stderr. Modules
are imported when the command runs, so that the other commands do not load the importers.
"""

from __future__ import annotations

import shlex
from contextlib import ExitStack
from typing import Annotated, Any, Optional

import typer

from ..console import Messages
from ..errors import ConfigError
from ..rows.jsonl import write_jsonl
from ..rows.replacement import check_writable
from ..wording import counted
from .main import EXIT_REJECTED, app, errors_to_exit_codes
from .options import OutputOpt, PassEnvOpt, QuietOpt, VerboseOpt, executor_and_policy, setting_options, with_options

library_app = typer.Typer(
    name="library",
    help="Make, check and merge API libraries: from Python code, OpenAPI specs, MCP servers and ToolBench files.",
    no_args_is_help=True,
)
app.add_typer(library_app)

LibraryOutputOpt = Annotated[
    str, typer.Option("--output", "-o", metavar="FILE", help="Where the library JSONL goes; `-` is standard output.")
]


def _write_imported(command: str, imported: Any, output: str, messages: Messages) -> int:
    """Print the importer's notes, write its tools, say how many; returns the count written."""
    from ..library.output import write_library

    for note in imported.notes:
        messages.info(f"note: {note}")
    if not imported.tools:
        raise ConfigError(f"{command}: no API could be imported ({imported.skipped} skipped)", hint="see the notes above for why")
    count = write_library(imported.tools, output)
    skipped = f", {imported.skipped} skipped" if imported.skipped else ""
    messages.info(f"{command}: {counted(count, 'API')} written{skipped}")
    return count


@library_app.command("from-python")
def library_from_python(
    specs: Annotated[list[str], typer.Argument(metavar="PATH|MODULE...", help="A .py file, a folder of .py files, or a module.")],
    output: LibraryOutputOpt = "-",
    untyped: Annotated[
        str,
        typer.Option(
            "--untyped",
            metavar="skip|loose",
            help="A function with a parameter that cannot be typed (no annotation, *args, a type with no JSON form): "
            "`skip` it, or keep it with that parameter typed `loose`ly (any JSON value).",
        ),
    ] = "skip",
    category: Annotated[
        Optional[str],
        typer.Option("--category", metavar="NAME", help="One category for every API, instead of the module's (or the class's)."),
    ] = None,
    classes: Annotated[
        Optional[list[str]],
        typer.Option(
            "--class",
            metavar="NAME",
            help="Only the public methods of this class (a stateful environment), and no function. Repeatable.",
        ),
    ] = None,
    import_timeout: Annotated[
        float, typer.Option("--import-timeout", min=0.1, metavar="SECONDS", help="Time limit of importing the code.")
    ] = 60.0,
    memory_mb: Annotated[
        int, typer.Option("--memory-mb", min=0, metavar="MB", help="Address-space limit of the importing process; 0 for none.")
    ] = 2048,
    pass_env: PassEnvOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make an API library from the public functions and classes of Python code.

    Signatures give the parameters (annotations as JSON Schema, defaults make a
    parameter optional), docstrings (Google, NumPy, reST) the descriptions, the
    module name the category. Each public method of a class is a tool of a
    stateful environment, with the class named in `class`. The code is imported
    (which runs its module-level code) in a separate process, as exec-check's
    workers do; no function is called and no class instantiated.

    Examples:

        apigen library from-python sample_data/functions -o apis.jsonl

        apigen library from-python sample_data/store --class OnlineStore -o store_tools.jsonl

        apigen library from-python mypackage.tools --untyped loose > apis.jsonl
    """
    from ..library.from_python import UNTYPED_CHOICES, PythonImport, from_python

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        if untyped not in UNTYPED_CHOICES:
            raise ConfigError(
                f"`--untyped` is {untyped!r}, not `skip` or `loose`", hint="pass `--untyped skip` or `--untyped loose`"
            )
        options = PythonImport(untyped, import_timeout, memory_mb, tuple(pass_env or ()), category, tuple(classes or ()))
        imported = from_python(specs, options)
        _write_imported("from-python", imported, output, messages)
        owners = sorted({tool["class"] for tool in imported.tools if "class" in tool})
        if owners:
            named = ", ".join(f"`{owner}`" for owner in owners)
            messages.info(
                f"from-python: the methods of {named} are tools of a stateful environment:"
                f' a row names its class and initial state, as `"environment": {{"{owners[0]}": {{...}}}}`'
            )
        functions = any("class" not in tool for tool in imported.tools)  # what exec-check's function library calls
        if functions and len(specs) == 1:
            messages.info(f"from-python: run them with `apigen exec-check --functions {specs[0]}` (and `apigen library check`)")
        elif functions:
            messages.info(
                "from-python: exec-check takes one `--functions` library: put the files in one folder and pass that folder"
            )


@library_app.command("from-openapi")
def library_from_openapi(
    spec: Annotated[str, typer.Argument(metavar="SPEC", help="An OpenAPI 3.0/3.1 or Swagger 2.0 file, JSON or YAML.")],
    output: LibraryOutputOpt = "-",
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", metavar="URL", help="Call this server instead of the spec's first one.")
    ] = None,
    auth: Annotated[
        Optional[list[str]],
        typer.Option(
            "--auth",
            metavar="SCHEME=ENV_VAR",
            help="Fill the spec's security scheme SCHEME from the environment variable ENV_VAR at call time. Repeatable.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make an API library from an OpenAPI or Swagger spec: one tool with an `http` binding per operation.

    Path, query, header and JSON-body parameters become one parameters object;
    `$ref`s are followed within the file. Operations a JSON call cannot make
    (multipart forms, file uploads, other body types) are skipped with a note.

    Examples:

        apigen library from-openapi petstore.yaml -o apis.jsonl

        apigen library from-openapi api.json --base-url http://127.0.0.1:8000 --auth api_key=PETS_KEY > apis.jsonl
    """
    from ..library.from_openapi import OpenApiImport, from_openapi, parse_auth

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        try:
            schemes = parse_auth(auth or [])
        except ValueError as error:
            raise ConfigError(f"`--auth`: {error}", hint="pass `--auth SCHEME=ENV_VAR`, e.g. `--auth api_key=PETS_KEY`") from None
        _write_imported("from-openapi", from_openapi(spec, OpenApiImport(base_url, schemes)), output, messages)


@library_app.command("from-toolbench")
def library_from_toolbench(
    path: Annotated[str, typer.Argument(metavar="FILE|DIR", help="A ToolBench tool .json file, or a folder of them.")],
    output: LibraryOutputOpt = "-",
    key_env: Annotated[
        Optional[str],
        typer.Option("--key-env", metavar="ENV_VAR", help="Environment variable whose value goes in the key header."),
    ] = None,
    key_header: Annotated[str, typer.Option("--key-header", metavar="NAME", help="Header carrying the key.")] = "X-RapidAPI-Key",
    host_header: Annotated[
        str, typer.Option("--host-header", metavar="NAME", help="Header carrying the tool's host.")
    ] = "X-RapidAPI-Host",
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", metavar="URL", help="Send every call to this server (scheme and host).")
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make an API library from ToolBench / RapidAPI tool files; the folder names the category.

    Examples:

        apigen library from-toolbench data/toolenv/tools --key-env RAPIDAPI_KEY -o apis.jsonl

        apigen library from-toolbench tools/Finance/stock.json --base-url http://127.0.0.1:8080 > apis.jsonl
    """
    from ..library.from_toolbench import ToolBenchImport, from_toolbench

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        options = ToolBenchImport(key_env, key_header, host_header, base_url)
        _write_imported("from-toolbench", from_toolbench(path, options), output, messages)


@library_app.command("check")
@with_options(setting_options("execution"))
def library_check(
    ctx: typer.Context,
    library: Annotated[str, typer.Argument(metavar="LIB", help="The API library (JSONL) to check; `-` reads standard input.")],
    keep: Annotated[
        Optional[str], typer.Option("--keep", metavar="FILE", help="Write the APIs whose call worked to FILE.")
    ] = None,
    lint_only: Annotated[bool, typer.Option("--lint-only", help="Only lint the definitions; call nothing.")] = False,
    initial_state: Annotated[
        Optional[str],
        typer.Option(
            "--initial-state",
            metavar="FILE",
            help="For an environment's tools: the state each call starts from (class names to state); else each class's default.",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when an API fails its call or the lint finds something.")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Call each API once with arguments made from its schema, and lint the definitions.

    The accessibility test of the APIGen paper: an API that does not answer is
    no use to generate from. Arguments come from each parameter's examples,
    default or enum, its description's cues ("e.g. X", YYYY-MM-DD, ISO 4217),
    format and pattern, else its name and type; a call that fails is tried again
    with up to two other argument sets. Prints one line per API on stderr (ok,
    error, timeout, HTTP status, the arguments; `-v` every try); `--keep` writes
    the ones that work. The methods of an environment's classes (`library
    from-python --class`) are each called on a fresh instance, and marked `read`
    or `write` by whether the call changed its state (`"effect"` in `--keep`).

    Examples:

        apigen library check sample_data/apis.jsonl --functions sample_data/functions --keep working.jsonl

        apigen library from-openapi pets.yaml --auth key=PETS_KEY | PETS_KEY=... apigen library check - --pass-env PETS_KEY

        apigen library check store_tools.jsonl --functions sample_data/store --initial-state sample_data/store/initial_state.json --keep store_tools_checked.jsonl
    """
    from ..conversations.blueprint_sampling import read_initial_state
    from ..library.check import call_each, effects_line, kept_definition, lint, read_entries, table_lines
    from ..library.output import write_library

    def judge(result: Any) -> str | None:  # exec-check's own policy, so that a kept API passes exec-check
        problem = policy.problem_with(result)
        if problem is None:
            return None
        return "the result is empty" if problem.code == "empty_result" else "the result is an error payload"

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages), ExitStack() as resources:
        if keep is not None:
            check_writable(keep, "--keep")  # before any API is called
        entries, findings = read_entries(library)
        findings = findings + lint(entries)
        for finding in findings:
            messages.info(f"lint: {finding.where}" + (f" `{finding.name}`" if finding.name else "") + f": {finding.message}")
        failed = 0
        if not lint_only:
            executor, policy = executor_and_policy(ctx, messages)
            resources.callback(executor.close)
            classes = sorted({entry.environment_class for entry in entries if entry.environment_class is not None})
            state = read_initial_state(initial_state, classes) if initial_state is not None else None
            call_each(entries, executor, judge, initial_state=state)
            for line in table_lines(entries, verbose=verbose):
                messages.info(line)
            working = [entry for entry in entries if entry.status == "ok"]
            failed = len(entries) - len(working)
            if keep is not None:
                write_library([kept_definition(entry) for entry in working], keep, flag="--keep")
            messages.info(
                f"check: {len(working)} of {counted(len(entries), 'API')} answered, {counted(len(findings), 'lint finding')}"
                + effects_line(entries)
            )
        else:
            messages.info(f"check: {counted(len(entries), 'API')} linted, {counted(len(findings), 'lint finding')}")
    if strict and (failed or findings):
        raise typer.Exit(EXIT_REJECTED)


@library_app.command("merge")
def library_merge(
    libraries: Annotated[
        list[str], typer.Argument(metavar="LIB...", help="API libraries (JSONL) to merge, in order; `-` reads standard input.")
    ],
    output: LibraryOutputOpt = "-",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Merge API libraries into one; a name used by two different APIs is renamed (`name_2`), bindings kept.

    Examples:

        apigen library merge python_apis.jsonl rest_apis.jsonl -o apis.jsonl

        apigen library merge a.jsonl b.jsonl | apigen library check - --lint-only
    """
    from ..library.merge import merge

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        _write_imported("merge", merge(libraries), output, messages)


@library_app.command("from-mcp")
def library_from_mcp(
    command: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="-- COMMAND [ARGS...]", help="The command that starts the MCP server over stdio (after `--`)."),
    ] = None,
    url: Annotated[
        Optional[str], typer.Option("--url", metavar="URL", help="Reach the server over streamable HTTP instead of starting it.")
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option(
            "--name",
            metavar="NAME",
            help="The server's name in the bindings, which `--mcp NAME=...` gives later [default: from the command, or `mcp`].",
        ),
    ] = None,
    category: Annotated[
        Optional[str], typer.Option("--category", metavar="TEXT", help="Category of every tool [default: the server's name].")
    ] = None,
    output: OutputOpt = "-",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, metavar="SECONDS", help="Time limit to start the server and list its tools.")
    ] = 30.0,
    pass_env: PassEnvOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write an MCP server's tools as an API library (JSONL), each bound to the server by name.

    Starts the server (or reaches it with `--url`), asks for `tools/list` and writes
    one library entry per tool: its name, description, `inputSchema` as
    `parameters`, and `"mcp": {"server": NAME, "tool": ...}`. The binding never
    holds a command: exec-check runs the tools only through servers given with
    `--mcp NAME=COMMAND` or `--mcp-url NAME=URL`.

    Examples:

        apigen library from-mcp -- python sample_data/mcp_server.py

        apigen library from-mcp --url http://127.0.0.1:8000/mcp --name units -o units.jsonl

        apigen library from-mcp -o mcp_apis.jsonl -- python sample_data/mcp_server.py && apigen generate mcp_apis.jsonl -m offline -n 5 | apigen format-check
    """
    from ..execution.mcp import McpServer, check_server_name, check_url
    from ..library.from_mcp import default_server_name, import_server

    messages = Messages(quiet=quiet, verbose=verbose)
    with errors_to_exit_codes(messages):
        words = list(command or [])
        if (url is None) == (not words):
            raise ConfigError(
                "give either the command that starts the MCP server (after `--`) or `--url`, not both"
                if words
                else "no MCP server given",
                hint="e.g. `apigen library from-mcp -- python sample_data/mcp_server.py` or `--url http://127.0.0.1:8000/mcp`",
            )
        server_name = check_server_name(name or (default_server_name(words) if words else "mcp"), "--name")
        if url is not None:
            server = McpServer(server_name, url=check_url(url, "--url"))
        else:
            server = McpServer(server_name, command=tuple(words))
        imported = import_server(server, timeout=timeout, category=category, pass_env=tuple(pass_env or ()))
        write_jsonl(output, imported.entries)
        for tool, why in imported.skipped.items():
            messages.warning(f"skipped the tool `{tool}`: {why}")
        option = f"--mcp-url {server.name}={url}" if url is not None else f"--mcp {server.name}={shlex.quote(server.shown)}"
        messages.info(
            f"library from-mcp: {counted(len(imported.entries), 'tool')} of MCP server `{server.name}`; run them with `{option}`"
        )
