"""The report of a multi_label run: teachers' votes and students side by side on the frozen expert
test split, every score with its 95% bootstrap interval, Markdown and self-contained HTML (the shared
templates of reporting.render)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.reporting import render
from synthdistill.reporting.sections import Section

TITLE = "synthdistill report: multi-label tagging"


def _read(path: str | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path else None


def _with_interval(metrics: dict[str, Any], name: str) -> str:
    low, high = metrics["intervals"][name]
    return f"{metrics[name]:.3f} [{low:.3f}, {high:.3f}]"


def quality_table(teachers: list[dict[str, Any]], students: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per teacher × prompt (its voted sets) and per student, each score with its interval."""
    rows = []
    entries = [("teacher", f"{e['teacher']}/{e['prompt']}", "", e) for e in teachers] + [
        ("student", e["student"], f"{e['teacher']}/{e['prompt']}", e) for e in students
    ]
    for kind, name, learned_from, entry in entries:
        metrics = _read(entry.get("metrics"))
        if metrics is None:
            continue
        rows.append(
            {
                "model": name,
                "kind": kind,
                "learned from": learned_from,
                "F1 micro [95% CI]": _with_interval(metrics, "f1_micro"),
                "F1 macro [95% CI]": _with_interval(metrics, "f1_macro"),
                "subset accuracy [95% CI]": _with_interval(metrics, "subset_accuracy"),
                "Hamming loss [95% CI]": _with_interval(metrics, "hamming_loss"),
                "coverage": f"{metrics['coverage']:.3f}",
                "n": metrics["n"],
            }
        )
    return pd.DataFrame(rows)


def per_label_table(teachers: list[dict[str, Any]], students: list[dict[str, Any]], labels: list[str]) -> pd.DataFrame:
    """Per label F1 (precision / recall) of every model."""
    rows = []
    entries = [(f"{e['teacher']}/{e['prompt']}", e) for e in teachers] + [
        (f"{e['student']} ({e['teacher']}/{e['prompt']})", e) for e in students
    ]
    for name, entry in entries:
        metrics = _read(entry.get("metrics"))
        if metrics is None:
            continue
        row: dict[str, Any] = {"model": name}
        for label in labels:
            scores = metrics["per_label"][label]
            row[label] = f"{scores['f1']:.2f} ({scores['precision']:.2f} / {scores['recall']:.2f})"
        rows.append(row)
    return pd.DataFrame(rows)


def vote_table(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for entry in teachers:
        stats = _read(entry["stats"])
        assert stats is not None
        annotation, vote = stats["annotation"], stats["vote"]
        rows.append(
            {
                "teacher/prompt": f"{entry['teacher']}/{entry['prompt']}",
                "answers": annotation["answers"],
                "parse failures": annotation["parse_failures"],
                "request errors": annotation["request_errors"],
                "items voted": f"{vote['labelled']}/{vote['items']}",
                "unanimous share": f"{vote['unanimous_share']:.2f}",
                "labels per item": f"{vote['mean_labels_per_item']:.2f}" if vote["mean_labels_per_item"] else "",
                "empty sets": vote["empty_sets"],
            }
        )
    return pd.DataFrame(rows)


def student_table(students: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for entry in students:
        metadata = _read(entry["metadata"])
        assert metadata is not None
        rows.append(
            {
                "student": entry["student"],
                "learned from": f"{entry['teacher']}/{entry['prompt']}",
                "train items": metadata["train_examples"],
                "validation items": metadata["validation_examples"],
                "best epoch": metadata["best_epoch"],
                "thresholds": ", ".join(f"{k} {v:.2f}" for k, v in metadata["label_thresholds"].items()),
                "training s": f"{metadata['train_seconds']:.0f}",
            }
        )
        check = _read(entry.get("onnx_check"))
        if check:
            rows[-1]["ONNX int8: same sets"] = f"{check['same_label_share']:.3f}"
            if "f1_micro_difference_points" in check:
                rows[-1]["ONNX int8: F1 micro - torch (points)"] = f"{check['f1_micro_difference_points']:+.1f}"
    return pd.DataFrame(rows)


def build(
    teachers: list[dict[str, Any]],
    students: list[dict[str, Any]],
    labels: list[str],
    paired_path: str | None,
    outputs: dict[str, str],
) -> list[Section]:
    """Write the report (``outputs``: markdown, html)."""
    evaluated = any(entry.get("metrics") for entry in teachers + students)
    sections = []
    if evaluated:
        quality = Section("Quality on the frozen expert test split")
        quality.text(
            "Teachers are scored on their voted label sets, students on their predicted sets (sigmoid scores at "
            "the per-label thresholds tuned on the validation split), all on the same test items. An item "
            "without a vote counts as the empty set. Intervals: 95% percentile bootstrap over test items."
        )
        quality.table(quality_table(teachers, students))
        quality.text("Per label: F1 (precision / recall).")
        quality.table(per_label_table(teachers, students, labels))
        sections.append(quality)
        if paired_path:
            paired = Section("Student against its teacher (paired)")
            paired.text(
                "F1 micro of each student (a) and the teacher it learned from (b) on the same resampled test "
                "items: the 95% interval of a - b and a two-sided bootstrap p-value."
            )
            paired.table(pd.read_csv(paired_path).round(3).astype(str))
            sections.append(paired)
    sections.append(Section("Teacher answers and votes").table(vote_table(teachers)))
    if students:
        sections.append(Section("Students").table(student_table(students)))
    intro = f"Task multi_label over the labels {', '.join(labels)}: each text gets any subset. " + (
        "" if evaluated else "The dataset has no expert labels, so nothing is scored."
    )
    Path(outputs["markdown"]).write_text(
        render.markdown(title=TITLE, intro=intro, sections=sections, figure_dir="figures") + "\n"
    )
    Path(outputs["html"]).write_text(render.html_page(title=TITLE, intro=intro, sections=sections, figures={}))
    return sections
