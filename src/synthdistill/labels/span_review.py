"""Review files for task spans, most uncertain items first: Label Studio tasks whose ``Labels``
predictions are the voted spans (with the labelling config that shows them on the text), and an
Argilla 2.x dataset whose ``span`` question carries the voted spans as its suggestion."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from functools import partial
from typing import Any

import pandas as pd

from synthdistill.labels.review import export_review_step
from synthdistill.labels.review_records import ReviewExport, ReviewJob, argilla_record, config_text, label_studio_task
from synthdistill.tasks.spans import Span, from_json

# Items people can correct: test items stay as the frozen expert benchmark never seen in training.
REVIEWED_SPLITS = ("train", "validation")


def review_order(votes: pd.DataFrame) -> pd.DataFrame:
    """Train and validation items, the least agreed first (every iteration failed: first of all)."""
    items = votes.loc[votes["split"].isin(REVIEWED_SPLITS)].copy()
    items["rank_key"] = items["agreement"].where(items["label"].notna(), -1.0)
    return items.sort_values(["rank_key", "id"], kind="stable").drop(columns="rank_key").reset_index(drop=True)


def _span_scores(row: dict[str, Any], spans: list[Span]) -> list[float]:
    """Each voted span's own agreement (the share of the answering iterations that found it)."""
    agreement = {(d["start"], d["end"], d["label"]): d["agreement"] for d in json.loads(row["span_agreement"])}
    return [float(agreement.get((s.start, s.end, s.label), 0.0)) for s in spans]


def label_studio_span_tasks(votes: pd.DataFrame, model_version: str) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``data`` with the text, vote agreement and review rank;
    ``predictions`` with one ``labels`` region per voted span (scored by its own agreement)."""
    tasks = []
    for rank, row in enumerate(review_order(votes).to_dict("records"), start=1):
        data = {
            "id": str(row["id"]),
            "text": row["text"],
            "split": row["split"],
            "agreement": float(row["agreement"]),
            "answered": int(row["n_answered"]),
            "rank": rank,
        }
        regions = None
        if isinstance(row["label"], str):
            spans = from_json(row["label"])
            regions = [
                {
                    "id": f"{row['id']}-{number}",
                    "from_name": "label",
                    "to_name": "text",
                    "type": "labels",
                    "score": score,
                    "value": {
                        "start": span.start,
                        "end": span.end,
                        "text": row["text"][span.start : span.end],
                        "labels": [span.label],
                    },
                }
                for number, (span, score) in enumerate(zip(spans, _span_scores(row, spans), strict=True), start=1)
            ]
        tasks.append(label_studio_task(data, model_version, float(row["agreement"]), regions))
    return tasks


def label_studio_span_config(labels: list[str]) -> str:
    """The labelling config (ElementTree escapes labels such as ``R&D``)."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Teacher agreement: $agreement (review rank $rank)")
    spans = ET.SubElement(view, "Labels", name="label", toName="text")
    for label in labels:
        ET.SubElement(spans, "Label", value=label)
    ET.SubElement(view, "Text", name="text", value="$text", granularity="symbol")
    return config_text(view)


# The Argilla question and field names; labels.span_corrections reads responses to this question.
ARGILLA_QUESTION = "spans"
ARGILLA_FIELD = "text"


def argilla_span_records(votes: pd.DataFrame, labels: list[str], teacher: str, prompt: str) -> dict[str, Any]:
    """Argilla 2.x dataset settings and records, in the dict form of ``rg.Settings`` / ``rg.Record``,
    written without an Argilla server.

    The ``spans`` question is an ``rg.SpanQuestion`` over the ``text`` field. It is required (a
    dataset needs one required question to be published) and an empty answer is valid: no entity.
    Overlaps are off, as for expert spans and the vote. The suggestion's value is the voted spans
    (``{start, end, label}``, character offsets, end exclusive) with one score per span, its own
    agreement: Argilla rejects a single score for a list value. An item every iteration failed on has
    no suggestion.
    """
    records = []
    for rank, row in enumerate(review_order(votes).to_dict("records"), start=1):
        suggestions = {}
        if isinstance(row["label"], str):
            spans = from_json(row["label"])
            suggestions[ARGILLA_QUESTION] = {
                "value": [{"start": s.start, "end": s.end, "label": s.label} for s in spans],
                "score": _span_scores(row, spans),
                "agent": f"{teacher}/{prompt}",
            }
        metadata = {"answered": int(row["n_answered"]), "teacher": teacher, "prompt": prompt}
        records.append(argilla_record(row, rank, {ARGILLA_FIELD: row["text"]}, metadata, suggestions))
    settings = {
        "guidelines": (
            f"Mark every entity of the text with one of {', '.join(labels)}; the suggestion is the vote of "
            f"{teacher} with prompt {prompt}. Submit with no span when the text has none."
        ),
        "fields": [{"name": ARGILLA_FIELD, "type": "text", "required": True}],
        "questions": [
            {
                "name": ARGILLA_QUESTION,
                "type": "span",
                "field": ARGILLA_FIELD,
                "labels": labels,
                "allow_overlapping": False,
                "required": True,
            }
        ],
        "metadata": [
            {"name": "rank", "type": "integer"},
            {"name": "split", "type": "terms", "options": list(REVIEWED_SPLITS)},
            {"name": "agreement", "type": "float"},
            {"name": "answered", "type": "integer"},
            {"name": "teacher", "type": "terms", "options": [teacher]},
            {"name": "prompt", "type": "terms", "options": [prompt]},
        ],
    }
    return {"settings": settings, "records": records}


def _span_export(votes: pd.DataFrame, job: ReviewJob) -> ReviewExport:
    """The export_review step of task spans: Label Studio tasks JSON and labelling config, Argilla
    JSON, the voted spans as predictions. Nothing is scored (no review settings or iterations read)."""
    return ReviewExport(
        argilla_span_records(votes, job.labels, job.teacher, job.prompt),
        label_studio_span_tasks(votes, f"{job.teacher}/{job.prompt}"),
        label_studio_span_config(job.labels),
        ensure_ascii=False,
    )


export_review = partial(export_review_step, kind_export=_span_export, kind_log=logging.getLogger(__name__))
