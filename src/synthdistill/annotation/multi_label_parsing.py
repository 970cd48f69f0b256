"""Parsing a ``labels_json`` answer (task multi_label): a JSON list of labels from the closed set.

The constrained-decoding schema puts the list in an object, ``{"labels": [...]}``, because OpenAI's
structured outputs need an object at the root; a bare JSON list is accepted too (an unconstrained
teacher often writes one). An empty list is a valid answer; an unknown label fails the whole answer
(status NOT_A_LABEL, the label named in ``reason``) rather than being dropped, so a teacher that
invents labels shows up in the failure counts.
"""

from __future__ import annotations

from typing import Any

from synthdistill.tasks.base import EMPTY, INVALID_JSON, NOT_A_LABEL, OK, Parsed, first_json, match_label
from synthdistill.tasks.multi_label import label_set_json


def labels_json_schema(labels: list[str]) -> dict[str, Any]:
    """The JSON schema of a ``labels_json`` answer for constrained decoding. At most one entry per
    label keeps a small model from looping until max_tokens."""
    return {
        "type": "object",
        "properties": {
            "labels": {"type": "array", "items": {"type": "string", "enum": list(labels)}, "maxItems": len(labels)}
        },
        "required": ["labels"],
        "additionalProperties": False,
    }


def _labels_answer(value: Any) -> Any:
    # A JSON list, or an object with a ``labels`` key.
    return value if isinstance(value, list) or (isinstance(value, dict) and "labels" in value) else None


def parse_labels_json(output: str, labels: list[str]) -> Parsed:
    if not output or not output.strip():
        return Parsed(None, None, EMPTY)
    value = first_json(output, _labels_answer)
    if isinstance(value, dict):
        value = value["labels"]
    if not isinstance(value, list):
        return Parsed(None, None, INVALID_JSON)
    chosen = []
    for member in value:
        label = match_label(member, labels) if isinstance(member, str) else None
        if label is None:
            return Parsed(None, f"unknown label {member!r}", NOT_A_LABEL)
        chosen.append(label)
    return Parsed(label_set_json(chosen, labels), None, OK)
