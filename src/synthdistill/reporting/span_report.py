"""The report of a spans run: teachers' votes and students on the same frozen expert test split with
bootstrap intervals, per-type F1, annotation failures, training facts and the ONNX check, as Markdown
and as one self-contained HTML page (the shared templates of reporting.render, as multi_label)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.reporting import render
from synthdistill.reporting.sections import Section

TITLE = "synthdistill report: entity spans"
MISSING = "–"


def _read(path: str | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path else None


def _score(value: float, interval: list[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _source(entry: dict[str, Any]) -> str:
    return f"{entry['teacher']} / {entry['prompt']}"


def _scored(teachers: list[dict[str, Any]], students: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(model, learned from, test metrics) of every teacher × prompt's votes and every student scored."""
    entries = [(f"{_source(e)} (votes)", "teacher", e) for e in teachers]
    entries += [(e["student"], _source(e), e) for e in students]
    scored = []
    for name, learned_from, entry in entries:
        metrics = _read(entry.get("metrics"))
        if metrics is not None:
            scored.append((name, learned_from, metrics))
    return scored


def quality_table(scored: list[tuple[str, str, dict[str, Any]]]) -> pd.DataFrame:
    """Micro precision, recall and F1 of each model, each with its interval, and the texts answered."""
    rows = []
    for name, learned_from, metrics in scored:
        intervals = metrics["intervals"]
        rows.append(
            {
                "model": name,
                "learned from": learned_from,
                "precision [95% CI]": _score(metrics["precision"], intervals["precision"]),
                "recall [95% CI]": _score(metrics["recall"], intervals["recall"]),
                "F1 [95% CI]": _score(metrics["f1"], intervals["f1"]),
                "texts answered": f"{metrics['answered']} of {metrics['items']}",
            }
        )
    return pd.DataFrame(rows)


def per_type_table(scored: list[tuple[str, str, dict[str, Any]]], labels: list[str]) -> pd.DataFrame:
    """Each model's F1 per entity type with its interval; the header gives each type's expert support."""
    support = scored[0][2]["per_label"] if scored else {}
    rows = []
    for name, learned_from, metrics in scored:
        row = {"model": name, "learned from": learned_from}
        for label in labels:
            header = f"{label} ({support[label]['support']})"
            row[header] = _score(metrics["per_label"][label]["f1"], metrics["intervals"]["per_label_f1"][label])
        rows.append(row)
    return pd.DataFrame(rows)


def annotation_table(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    """Per teacher × prompt: answers, failed answers by status, texts with no answer, spans kept/dropped."""
    rows = []
    for entry in teachers:
        stats = _read(entry["stats"])
        assert stats is not None
        annotation, vote = stats["annotation"], stats["vote"]
        failures = {k: v for k, v in annotation["parse_status"].items() if k != "ok"}
        rows.append(
            {
                "teacher / prompt": _source(entry),
                "answers": annotation["answers"],
                "failed answers": annotation["parse_failures"] + annotation["request_errors"],
                "failures by status": ", ".join(f"{k} {v}" for k, v in sorted(failures.items())) or "none",
                "texts with every answer failed": vote["all_failed"],
                "spans kept": vote["spans_kept"],
                "candidate spans dropped": vote["candidate_spans_dropped"],
            }
        )
    return pd.DataFrame(rows)


def _min_shares(teachers: list[dict[str, Any]]) -> str:
    shares = []
    for entry in teachers:
        stats = _read(entry["stats"])
        assert stats is not None
        if stats.get("min_share") is not None and stats["min_share"] not in shares:
            shares.append(stats["min_share"])
    return " / ".join(str(share) for share in shares) or "`vote.min_share`"


def student_table(students: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for entry in students:
        metadata = _read(entry["metadata"])
        assert metadata is not None
        rows.append(
            {
                "student": entry["student"],
                "learned from": _source(entry),
                "train texts": metadata["train_examples"],
                "train spans": metadata["train_spans"],
                "best epoch": metadata["best_epoch"],
                "train seconds": f"{metadata['train_seconds']:.1f}",
                "device": metadata["device"],
            }
        )
    return pd.DataFrame(rows)


def onnx_table(students: list[dict[str, Any]]) -> pd.DataFrame:
    """Each student's int8 ONNX model against its torch model (only students with a check)."""
    rows = []
    for entry in students:
        check = _read(entry.get("onnx_check"))
        if check is None:
            continue
        scored = "entity_f1_torch" in check
        same = check["same_spans_share"]
        rows.append(
            {
                "student": entry["student"],
                "learned from": _source(entry),
                "entity F1 torch": f"{check['entity_f1_torch']:.3f}" if scored else MISSING,
                "entity F1 ONNX int8": f"{check['entity_f1_onnx_int8']:.3f}" if scored else MISSING,
                "difference (points)": f"{check['entity_f1_difference_points']:+.1f}" if scored else MISSING,
                "texts with the same spans": f"{same:.0%}" if same is not None else MISSING,
            }
        )
    return pd.DataFrame(rows)


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
    Path(outputs["markdown"]).write_text(
        render.markdown(title=TITLE, intro=intro, sections=sections, figure_dir="figures") + "\n"
    )
    Path(outputs["html"]).write_text(render.html_page(title=TITLE, intro=intro, sections=sections, figures={}))
