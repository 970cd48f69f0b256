"""The run report: teachers, prompts and students side by side, as Markdown and HTML."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd


def annotation_stats(iterations: list[pd.DataFrame]) -> dict[str, Any]:
    """LLM calls, failures, tokens and latency over all iterations of one teacher × prompt."""
    frame = pd.concat(iterations, ignore_index=True)
    fresh = frame.loc[~frame["cached"]]
    return {
        "iterations": len(iterations),
        "answers": len(frame),
        "requests_made": len(fresh),
        "cache_hits": int(frame["cached"].sum()),
        "request_errors": int((frame["parse_status"] == "request_error").sum()),
        "parse_failures": int(frame["parse_status"].isin(["not_a_label", "invalid_json", "empty"]).sum()),
        "parse_status": {k: int(v) for k, v in frame["parse_status"].value_counts().items()},
        "input_tokens": int(frame["input_tokens"].fillna(0).sum()),
        "output_tokens": int(frame["output_tokens"].fillna(0).sum()),
        "latency_p50_s": float(frame["latency_s"].quantile(0.5)) if len(frame) else None,
        "latency_p95_s": float(frame["latency_s"].quantile(0.95)) if len(frame) else None,
    }


def _read_json(path: str | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path else None


def teacher_cost(annotation: dict[str, Any], price: dict[str, float]) -> float:
    """Dollars for the tokens the API reported, from the per-1M-token price table."""
    if "cost_usd" in annotation:  # an ensemble: its members' costs, each at its own price
        return annotation["cost_usd"]
    return (
        annotation["input_tokens"] * price.get("input_per_1m_tokens", 0.0)
        + annotation["output_tokens"] * price.get("output_per_1m_tokens", 0.0)
    ) / 1e6


def teacher_table(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per teacher × prompt from its vote stats and (when evaluated) its metrics."""
    rows = []
    for entry in entries:
        stats = _read_json(entry["stats"])
        metrics = _read_json(entry.get("metrics"))
        cost = teacher_cost(stats["annotation"], entry.get("price") or {})
        items = stats["vote"]["items"]
        rows.append(
            {
                "teacher": entry["teacher"],
                "prompt": entry["prompt"],
                "accuracy": metrics["accuracy"] if metrics else None,
                "f1_macro": metrics["f1_macro"] if metrics else None,
                "coverage": metrics["coverage"] if metrics else None,
                "answers": stats["annotation"]["answers"],
                "parse_failures": stats["annotation"]["parse_failures"],
                "request_errors": stats["annotation"]["request_errors"],
                "input_tokens": stats["annotation"]["input_tokens"],
                "output_tokens": stats["annotation"]["output_tokens"],
                "latency_p50_s": stats["annotation"]["latency_p50_s"],
                "cost_usd": f"{cost:.4g}",
                "usd_per_1m_texts": f"{cost / items * 1e6:.4g}",
                "labelled_items": stats["vote"]["labelled"],
                "unanimous_share": stats["vote"]["unanimous_share"],
            }
        )
    return pd.DataFrame(rows)


def student_table(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per student and label source (teacher × prompt, or the expert baseline)."""
    rows = []
    for entry in entries:
        meta = _read_json(entry["metadata"])
        metrics = _read_json(entry.get("metrics"))
        rows.append(
            {
                "student": entry["student"],
                "trained_on": "expert labels (upper bound)"
                if entry["teacher"] == "expert"
                else f"{entry['teacher']} / {entry['prompt']}",
                "accuracy": metrics["accuracy"] if metrics else None,
                "f1_macro": metrics["f1_macro"] if metrics else None,
                "train_examples": meta["train_examples"],
                "best_epoch": meta["best_epoch"],
                "train_seconds": meta["train_seconds"],
            }
        )
    return pd.DataFrame(rows)


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Scores with 3 decimals, missing values as a dash; strings (costs) stay as formatted."""
    return frame.apply(
        lambda column: (
            column.map(lambda v: "–" if v is None or v != v else f"{v:.3f}")
            if pd.api.types.is_float_dtype(column) or column.isna().all()
            else column
        )
    )


def build(
    summary_path: str, teachers: list[dict[str, Any]], students: list[dict[str, Any]], evaluated: bool
) -> tuple[str, str]:
    """The report as Markdown and as a self-contained HTML page."""
    summary = _read_json(summary_path)
    teacher_frame, student_frame = teacher_table(teachers), student_table(students)
    data_lines = [
        f"- items kept: {summary['rows_kept']}, dropped: {summary['rows_dropped']}"
        + "".join(f", {reason}: {count}" for reason, count in summary["dropped_by_reason"].items()),
        "- per split: " + ", ".join(f"{k} {v}" for k, v in summary["per_split"].items()),
    ]
    note = (
        "Scores are on the frozen expert test split; an abstained item counts as wrong."
        if evaluated
        else "Evaluation skipped: the dataset has no expert labels (dataset.label_column is null)."
    )
    sections = [
        ("Data", "\n".join(data_lines)),
        ("Teachers", _display(teacher_frame).to_markdown(index=False, disable_numparse=True)),
        ("Students", _display(student_frame).to_markdown(index=False, disable_numparse=True)),
    ]
    markdown = "# synthdistill report\n\n" + note + "\n\n"
    markdown += "\n\n".join(f"## {title}\n\n{body}" for title, body in sections) + "\n"
    page = [
        "<!doctype html><html><head><meta charset='utf-8'><title>synthdistill report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>",
        "<h1>synthdistill report</h1>",
        f"<p>{html.escape(note)}</p>",
        "<h2>Data</h2><ul>" + "".join(f"<li>{html.escape(line[2:])}</li>" for line in data_lines) + "</ul>",
        "<h2>Teachers</h2>" + _display(teacher_frame).to_html(index=False),
        "<h2>Students</h2>" + _display(student_frame).to_html(index=False),
        "</body></html>",
    ]
    return markdown, "\n".join(page)
