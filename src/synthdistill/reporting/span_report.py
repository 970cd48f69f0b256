"""The report of a spans run: teachers' votes and students on the same frozen expert test split with
bootstrap intervals, per-type F1, annotation failures, training facts and the ONNX check, as Markdown
and as one self-contained HTML page (the shared templates of reporting.render, as multi_label)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthdistill.reporting.entries import artifact_rows, write_pages
from synthdistill.reporting.sections import Section, score_with_interval

TITLE = "synthdistill report: entity spans"
MISSING = "–"
# The micro scores of the quality table, by their metrics key, as its headers name them.
SCORES = {"precision": "precision", "recall": "recall", "f1": "F1"}


def _source(entry: dict[str, Any]) -> str:
    return f"{entry['teacher']} / {entry['prompt']}"


def _scored(teachers: list[dict[str, Any]], students: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(model, learned from, test metrics) of every teacher × prompt's votes and every student scored."""
    return artifact_rows([*teachers, *students], "metrics", lambda e, m: (*_model(e), m), optional=True)


def _model(entry: dict[str, Any]) -> tuple[str, str]:
    """(model, learned from) of a teacher × prompt's votes or a student."""
    return (entry["student"], _source(entry)) if "student" in entry else (f"{_source(entry)} (votes)", "teacher")


def quality_table(scored: list[tuple[str, str, dict[str, Any]]]) -> pd.DataFrame:
    """Micro precision, recall and F1 of each model, each with its interval, and the texts answered."""
    return pd.DataFrame(
        [
            {
                "model": name,
                "learned from": learned_from,
                **{f"{title} [95% CI]": _score(metrics, score) for score, title in SCORES.items()},
                "texts answered": f"{metrics['answered']} of {metrics['items']}",
            }
            for name, learned_from, metrics in scored
        ]
    )


def _score(metrics: dict[str, Any], score: str) -> str:
    return score_with_interval(metrics[score], metrics["intervals"][score])


def per_type_table(scored: list[tuple[str, str, dict[str, Any]]], labels: list[str]) -> pd.DataFrame:
    """Each model's F1 per entity type with its interval; the header gives each type's expert support."""
    support = scored[0][2]["per_label"] if scored else {}
    rows = []
    for name, learned_from, metrics in scored:
        row = {"model": name, "learned from": learned_from}
        for label in labels:
            header = f"{label} ({support[label]['support']})"
            row[header] = score_with_interval(
                metrics["per_label"][label]["f1"], metrics["intervals"]["per_label_f1"][label]
            )
        rows.append(row)
    return pd.DataFrame(rows)


