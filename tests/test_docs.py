"""The README and the pages of docs/ are the manual: every command has a section and help, the commands they show
exist, and the site builds."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from apigen_cli.cli import app
from apigen_cli.cli.main import COMMAND_ORDER

from .conftest import PROJECT, invoke
from .doc_pages import PAGES, page_with

README = (PROJECT / "README.md").read_text()
MANUAL = "\n".join(page.read_text() for page in PAGES)


def _commands() -> list[str]:
    group = typer.main.get_group(app)
    names: list[str] = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a sub-group such as `config`
            names.extend(f"{name} {sub}" for sub in command.commands)
        else:
            names.append(name)
    return sorted(names)


def test_the_readme_starts_with_the_two_commands() -> None:
    top = README.split("## Install")[0]
    assert "make demo" in top and "make test" in top


def test_the_readme_reads_in_five_minutes() -> None:
    """The README is the first screen and the way in (about 250 lines); the rest lives in docs/."""
    assert len(README.splitlines()) <= 250


def test_the_readme_links_to_pages_and_anchors_that_exist() -> None:
    """The README is not built by mkdocs, so its links into docs/ are checked here, anchors included."""
    from markdown.extensions.toc import slugify

    for target, anchor in re.findall(r"\]\((docs/[\w.-]+\.md)(?:#([\w-]+))?\)", README):
        page = PROJECT / target
        assert page.is_file(), target
        if anchor:
            headings = [line.lstrip("#").strip() for line in page.read_text().splitlines() if re.match(r"#{1,3} ", line)]
            assert anchor in {slugify(heading.replace("`", ""), "-") for heading in headings}, f"{target}#{anchor}"


def test_the_reason_codes_page_names_only_codes_apigen_has() -> None:
    """Each code in the reason-code tables is a string apigen's code writes (a typo or a renamed code fails here)."""
    page = (PROJECT / "docs" / "reason-codes.md").read_text()
    source = "\n".join(path.read_text() for path in (PROJECT / "src").rglob("*.py"))
    codes = {code for row in re.findall(r"^\| (`.+?`) \|", page, re.M) for code in re.findall(r"`(\w+)`", row)}
    assert len(codes) > 50
    assert sorted(code for code in codes if f'"{code}"' not in source) == []


def _string_constants() -> dict[str, set[str]]:
    """Every module-level `NAME = "text"` of the sources, by name (a code is often kept in such a constant)."""
    constants: dict[str, set[str]] = {}
    for path in (PROJECT / "src").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.isupper():
                        constants.setdefault(target.id, set()).add(node.value.value)
    return constants


def _multi_turn_codes() -> dict[str, str]:
    """The codes the multi-turn path gives a `Problem` or `RowProblem` by name, each with a module that gives it."""
    source = PROJECT / "src" / "apigen_cli"
    modules = [
        *(source / "conversations").rglob("*.py"),
        *(source / "environments").rglob("*.py"),
        source / "execution" / "live.py",
        source / "execution" / "mcp_environment.py",
    ]
    constants = _string_constants()
    codes: dict[str, str] = {}
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if called not in ("Problem", "RowProblem"):
                continue
            first = node.args[0]  # a code passed on from elsewhere (`problem.code`) is that place's to list
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                codes.setdefault(first.value, module.name)
            elif isinstance(first, ast.Name):
                for code in constants.get(first.id, set()):
                    codes.setdefault(code, module.name)
    return codes


def test_the_reason_codes_page_lists_every_code_the_multi_turn_path_writes() -> None:
    """blueprint, trajectory-check and simulate each reject with codes of their own; the page says what each means."""
    page = (PROJECT / "docs" / "reason-codes.md").read_text()
    codes = _multi_turn_codes()
    assert {"state_mismatch", "write_without_change", "turn_limit", "state_read_error"} <= set(codes)  # the walk works
    assert sorted(f"{code} ({module})" for code, module in codes.items() if f"`{code}`" not in page) == []


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_a_section_and_help_with_examples(runner: CliRunner, command: str) -> None:
    page_with(f"### `apigen {command}`")  # on one page of the manual
    result = invoke(runner, *command.split(), "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout or command == "config show"
    assert invoke(runner, *command.split(), "-h").stdout == result.stdout


@pytest.mark.parametrize("command", _commands())
def test_every_flag_the_manual_gives_a_command_exists(runner: CliRunner, command: str) -> None:
    help_text = invoke(runner, *command.split(), "--help").stdout
    section = (
        page_with(f"### `apigen {command}`").split(f"### `apigen {command}`", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    )
    for line in section.splitlines():
        if line.startswith("apigen " + command + " ") or line.startswith("| `--"):
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", line):
                assert flag in help_text, f"`apigen {command}` has no {flag}, though the manual shows it"


def test_the_cli_reference_is_the_commands_help_now() -> None:
    """docs/cli-reference.md is generated from `--help` (`make docs`); a changed option must be regenerated."""
    reference = PROJECT / "docs" / "cli-reference.md"
    done = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", str(reference)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"docs/cli-reference.md is out of date: run `make docs`\n{done.stdout}{done.stderr}"
    for command in _commands():
        assert f"\n## apigen {command}\n" in reference.read_text()


def test_help_lists_the_commands_in_pipeline_order(runner: CliRunner) -> None:
    """`apigen --help` reads as the pipeline does: the four stages, `run` that chains them, then the rest."""
    listed = invoke(runner, "--help").stdout.split("\nCommands:\n", 1)[1]
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    assert names[:5] == ["generate", "format-check", "exec-check", "semantic-check", "run"]
    assert names == list(COMMAND_ORDER)
    assert sorted(names) == sorted(typer.main.get_group(app).commands)


def test_a_command_the_order_does_not_name_is_listed_last() -> None:
    """A command added later and not yet given its place still shows in `apigen --help`."""
    group = typer.main.get_group(app)
    group.commands["later"] = group.commands["stats"]  # a fresh group: the app itself is left as it was
    listed = group.list_commands(typer.Context(group))
    assert listed[-1] == "later" and listed.count("stats") == 1


def test_the_library_summary_names_every_importer(runner: CliRunner) -> None:
    """`apigen library --help` opens by naming what a library can be made from: each `from-*` command's source."""
    sources = {"from-python": "Python", "from-openapi": "OpenAPI", "from-mcp": "MCP", "from-toolbench": "ToolBench"}
    library = typer.main.get_group(app).commands["library"]
    importers = sorted(name for name in getattr(library, "commands", {}) if name.startswith("from-"))
    assert importers == sorted(sources)
    summary = invoke(runner, "library", "--help").stdout.split("Options:")[0]
    for source in sources.values():
        assert source in summary, f"`apigen library --help` does not name {source}"


def test_the_documentation_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict` (as `make docs` and CI run it): a broken link, a page left out of the nav or an unknown
    anchor fails it; it builds offline (no Google fonts, no plugin that fetches)."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=PROJECT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    page = (tmp_path / "site" / "index.html").read_text()
    assert "fonts.googleapis.com" not in page and "fonts.gstatic.com" not in page
