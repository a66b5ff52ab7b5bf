"""Loading and filling the prompt templates in ``prompts/``.

Templates are plain text so that people can read and change them without
touching code; ``--prompts DIR`` swaps in a folder of the same layout, sub-folder
by sub-folder. A template has ``=== system ===`` and ``=== user ===`` parts and
``$name`` variables (``string.Template``), so JSON braces need no escaping.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from ..config import QUERY_STYLES
from ..errors import ConfigError

STYLES = QUERY_STYLES


def builtin_prompts_dir() -> Path:
    """The prompts shipped with apigen: inside the installed package, or the source tree's ``prompts/``."""
    package = Path(__file__).resolve().parent.parent  # apigen_cli/
    packaged = package / "prompts"
    if packaged.is_dir():
        return packaged
    return package.parent.parent / "prompts"


@dataclass(frozen=True)
class Template:
    """A chat prompt with a system part and a user part."""

    name: str
    system: str
    user: str
    source: str

    def render(self, **values: str) -> list[dict[str, str]]:
        """The chat messages with the variables filled in; a missing variable is a ``ConfigError``."""
        try:
            system = string.Template(self.system).substitute(values)
            user = string.Template(self.user).substitute(values)
        except KeyError as missing:
            raise ConfigError(
                f"prompt template `{self.source}` uses the variable ${missing.args[0]}, which apigen does not provide",
                hint=f"the variables are: {', '.join('$' + name for name in sorted(values))}",
            ) from None
        except ValueError as error:
            raise ConfigError(
                f"prompt template `{self.source}` is malformed: {error}", hint="write a literal dollar sign as $$"
            ) from None
        messages = [{"role": "system", "content": system.strip()}] if system.strip() else []
        messages.append({"role": "user", "content": user.strip()})
        return messages


def parse_template(text: str, name: str, source: str) -> Template:
    """Split a template file into its ``=== system ===`` and ``=== user ===`` parts."""
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        marker = line.strip().lower()
        if marker in ("=== system ===", "=== user ==="):
            current = parts.setdefault(marker.strip("= ").strip(), [])
            continue
        if current is None:
            if line.strip():
                current = parts.setdefault("user", [])
            else:
                continue
        current.append(line)
    if "user" not in parts:
        raise ConfigError(f"prompt template `{source}` has no `=== user ===` part", hint="see prompts/README.md for the layout")
    return Template(name, "\n".join(parts.get("system", [])), "\n".join(parts["user"]), source)


@dataclass(frozen=True)
class PromptSet:
    """Every prompt a run uses: generator templates, style instructions, the judge."""

    generators: tuple[Template, ...]
    styles: dict[str, str]
    judge: Template


def _folder(base: Path, override: Path | None, name: str) -> Path:
    if override is not None and (override / name).is_dir():
        return override / name
    return base / name


def load_prompts(override: str | None = None) -> PromptSet:
    """Load the built-in prompts, with the sub-folders of ``override`` taking their place."""
    base = builtin_prompts_dir()
    custom = _custom_folder(override)
    generator_dir = _folder(base, custom, "generator")
    generators = tuple(
        parse_template(path.read_text(encoding="utf-8"), path.stem, str(path)) for path in sorted(generator_dir.glob("*.txt"))
    )
    if not generators:
        raise ConfigError(
            f"no generator templates (*.txt) in `{generator_dir}`", hint="add at least one template, see prompts/README.md"
        )
    styles_dir = _folder(base, custom, "styles")
    styles = {}
    for style in STYLES:
        path = styles_dir / f"{style}.txt"
        if not path.is_file():
            raise ConfigError(f"the style instruction `{path}` is missing", hint=f"every style needs one: {', '.join(STYLES)}")
        styles[style] = path.read_text(encoding="utf-8").strip()
    judge = load_prompt_pair("judge", override)
    return PromptSet(generators, styles, judge)


def load_prompt_pair(name: str, override: str | None = None) -> Template:
    """The prompt in the sub-folder ``name`` (``system.txt`` and ``user.txt``), from ``override`` when it has one."""
    custom = _custom_folder(override)
    folder = _folder(builtin_prompts_dir(), custom, name)
    try:
        system = (folder / "system.txt").read_text(encoding="utf-8")
        user = (folder / "user.txt").read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"the {name} prompt in `{folder}` cannot be read: {error}", hint="it needs system.txt and user.txt"
        ) from None
    return Template(name, system, user, str(folder / "user.txt"))


def _custom_folder(override: str | None) -> Path | None:
    custom = Path(override) if override else None
    if custom is not None and not custom.is_dir():
        raise ConfigError(
            f"`--prompts` names `{override}`, which is not a folder", hint="give a folder laid out like prompts/ (see its README)"
        )
    return custom
