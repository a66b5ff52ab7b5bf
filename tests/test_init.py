"""The public Python API: what `from apigen_cli import ...` offers, and that it needs no CLI."""

from __future__ import annotations

import subprocess
import sys

import apigen_cli


def test_every_exported_name_exists_and_is_listed_once() -> None:
    assert len(apigen_cli.__all__) == len(set(apigen_cli.__all__))
    for name in apigen_cli.__all__:
        assert hasattr(apigen_cli, name), name
    public = {
        name for name in dir(apigen_cli) if not name.startswith("_") and not isinstance(getattr(apigen_cli, name), type(sys))
    }
    assert public <= set(apigen_cli.__all__) | {"annotations"}


def test_the_library_does_not_import_typer_or_rich() -> None:
    code = "import sys, apigen_cli; print(sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
