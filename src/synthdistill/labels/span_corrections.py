"""People's corrections to voted spans, applied with the single-label checks and audit trail
(labels.corrections): only what a correction holds differs.

A corrected answer is a text's whole span set: from a Label Studio export, the ``labels`` regions of
the last annotation of each task (none: no entity); from an Argilla records export, the last
submitted answer to the ``spans`` question (``[]``: no entity); in CSV/XLSX (id, label[, reviewer]),
the span JSON list the review files use. Each set is checked against its item's text (offsets inside it, known
labels, no overlap); a bad one stops the import naming the file and row, and nothing is applied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.data_spans import row_spans
from synthdistill.errors import SynthDistillError
from synthdistill.labels.corrections import COLUMNS, apply_corrections, label_studio_reviews, read_corrections
from synthdistill.labels.review import write_csv
from synthdistill.labels.span_review import ARGILLA_QUESTION
from synthdistill.spans import to_json

# The control name of our spans review export (labels.span_review).
QUESTION = "label"


def _label_studio_spans(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def answer(results: list[dict[str, Any]]) -> str:
        spans = [
            {"start": result["value"].get("start"), "end": result["value"].get("end"), "label": label}
            for result in results
            if result.get("type") == "labels" and result.get("from_name", QUESTION) == QUESTION
            for label in result.get("value", {}).get("labels", [])
        ]
        return json.dumps(spans)

    return label_studio_reviews(tasks, answer)


def read_span_corrections(path: str | Path) -> pd.DataFrame:
    """``row, id, label (span JSON, or the answer as given), reviewer`` from a Label Studio export, an
    Argilla records export or a CSV/XLSX file."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return read_corrections(path)
    if not path.exists():
        raise SynthDistillError(f"review.corrections: file {path} does not exist")
    try:
        tasks = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SynthDistillError(f"{path}: not valid JSON ({exc})") from exc
    if isinstance(tasks, list) and any(isinstance(t, dict) and ("data" in t or "annotations" in t) for t in tasks):
        return pd.DataFrame(_label_studio_spans(tasks), columns=COLUMNS)
    # Argilla records (a list, or {"records": [...]}); a span answer is a list of {start, end, label}.
    corrections = read_corrections(path, question=ARGILLA_QUESTION)
    answers = [
        value if value is None or isinstance(value, str) else json.dumps(value) for value in corrections["label"]
    ]
    return corrections.assign(label=answers)


def canonical_corrections(
    corrections: pd.DataFrame, votes: pd.DataFrame, labels: list[str], source: str
) -> pd.DataFrame:
    """Every correction as canonical span JSON, checked against its item's text; the first bad one
    stops naming the file and row (an unknown id is left for labels.corrections to name)."""
    texts = votes.assign(id=votes["id"].astype(str)).set_index("id")["text"]
    canonical = []
    for row, item_id, value in zip(corrections["row"], corrections["id"], corrections["label"], strict=True):
        if item_id not in texts.index or value is None:
            canonical.append(value)
            continue
        canonical.append(to_json(row_spans(value, str(texts[item_id]), labels, f"{source}: row {row} (id {item_id})")))
    return corrections.assign(label=canonical)


def import_span_review(
    votes_path: str, corrections_path: str | None, labels: list[str], labels_out: str, audit_out: str
) -> pd.DataFrame:
    """The import_review rule of task spans: the reviewed spans students train on, and the audit."""
    votes = pd.read_parquet(votes_path)
    corrections = None
    if corrections_path:
        corrections = canonical_corrections(read_span_corrections(corrections_path), votes, labels, corrections_path)
    spans = votes.rename(columns={"voted_label": "label"})
    reviewed, audit = apply_corrections(
        spans,
        corrections,
        labels,
        str(corrections_path),
        label_problem=lambda value: "no spans given (write [] for a text without entities)" if value is None else None,
    )
    reviewed.to_parquet(labels_out, index=False)
    write_csv(audit, audit_out)
    return audit
