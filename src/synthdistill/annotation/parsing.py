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

# Markup a chat model wraps around a bare word (``**neutral**``, ``"neutral".``, ``(neutral)``).
_WRAPPING = frozenset(" \t\r\n\"'`*_.:;!()[]")


@dataclass(frozen=True)
class Parsed:
    label: str | None
    reason: str | None
    status: str


def _wrapped_in_markup(answer: str, label: str) -> bool:
    """Whether ``answer`` is ``label`` with only markup characters before and after it (both lower-cased).
    The label itself is never stripped, so a label that begins or ends with those characters
    (``U.S.``, ``Other (specify)``) still matches: the markup is what the answer has beyond it."""
    start = answer.find(label)
    while start != -1:
        before, after = answer[:start], answer[start + len(label) :]
        if _WRAPPING.issuperset(before) and _WRAPPING.issuperset(after):
            return True
        if not _WRAPPING.issuperset(before):
            return False  # a later occurrence has even more in front of it
        start = answer.find(label, start + 1)
    return False


def match_label(answer: str, labels: list[str]) -> str | None:
    """The label the answer names, else None: the label exactly as written first (so an exact answer
    always parses to itself, whatever its punctuation), then ignoring case (labels that differ only in
    case are refused by settings.check_labels), then the one label the answer wraps in markup. When
    markup could be read two ways (labels ``U.S`` and ``U.S.``, answer ``**U.S.**``) nothing is guessed."""
    stripped = answer.strip()
    if stripped in labels:
        return stripped
    lowered = stripped.lower()
    for label in labels:
        if label.lower() == lowered:
            return label
    wrapped = [label for label in labels if _wrapped_in_markup(lowered, label.lower())]
    return wrapped[0] if len(wrapped) == 1 else None


# Lines end at these only: str.splitlines also splits at U+0085, U+2028 and U+2029, which a label may hold.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_label(output: str, labels: list[str]) -> Parsed:
    """A ``label`` prompt's answer must be one label word (its first line may carry it)."""
    if not output or not output.strip():
        return Parsed(None, None, EMPTY)
    # The whole answer first: a label may hold what str.strip() or a line split would cut.
    label = match_label(output, labels) or match_label(_LINE_BREAK.split(output.strip())[0], labels)
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