def annotation_table(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    """Per teacher × prompt: answers, failed answers by status, texts with no answer, spans kept/dropped."""
    return pd.DataFrame(artifact_rows(teachers, "stats", _annotation_row))


def _annotation_row(entry: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    annotation, vote = stats["annotation"], stats["vote"]
    failures = {k: v for k, v in annotation["parse_status"].items() if k != "ok"}
    return {
        "teacher / prompt": _source(entry),
        "answers": annotation["answers"],
        "failed answers": annotation["parse_failures"] + annotation["request_errors"],
        "failures by status": ", ".join(f"{k} {v}" for k, v in sorted(failures.items())) or "none",
        "texts with every answer failed": vote["all_failed"],
        "spans kept": vote["spans_kept"],
        "candidate spans dropped": vote["candidate_spans_dropped"],
    }


def _min_shares(teachers: list[dict[str, Any]]) -> str:
    shares = []
    for share in artifact_rows(teachers, "stats", lambda _, stats: stats.get("min_share")):
        if share is not None and share not in shares:
            shares.append(share)
    return " / ".join(str(share) for share in shares) or "`vote.min_share`"


def _student_row(entry: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "student": entry["student"],
        "learned from": _source(entry),
        "train texts": metadata["train_examples"],
        "train spans": metadata["train_spans"],
        "best epoch": metadata["best_epoch"],
        "train seconds": f"{metadata['train_seconds']:.1f}",
        "device": metadata["device"],
    }


def _onnx_row(entry: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    scored = "entity_f1_torch" in check
    same = check["same_spans_share"]
    return {
        "student": entry["student"],
        "learned from": _source(entry),
        "entity F1 torch": f"{check['entity_f1_torch']:.3f}" if scored else MISSING,
        "entity F1 ONNX int8": f"{check['entity_f1_onnx_int8']:.3f}" if scored else MISSING,
        "difference (points)": f"{check['entity_f1_difference_points']:+.1f}" if scored else MISSING,
        "texts with the same spans": f"{same:.0%}" if same is not None else MISSING,
    }


def student_table(students: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(artifact_rows(students, "metadata", _student_row))


def onnx_table(students: list[dict[str, Any]]) -> pd.DataFrame:
    """Each student's int8 ONNX model against its torch model (only students with a check)."""
    return pd.DataFrame(artifact_rows(students, "onnx_check", _onnx_row, optional=True))


def sections_and_intro(
    teachers: list[dict[str, Any]], students: list[dict[str, Any]], labels: list[str]
) -> tuple[str, list[Section]]:
    """The report's intro and sections from the run's files (entries as in ``write_report``)."""
    scored = _scored(teachers, students)
    sections = []
    if scored:
        first = scored[0][2]
        intro = (
            f"{first['items']} test texts with {first['expert_spans']} expert spans ({', '.join(labels)}); "
            "teachers and students are scored on this same frozen split."
        )
        quality = Section("Teachers and students on the expert test split")
        quality.text(
            "Scores are entity-level with strict boundaries: a span counts only when its start, end and type all "
            "match an expert span (seqeval's default), micro over all types. [low, high] is the 95% interval: "
            f"{first['intervals']['method']}. A text whose every teacher answer failed counts as predicting no span."
        )
        quality.table(quality_table(scored))
        sections.append(quality)
        per_type = Section("F1 per entity type")
        per_type.text("Each type's F1 [95% interval]; the number after a type is its expert spans on the test split.")
        sections.append(per_type.table(per_type_table(scored, labels)))
    else:
        intro = (
            f"Task spans over the labels {', '.join(labels)}. The dataset has no expert spans, so nothing is "
            "scored; the annotation and training facts follow."
        )
    annotation = Section("Teacher annotation").table(annotation_table(teachers))
    annotation.text(
        "A mention the teacher names that is not in the text, or a type outside the label set, fails the whole "
        f"answer (docs/spans.md); a span is kept when at least {_min_shares(teachers)} of the iterations that "
        "answered found it."
    )
    sections.append(annotation)
    if students:
        sections.append(Section("Students").table(student_table(students)))
    onnx = onnx_table(students)
    if len(onnx):
        check = Section("ONNX int8 export")
        check.text(
            "Each student's int8 ONNX model (`onnx/` next to `model/`: the fast CPU path) against its torch model "
            "on the same test texts."
        )
        sections.append(check.table(onnx))
    return intro, sections


def write_report(
    entries: dict[str, list[dict[str, Any]]], labels: list[str], outputs: dict[str, str], run: dict[str, Any]
) -> None:
    """The report step of task spans: Markdown and a self-contained HTML page (``outputs``: markdown,
    html). Nothing in ``run`` is read: a spans run has no costs, selection or paired tests yet.

    ``entries["teachers"]``: per teacher × prompt ``{"teacher", "prompt", "stats": votes stats JSON, "metrics": test
    metrics JSON or None}``; ``entries["students"]``: per student and label source ``{"student", "teacher", "prompt",
    "metadata": metadata JSON, "metrics": test metrics JSON or None, "onnx_check": ONNX check JSON or None}``.
    """
    intro, sections = sections_and_intro(entries["teachers"], entries["students"], labels)
    write_pages(TITLE, intro, sections, outputs)
