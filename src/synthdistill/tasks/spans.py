"""``spans``: labelled character spans per text (docs/spans.md). One item's spans are stored as the
canonical JSON list of ``{"start", "end", "label"}`` (``end`` exclusive) sorted by
(start, end, label), so that equal answers are equal strings whatever order they were found in.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from synthdistill.tasks.base import StudentCard, Task

TASK = Task(
    name="spans",
    description="labelled character spans per text",
    prompt_kinds=("spans_json",),
    steps={
        "vote": "synthdistill.labels.span_vote:write_votes",
        "export_review": "synthdistill.labels.span_review:export_review",
        "import_review": "synthdistill.labels.span_corrections:import_review",
        "train_student": "synthdistill.students.span_files:train_from_files",
        "export_onnx": "synthdistill.students.span_onnx:write_span_onnx_export",
        "evaluate_teacher": "synthdistill.evaluation.span_scoring:evaluate_teacher",
        "evaluate_student": "synthdistill.evaluation.span_scoring:evaluate_student",
        "report": "synthdistill.reporting.span_report:write_report",
        "expert_answers": "synthdistill.data.spans:expert_spans",
        "label_counts": "synthdistill.data.spans:spans_per_label",
    },
    features=frozenset({"bio_tags", "text_offsets"}),
    review_files=("label_studio", "label_studio_config", "argilla"),
    card=StudentCard(
        "token-classification",
        ("token-classification", "named-entity-recognition"),
        "entity F1",
        "entity_f1_difference_points",
    ),
)


class Span(NamedTuple):
    start: int
    end: int
    label: str


def to_json(spans: list[Span] | set[Span]) -> str:
    """The canonical JSON of a set of spans (``[]`` for none)."""
    ordered = sorted(set(spans))
    return json.dumps([{"start": s.start, "end": s.end, "label": s.label} for s in ordered], ensure_ascii=False)


def from_json(value: str | None) -> list[Span]:
    """The spans of a canonical JSON answer (none for a missing answer: None or a NaN cell)."""
    if not isinstance(value, str):
        return []
    return [Span(int(s["start"]), int(s["end"]), str(s["label"])) for s in json.loads(value)]


def overlapping(spans: list[Span]) -> tuple[Span, Span] | None:
    """The first two spans that share a character, else None."""
    ordered = sorted(spans)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.start < before.end:
            return before, after
    return None


def as_dicts(spans: list[Span], text: str) -> list[dict[str, Any]]:
    """Spans with the text they cover, for people reading an artifact."""
    return [{"start": s.start, "end": s.end, "label": s.label, "text": text[s.start : s.end]} for s in spans]
