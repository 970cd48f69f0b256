"""Parse a ``spans_json`` answer: a JSON list of ``{"text", "label"}`` located in the item's text.

Each span's text is looked up exactly (case and spacing as written) in the item's text; a text named
again takes its next occurrence, so the k-th mention of "Acme" in an answer is the k-th "Acme" in the
text and no occurrence is used twice. A span that cannot be found that way, or a label outside the
closed set, makes the whole answer a counted failure (``not_a_label``, with the span named in
``reason``): an offset is never guessed, and a partly located answer is not passed off as complete.
"""

from __future__ import annotations

from typing import Any

from synthdistill.tasks.base import EMPTY, INVALID_JSON, NOT_A_LABEL, OK, Parsed, first_json, match_label
from synthdistill.tasks.spans import Span, to_json

# Longest span text and most spans a constrained answer may hold: bounds that keep a small model
# from writing until max_tokens, far above what a sentence or paragraph of entities needs.
MAX_SPAN_CHARS = 120
MAX_SPANS = 32


def spans_json_schema(labels: list[str]) -> dict[str, Any]:
    """The answer's JSON schema for constrained decoding. An object at the root (OpenAI's structured
    outputs require one); the parser also takes a bare list."""
    span = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_SPAN_CHARS},
            "label": {"type": "string", "enum": list(labels)},
        },
        "required": ["text", "label"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"spans": {"type": "array", "items": span, "maxItems": MAX_SPANS}},
        "required": ["spans"],
        "additionalProperties": False,
    }


def _spans_answer(value: Any) -> list[Any] | None:
    # A JSON list, or an object with a ``spans`` list.
    if isinstance(value, list):
        return value
    return value["spans"] if isinstance(value, dict) and isinstance(value.get("spans"), list) else None


def locate(answers: list[tuple[str, str]], text: str) -> tuple[list[Span], str | None]:
    """Character spans of (span text, label) pairs, in answer order: each text's next unused
    occurrence. Returns the spans, or the reason the first one that cannot be located fails."""
    used: set[tuple[int, int]] = set()
    spans = []
    for number, (mention, label) in enumerate(answers, start=1):
        start = text.find(mention)
        while start != -1 and (start, start + len(mention)) in used:
            start = text.find(mention, start + 1)
        if start == -1:
            seen = text.count(mention)
            why = "is not in the text" if not seen else f"occurs {seen} time(s) in the text, fewer than it is named"
            return [], f"span {number} {mention!r} {why}"
        used.add((start, start + len(mention)))
        spans.append(Span(start, start + len(mention), label))
    return spans, None


def parse_spans_json(output: str, labels: list[str], text: str) -> Parsed:
    """A ``spans_json`` answer: its spans as canonical JSON (``[]`` for none found), or a failure."""
    if not output or not output.strip():
        return Parsed(None, None, EMPTY)
    items = first_json(output, _spans_answer)
    if items is None:
        return Parsed(None, None, INVALID_JSON)
    answers = []
    for number, item in enumerate(items, start=1):
        mention = item.get("text") if isinstance(item, dict) else None
        raw_label = item.get("label") if isinstance(item, dict) else None
        if not isinstance(mention, str) or not mention.strip() or not isinstance(raw_label, str):
            return Parsed(None, f"span {number} is not an object with a text and a label: {item!r}", NOT_A_LABEL)
        label = match_label(raw_label, labels)
        if label is None:
            return Parsed(None, f"span {number} {mention!r} has label {raw_label!r}, not in the label set", NOT_A_LABEL)
        # Surrounding spaces are no part of a mention; stripping them moves no offset.
        answers.append((mention.strip(), label))
    spans, failure = locate(answers, text)
    if failure:
        return Parsed(None, failure, NOT_A_LABEL)
    return Parsed(to_json(spans), None, OK)
