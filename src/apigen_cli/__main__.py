"""``python -m apigen_cli``: the same as the ``apigen`` command."""

from .cli import run

run()
