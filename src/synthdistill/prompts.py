"""Prompt templates: files with ``{text}`` and optionally ``{labels}``, rendered into chat messages."""

from __future__ import annotations

from pathlib import Path

from synthdistill.errors import SynthDistillError


def load_template(path: str | Path) -> str:
    """Read a template and check it has the ``{text}`` placeholder."""
    path = Path(path)
    if not path.exists():
        raise SynthDistillError(f"prompt template {path} does not exist")
    template = path.read_text()
    if "{text}" not in template:
        raise SynthDistillError(f"prompt template {path} has no {{text}} placeholder")
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
