"""Strict parsing of teacher outputs into the closed label set: anything else is a counted failure.
The ``label`` and ``cot_json`` parsers live here, the structured kinds' in their own modules;
``parse`` picks one by prompt kind."""

from __future__ import annotations

import re

from synthdistill.annotation.multi_label_parsing import parse_labels_json
from synthdistill.annotation.span_parsing import parse_spans_json
from synthdistill.tasks.base import EMPTY, INVALID_JSON, NOT_A_LABEL, OK, Parsed, first_json, match_label

# Lines end at these only: str.splitlines also splits at U+0085, U+2028 and U+2029, which a label may hold.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_label(output: str, labels: list[str]) -> Parsed:
    """A ``label`` prompt's answer must be one label word (its first line may carry it)."""
    if not output or not output.strip():
        return Parsed(None, None, EMPTY)
    # The whole answer first: a label may hold what str.strip() or a line split would cut.
    label = match_label(output, labels) or match_label(_LINE_BREAK.split(output.strip())[0], labels)
    return Parsed(label, None, OK if label else NOT_A_LABEL)


def parse_cot_json(output: str, labels: list[str]) -> Parsed:
    """A ``cot_json`` answer must hold a JSON object whose ``label`` is in the label set."""
    if not output or not output.strip():
        return Parsed(None, None, EMPTY)
    value = first_json(output, lambda value: value if isinstance(value, dict) else None)
    if value is None:
        return Parsed(None, None, INVALID_JSON)
    reason = value.get("reason")
    reason = str(reason) if reason is not None else None
    raw_label = value.get("label")
    label = match_label(raw_label, labels) if isinstance(raw_label, str) else None
    return Parsed(label, reason, OK if label else NOT_A_LABEL)


PARSERS = {"label": parse_label, "cot_json": parse_cot_json}


def parse(kind: str, output: str, labels: list[str], text: str | None = None) -> Parsed:
    """Parse one output with the parser of its prompt kind. ``text`` is the item's text (spans are
    located in it). The structured kinds' ``Parsed.label`` is their canonical JSON (synthdistill.tasks)."""
    if kind == "labels_json":
        return parse_labels_json(output, labels)
    if kind == "spans_json":
        return parse_spans_json(output, labels, text or "")
    return PARSERS[kind](output, labels)
