"""Prompt templates: files with ``{text}`` and optionally ``{labels}`` and ``{examples}``, rendered into chat
messages. A multi_label ``label_scores`` template also has ``{label}``: it asks about one label at a
time and is rendered once per label (``load_template(..., per_label=True)``)."""

from __future__ import annotations

import re
from pathlib import Path

from synthdistill import SynthDistillError

PLACEHOLDERS = ("text", "labels", "examples", "label")
# ``{name}`` with a bare identifier inside is a placeholder; JSON such as {"label": ...} is not.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KNOWN = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
# A known name after an opening brace without its closing one: ``{labels`` or ``{text ``.
_UNBALANCED = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")(?![A-Za-z0-9_}])")
# A known name with spaces inside its braces, ``{ labels }``: filled by nothing, it would reach the LLM as
# written. Only known names: JSON in a template (``{ "label": ... }``) has quotes and is left alone.
_BRACED = re.compile(r"\{\s*(" + "|".join(PLACEHOLDERS) + r")\s*\}")


def check_template(template: str, where: str, per_label: bool = False) -> None:
    """Refuse what would otherwise reach the LLM literally: an unknown placeholder, an unclosed one, one
    with spaces inside its braces (``{ labels }``), or no ``{text}`` at all. ``{label}`` belongs to
    per-label templates only (multi_label ``label_scores``), and they must have it: elsewhere it is most
    likely a misspelt ``{labels}``, and a per-label question without it would ask the same about every
    label."""
    spaced = next((m for m in _BRACED.finditer(template) if m.group(0) != "{" + m.group(1) + "}"), None)
    if spaced:
        line = template[: spaced.start()].count("\n") + 1
        raise SynthDistillError(
            f"{where}: line {line}: {spaced.group(0)!r} has spaces inside its braces, so it would be sent as written; "
            f"write {{{spaced.group(1)}}}"
        )
    if "{text}" not in template:
        raise SynthDistillError(f"{where} has no {{text}} placeholder")
    allowed = PLACEHOLDERS if per_label else tuple(name for name in PLACEHOLDERS if name != "label")
    unknown = sorted({name for name in _PLACEHOLDER.findall(template) if name not in allowed})
    if unknown:
        hint = " ({label} is for multi_label label_scores prompts, which ask about one label at a time)"
        raise SynthDistillError(
            f"{where}: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"the placeholders are {', '.join('{' + n + '}' for n in allowed)}" + (hint if "label" in unknown else "")
        )
    unbalanced = _UNBALANCED.search(template)
    if unbalanced:
        line = template[: unbalanced.start()].count("\n") + 1
        raise SynthDistillError(f"{where}: line {line}: {{{unbalanced.group(1)} has no closing brace")
    if per_label and "{label}" not in template:
        raise SynthDistillError(
            f"{where} has no {{label}} placeholder: a multi_label label_scores prompt asks about one label at a "
            "time, the template filled with each label in turn"
        )


def load_template(path: str | Path, per_label: bool = False) -> str:
    """Read a template and check its placeholders (``per_label``: a template asked once per label)."""
    path = Path(path)
    if not path.exists():
        raise SynthDistillError(f"prompt template {path} does not exist")
    template = path.read_text()
    check_template(template, f"prompt template {path}", per_label)
    return template


# A multi_label label_scores prompt asks one yes/no question per label (``per_label``, derived from
# the task, not a user setting); a label is in the answer when P(yes)/(P(yes)+P(no)) >= threshold.
PER_LABEL_DEFAULTS = {"threshold": 0.5}

ALIAS_KINDS = ("letters",)


def answer_aliases(labels: list[str], aliases: str | None) -> list[str]:
    """What the teacher answers for each label: the label itself, or with ``aliases: letters`` a
    single-token letter (A, B, C, ...) listed next to the label in the prompt."""
    if not aliases:
        return list(labels)
    if aliases not in ALIAS_KINDS:
        raise SynthDistillError(f"aliases: {aliases!r} is not one of {ALIAS_KINDS}")
    if len(labels) > 26:
        raise SynthDistillError(f"aliases: letters: {len(labels)} labels, but there are only 26 letters")
    return [chr(ord("A") + i) for i in range(len(labels))]


def labels_text(labels: list[str], aliases: str | None = None) -> str:
    """What ``{labels}`` becomes: ``positive, negative`` or, with letters, ``A: positive, B: negative``."""
    if not aliases:
        return ", ".join(labels)
    return ", ".join(f"{alias}: {label}" for alias, label in zip(answer_aliases(labels, aliases), labels, strict=True))


def render(
    template: str,
    text: str,
    labels: list[str],
    aliases: str | None = None,
    examples: str = "",
    label: str | None = None,
) -> str:
    """Fill the placeholders; ``{label}`` is the one label a per-label question asks about.

    One pass over the template rather than ``str.format`` or chained replaces: templates can show
    JSON braces unescaped, and a ``{text}`` inside an example or a text is never filled in.
    """
    values = {"text": text, "labels": labels_text(labels, aliases), "examples": examples, "label": label or ""}
    return _KNOWN.sub(lambda match: values[match.group(1)], template)


def messages_for(
    template: str,
    text: str,
    labels: list[str],
    system: str | None = None,
    aliases: str | None = None,
    shots: list[tuple[str, str]] | None = None,
    examples: str = "",
    label: str | None = None,
) -> list[dict[str, str]]:
    """The chat messages a teacher receives for one text. ``examples`` fills ``{examples}``;
    ``shots`` are few-shot examples as prior (user, assistant) turns, each user turn being the
    template filled with an example's text; ``label`` fills ``{label}``."""
    messages = [{"role": "system", "content": system}] if system else []
    for user, assistant in shots or []:
        messages.append({"role": "user", "content": render(template, user, labels, aliases)})
        messages.append({"role": "assistant", "content": assistant})
    messages.append({"role": "user", "content": render(template, text, labels, aliases, examples, label)})
    return messages
