"""The spans run's report (results/report/report.md): teachers' votes and students on the same
expert test split with bootstrap intervals, per-type F1, annotation failures, training facts. The
prose lives in templates/spans_report.md.jinja."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"


def _read(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _score(value: float, interval: list[float] | None = None) -> str:
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def _quality_row(name: str, source: str, metrics: dict[str, Any], labels: list[str]) -> tuple[dict, dict]:
    intervals = metrics["intervals"]
    row = {
        "name": name,
        "source": source,
        "precision": _score(metrics["precision"], intervals["precision"]),
        "recall": _score(metrics["recall"], intervals["recall"]),
        "f1": _score(metrics["f1"], intervals["f1"]),
        "answered": f"{metrics['answered']} of {metrics['items']}",
    }
    cells = [_score(metrics["per_label"][label]["f1"], intervals["per_label_f1"][label]) for label in labels]
    return row, {"name": name, "cells": cells}


def build(files: dict[str, str], labels: list[str]) -> dict[str, Any]:
    """The template's values from the run's files, keyed ``kind/name...`` (rules/spans.smk)."""
    quality, per_label, annotation, students, onnx = [], [], [], [], []
    first: dict[str, Any] | None = None
    min_share = None
    for key, path in files.items():
        kind, _, name = key.partition("/")
        data = _read(path)
        if kind == "stats":
            stats, vote = data["annotation"], data["vote"]
            min_share = data.get("min_share")
            failures = {k: v for k, v in stats["parse_status"].items() if k != "ok"}
            annotation.append(
                {
                    "name": name.replace("/", " / "),
                    "answers": stats["answers"],
                    "failures": stats["parse_failures"] + stats["request_errors"],
                    "by_status": ", ".join(f"{k} {v}" for k, v in sorted(failures.items())) or "none",
                    "all_failed": vote["all_failed"],
                    "kept": vote["spans_kept"],
                    "dropped": vote["candidate_spans_dropped"],
                }
            )
        elif kind in ("teacher", "student"):
            first = first or data
            if kind == "teacher":
                label, source = f"{name.replace('/', ' / ')} (votes)", "teacher"
            else:
                student, teacher = name.split("/", 1)
                label, source = student, teacher.replace("/", " / ")
            row, cells = _quality_row(label, source, data, labels)
            quality.append(row)
            per_label.append(cells)
        elif kind == "onnx":
            student, teacher = name.split("/", 1)
            scored = "entity_f1_torch" in data
            onnx.append(
                {
                    "name": student,
                    "source": teacher.replace("/", " / "),
                    "torch": f"{data['entity_f1_torch']:.3f}" if scored else "n/a",
                    "int8": f"{data['entity_f1_onnx_int8']:.3f}" if scored else "n/a",
                    "points": f"{data['entity_f1_difference_points']:+.1f}" if scored else "n/a",
                    "same": f"{data['same_spans_share']:.0%}" if data["same_spans_share"] is not None else "n/a",
                }
            )
        elif kind == "metadata":
            student, teacher = name.split("/", 1)
            students.append(
                {
                    "name": student,
                    "source": teacher.replace("/", " / "),
                    "train": data["train_examples"],
                    "spans": data["train_spans"],
                    "epoch": data["best_epoch"],
                    "seconds": f"{data['train_seconds']:.1f}",
                    "device": data["device"],
                }
            )
    return {
        "evaluated": first is not None,
        "labels": labels,
        "test_items": first["items"] if first else 0,
        "expert_spans": first["expert_spans"] if first else 0,
        "support": {label: first["per_label"][label]["support"] for label in labels} if first else {},
        "method": first["intervals"]["method"] if first else "",
        "quality": quality,
        "per_label": per_label,
        "annotation": annotation,
        "students": students,
        "onnx": onnx,
        "min_share": min_share,
    }


def write_report(files: dict[str, str], labels: list[str], output_path: str) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown, not HTML
    )
    text = environment.get_template("spans_report.md.jinja").render(**build(files, labels))
    Path(output_path).write_text(text)
    return text
