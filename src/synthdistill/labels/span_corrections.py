"""People's corrections to voted spans, applied with the single-label checks and audit trail
(labels.corrections): only what a correction holds differs.

A corrected answer is a text's whole span set: from a Label Studio export, the ``labels`` regions of
the last annotation of each task (none: no entity); from an Argilla records export, the last
submitted answer to the ``spans`` question (``[]``: no entity); in CSV/XLSX (id, label[, reviewer]),
the span JSON list the review files use. Each set is checked against its item's text (offsets inside it, known
labels, no overlap); a bad one stops the import naming the file and row, and nothing is applied.

A span that carries its ``text`` (Label Studio regions do) is checked against the document: tools
that count offsets in UTF-16 code units or bytes shift every offset after an emoji, so ``start`` and
``end`` may point next to the text the reviewer marked. Such a span moves to the exact occurrence of
its text nearest to the given start (the earlier of two as near: those shifts only ever move offsets
later), with a warning; a text the document does not contain stops the import naming the row.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.data.spans import row_spans
from synthdistill.labels.corrections import (
    COLUMNS,
    apply_corrections,
    import_review_step,
    is_label_studio,
    label_studio_reviews,
    label_studio_value,
    read_corrections,
    with_answers,
)
from synthdistill.labels.span_review import ARGILLA_QUESTION
from synthdistill.tasks.spans import to_json

log = logging.getLogger(__name__)

# The control name of our spans review export (labels.span_review).
QUESTION = "label"


def _region_spans(result: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One ``labels`` region as spans (one per label), with the text it says it covers."""
    value = result.get("value", {})
    labels = label_studio_value(result, "labels", where)
    covered = {"text": value["text"]} if "text" in value else {}
    return [{"start": value.get("start"), "end": value.get("end"), "label": label, **covered} for label in labels]


def _label_studio_spans(tasks: list[Any], source: str) -> list[dict[str, Any]]:
    def answer(results: list[dict[str, Any]], where: str) -> str:
        regions = [r for r in results if r.get("type") == "labels" and r.get("from_name", QUESTION) == QUESTION]
        return json.dumps([span for region in regions for span in _region_spans(region, where)], ensure_ascii=False)

    return label_studio_reviews(tasks, answer, source)


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
    if isinstance(tasks, list) and is_label_studio(tasks):
        return pd.DataFrame(_label_studio_spans(tasks, str(path)), columns=COLUMNS)
    # Argilla records (a list, or {"records": [...]}); a span answer is a list of {start, end, label}.
    corrections = read_corrections(path, question=ARGILLA_QUESTION)
    return corrections.assign(
        label=[_as_text(value) for value in corrections["label"]],
        answers=[[{**a, "label": _as_text(a["label"])} for a in answers] for answers in corrections["answers"]],
    )


def _as_text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _offset(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def nearest_occurrence(text: str, fragment: str, start: int) -> int | None:
    """The start of the exact occurrence of ``fragment`` in ``text`` nearest to ``start`` (the earlier
    of two as near), or None when the text does not contain it."""
    best = None
    position = text.find(fragment)
    while position != -1:
        if best is None or abs(position - start) < abs(best - start):
            best = position
        position = text.find(fragment, position + 1)
    return best


def aligned_spans(value: Any, text: str, where: str) -> Any:
    """The answer with every span that carries a ``text`` moved onto that text (see the module's
    docstring); an answer that is not a JSON list of objects is returned as it is, for
    data_spans.row_spans to name."""
    try:
        spans = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return value
    if not isinstance(spans, list):
        return value
    aligned = []
    for number, span in enumerate(spans, start=1):
        fragment = span.get("text") if isinstance(span, dict) else None
        start, end = (_offset(span.get("start")), _offset(span.get("end"))) if isinstance(span, dict) else (None, None)
        if not isinstance(fragment, str) or not fragment or start is None or end is None:
            aligned.append(span)
            continue
        covered = text[start:end] if 0 <= start <= end else ""
        if covered == fragment:
            aligned.append(span)
            continue
        found = nearest_occurrence(text, fragment, start)
        if found is None:
            raise SynthDistillError(
                f"{where}: span {number} [{start}, {end}) covers {covered!r}, not its text {fragment!r}, and the "
                "item's text does not contain that text; correct the region in the export"
            )
        log.warning(
            "%s: span %d [%d, %d) covers %r, not its text %r; moved to its nearest occurrence [%d, %d)",
            where,
            number,
            start,
            end,
            covered,
            fragment,
            found,
            found + len(fragment),
        )
        aligned.append({**span, "start": found, "end": found + len(fragment)})
    return aligned


def canonical_answer(value: Any, text: str, labels: list[str], where: str) -> str:
    """One answer as canonical span JSON, aligned on its texts and checked against the item's text."""
    return to_json(row_spans(aligned_spans(value, text, where), text, labels, where))


def canonical_corrections(
    corrections: pd.DataFrame, votes: pd.DataFrame, labels: list[str], source: str
) -> pd.DataFrame:
    """Every correction as canonical span JSON, checked against its item's text; the first bad one
    stops naming the file and row (an unknown id is left for labels.corrections to name)."""
    texts = votes.assign(id=votes["id"].astype(str)).set_index("id")["text"]
    corrections = with_answers(corrections)
    canonical, every = [], []
    for row, item_id, value, answers in zip(
        corrections["row"], corrections["id"], corrections["label"], corrections["answers"], strict=True
    ):
        if item_id not in texts.index or value is None:
            canonical.append(value)
            every.append(answers)
            continue
        where = f"{source}: row {row} (id {item_id})"
        text = str(texts[item_id])
        label = canonical_answer(value, text, labels, where)
        canonical.append(label)
        # The applied answer is one of the answers: checked (and any move logged) once, above.
        done = {json.dumps(value, sort_keys=True, default=str): label}
        every.append([{**a, "label": _audit_answer(a["label"], text, labels, where, done)} for a in answers])
    return corrections.assign(label=canonical, answers=pd.Series(every, index=corrections.index, dtype=object))


def _audit_answer(value: Any, text: str, labels: list[str], where: str, done: dict[str, str]) -> Any:
    # Another reviewer's answer only goes into the audit: canonical when it can be, else as given.
    key = json.dumps(value, sort_keys=True, default=str)
    if key in done:
        return done[key]
    try:
        return canonical_answer(value, text, labels, where) if value is not None else None
    except SynthDistillError:
        return value


def _span_import(
    votes: pd.DataFrame, corrections_path: str | None, labels: list[str], settings: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The import_review step of task spans: the reviewed spans students train on, and the audit."""
    corrections = None
    if corrections_path:
        corrections = canonical_corrections(read_span_corrections(corrections_path), votes, labels, corrections_path)
    return apply_corrections(
        votes,
        corrections,
        labels,
        str(corrections_path),
        label_problem=lambda value: "no spans given (write [] for a text without entities)" if value is None else None,
    )


import_review = partial(import_review_step, kind_import=_span_import)
