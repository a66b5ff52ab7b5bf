"""The manual's pages: the README and the pages of docs/, and the one that holds a given heading.

Sections move between the README and the pages; a test that runs a section's examples finds the
section by its heading (or a phrase of its own) wherever it now is, and fails if two pages hold it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from .conftest import PROJECT

#: the README first, then every page of the site, in name order
PAGES: tuple[Path, ...] = (PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md")))


def page_name(page: Path) -> str:
    return str(page.relative_to(PROJECT))


def page_with(marker: str) -> str:
    """The text of the one page that holds ``marker`` (a heading such as "### `apigen export`", or a phrase)."""
    found = [page for page in PAGES if marker in page.read_text()]
    assert len(found) == 1, f"{marker!r} should be on one page, not on {[page_name(page) for page in found] or 'none'}"
    return found[0].read_text()


class SectionRun(NamedTuple):
    """What a section's example shows (its `# ` lines), and what its commands said."""

    shown: list[str]
    said: list[str]  # the last command's stderr lines
    printed: list[str]  # every command's stdout lines, in turn


def run_section_example(heading: str, cwd: Path) -> SectionRun:
    """Run the first ```sh block after ``heading`` (a heading, or any text of a page), its `apigen` lines in turn
    in ``cwd`` (with the sample data linked in)."""
    block = page_with(heading).split(heading, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("apigen ")]
    shown = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    (cwd / "sample_data").symlink_to(PROJECT / "sample_data")
    apigen = str(Path(sys.executable).parent / "apigen")
    said, printed = "", ""
    for command in commands:
        done = subprocess.run([apigen, *shlex.split(command)[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        said, printed = done.stderr, printed + done.stdout
    return SectionRun(shown, said.splitlines(), printed.splitlines())
