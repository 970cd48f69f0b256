"""Prompt templates: files with ``{text}`` and optionally ``{labels}``, rendered into chat messages."""

from __future__ import annotations

import re
from pathlib import Path

from synthdistill.errors import SynthDistillError

PLACEHOLDERS = ("text", "labels")
# ``{name}`` with a bare identifier inside is a placeholder; JSON such as {"label": ...} is not.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A known name after an opening brace without its closing one: ``{labels`` or ``{text ``.
_UNBALANCED = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")(?![A-Za-z0-9_}])")


def check_template(template: str, where: str) -> None:
    """Refuse what would otherwise reach the LLM literally: an unknown placeholder, an unclosed one,
    or no ``{text}`` at all."""
    if "{text}" not in template:
        raise SynthDistillError(f"{where} has no {{text}} placeholder")
    unknown = sorted({name for name in _PLACEHOLDER.findall(template) if name not in PLACEHOLDERS})
    if unknown:
        raise SynthDistillError(
            f"{where}: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"the placeholders are {', '.join('{' + n + '}' for n in PLACEHOLDERS)}"
        )
    unbalanced = _UNBALANCED.search(template)
    if unbalanced:
        line = template[: unbalanced.start()].count("\n") + 1
        raise SynthDistillError(f"{where}: line {line}: {{{unbalanced.group(1)} has no closing brace")


def load_template(path: str | Path) -> str:
    """Read a template and check its placeholders."""
    path = Path(path)
    if not path.exists():
        raise SynthDistillError(f"prompt template {path} does not exist")
    template = path.read_text()
    check_template(template, f"prompt template {path}")
    return template


def render(template: str, text: str, labels: list[str]) -> str:
    """Fill the placeholders.

    Plain replacement rather than ``str.format`` so templates can show JSON braces unescaped.
    """
    return template.replace("{labels}", ", ".join(labels)).replace("{text}", text)


def messages_for(template: str, text: str, labels: list[str], system: str | None = None) -> list[dict[str, str]]:
    """The chat messages a teacher receives for one text."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": render(template, text, labels)})
    return messages
