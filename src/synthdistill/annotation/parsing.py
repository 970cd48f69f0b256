"""Strict parsing of teacher outputs into the closed label set: anything else is a counted failure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

OK = "ok"
NOT_A_LABEL = "not_a_label"
INVALID_JSON = "invalid_json"
EMPTY = "empty"
ERROR = "request_error"

# Markup a chat model wraps around a bare word; stripping it never turns one label into another.
_WRAPPING = " \t\r\n\"'`*_.:;!()[]"


@dataclass(frozen=True)
class Parsed:
    label: str | None
    reason: str | None
    status: str


def match_label(answer: str, labels: list[str]) -> str | None:
    """The label the answer names exactly (case-insensitive, markup stripped), else None."""
    cleaned = answer.strip(_WRAPPING).lower()
    by_lower = {label.lower(): label for label in labels}
    return by_lower.get(cleaned)


def parse_label(output: str, labels: list[str]) -> Parsed:
    """A ``label`` prompt's answer must be one label word (its first line may carry it)."""
    if not output or not output.strip():
        return Parsed(None, None, EMPTY)
    first_line = output.strip().splitlines()[0]
    label = match_label(first_line, labels)
    return Parsed(label, None, OK if label else NOT_A_LABEL)


def _first_json_object(output: str) -> dict | None:
    # Models often fence JSON in ```json blocks; take the first {...} that decodes to an object.
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", output):
        try:
            value, _ = decoder.raw_decode(output, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_cot_json(output: str, labels: list[str]) -> Parsed:
    """A ``cot_json`` answer must hold a JSON object whose ``label`` is in the label set."""
    if not output or not output.strip():
        return Parsed(None, None, EMPTY)
    value = _first_json_object(output)
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
        from synthdistill.annotation.multi_label_parsing import parse_labels_json

        return parse_labels_json(output, labels)
    if kind == "spans_json":
        from synthdistill.annotation.span_parsing import parse_spans_json

        return parse_spans_json(output, labels, text or "")
    return PARSERS[kind](output, labels)
