"""The package's layering, read from the imports themselves (STYLE.md, "Layout: folders as rooms").

Every ``import`` in every module counts, those inside functions too: a lazy import
still ties two modules together.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "apigen_cli"

#: Modules below every layer, importable from anywhere: they import only one another.
FOUNDATION = {"errors", "problems", "retry", "version", "config", "replies", "redaction", "wording"}
#: What each folder may import from the package, besides the foundation and itself.
MAY_IMPORT: dict[str, set[str]] = {
    "rows": set(),
    "schema": {"rows"},
    "library": {"rows", "schema", "execution"},
    # The offline backend writes calls from tool schemas, so llm/ reads schema/ too.
    "llm": {"rows", "schema"},
    # The worker calls user code through environments/binding.py and runs sessions with environments/.
    "execution": {"rows", "schema", "environments"},
    # Pure, below execution: the worker loads it beside the user's classes (see PURE_ROOMS).
    "environments": {"rows", "schema"},
    "stages": {"rows", "schema", "library", "llm", "execution"},
    # the multi-turn path: composed over the layers below it as stages/ are (not over stages/ itself)
    "conversations": {"rows", "schema", "library", "llm", "execution", "environments", "stages"},
}
#: The command line: the `cli` package (every module of it) and `console`; the only users of typer and rich.
UI_MODULES = {"cli", "console"}
#: Rooms the worker loads by path, without the package: the standard library, orjson,
#: their own modules and these foundation modules only (a worker starts in milliseconds).
PURE_ROOMS = {"environments": {"problems"}}


def modules() -> dict[str, Path]:
    """Dotted names (below ``apigen_cli``) of every module, ``__init__`` as its package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path) -> Iterator[str]:
    """Every module name ``path`` imports, absolute (``apigen_cli.rows.jsonl``, ``typer``)."""
    is_package = path.name == "__init__.py"
    package = ["apigen_cli", *name.split(".")] if name else ["apigen_cli"]
    if not is_package:
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from . import x` may name a module
                yield f"{target}.{alias.name}"


def internal_imports() -> dict[str, set[str]]:
    """For each module, the package modules it imports (names below ``apigen_cli``)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for target in imports_of(name, path):
            if target == "apigen_cli" or not target.startswith("apigen_cli."):
                continue
            inner = target.removeprefix("apigen_cli.")
            if inner in known:
                targets.add(inner)
        targets.discard(name)
        graph[name] = targets
    return graph


def room(module: str) -> str:
    return module.split(".")[0]


def test_only_the_command_line_imports_typer_or_rich() -> None:
    offenders = []
    for name, path in modules().items():
        if room(name) in UI_MODULES:
            continue
        for target in imports_of(name, path):
            if target.split(".")[0] in ("typer", "rich", "click"):
                offenders.append(f"{name} imports {target}")
    assert offenders == []


def test_each_folder_imports_only_what_its_layer_allows() -> None:
    offenders = []
    for name, targets in internal_imports().items():
        here = room(name)
        for target in targets:
            there = room(target)
            if there == here or there in FOUNDATION:
                continue
            if here in FOUNDATION:
                offenders.append(f"{name} (foundation) imports {target}")
            elif here in MAY_IMPORT and there not in MAY_IMPORT[here]:
                offenders.append(f"{name} imports {target}")
            elif here not in MAY_IMPORT and there in UI_MODULES and here not in UI_MODULES and here != "__main__":
                offenders.append(f"{name} imports the command line ({target})")
    assert offenders == []


@pytest.mark.parametrize("folder", sorted(PURE_ROOMS))
def test_a_pure_room_imports_only_the_standard_library_orjson_and_itself(folder: str) -> None:
    allowed = {f"apigen_cli.{folder}", *(f"apigen_cli.{name}" for name in PURE_ROOMS[folder])}
    offenders = []
    for name, path in modules().items():
        if room(name) != folder:
            continue
        for target in imports_of(name, path):
            top = target.split(".")[0]
            if top in sys.stdlib_module_names or top in ("orjson", "__future__"):
                continue
            if not any(target == prefix or target.startswith(prefix + ".") for prefix in allowed):
                offenders.append(f"{name} imports {target}")
    assert offenders == []


def test_no_import_cycle() -> None:
    graph = internal_imports()
    # The package root re-exports the public API; it imports, nobody imports it.
    graph = {name: {target for target in targets if target} for name, targets in graph.items() if name}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(trail[trail.index(target) :] + [target] if target in trail else [node, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_module_shadows_the_standard_library() -> None:
    clashes = sorted(path.stem for path in PACKAGE.rglob("*.py") if path.stem in sys.stdlib_module_names)
    assert clashes == []


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_every_folder_says_what_it_holds(folder: str) -> None:
    init = PACKAGE / folder / "__init__.py"
    assert init.is_file()
    assert ast.get_docstring(ast.parse(init.read_text())), f"{folder}/__init__.py has no docstring"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The rules above are only worth something if a violation is found: plant one."""
    module = tmp_path / "probe.py"
    module.write_text("from ..stages import generate\nimport typer\n")
    found = set(imports_of("llm.probe", module))
    assert "apigen_cli.stages.generate" in found and "typer" in found
