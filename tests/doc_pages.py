"""The manual's pages: the README and the pages of docs/, and the one that holds a given heading.

Sections move between the README and the pages; a test that runs a section's examples finds the
section by its heading (or a phrase of its own) wherever it now is, and fails if two pages hold it.
"""

from __future__ import annotations

from pathlib import Path

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
