"""The spans report from small hand-written artifacts in the shapes the run writes them: Markdown and
a self-contained HTML page through the shared renderer, every score with its interval."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from synthdistill.labels.span_vote import vote, vote_summary
from synthdistill.labels.vote_files import annotation_stats
from synthdistill.metrics import spans as span_metrics
from synthdistill.reporting.span_report import write_report
from synthdistill.tasks.spans import Span, to_json

from .pipeline_helpers import table_row

LABELS = ["ORG", "<b>"]  # a type that is also an HTML tag: the page must show it, not obey it


def metrics(f1: float, low: float, high: float, answered: int = 6) -> dict:
    """evaluation/span_scoring.py's test metrics (metrics.spans.test_span_metrics), scores made distinct."""
    return {
        "precision": f1 + 0.01,
        "recall": f1 - 0.01,
        "f1": f1,
        "expert_spans": 9,
        "predicted_spans": 8,
        "per_label": {
            "ORG": {"precision": f1, "recall": f1, "f1": f1 + 0.02, "support": 7},
            "<b>": {"precision": f1, "recall": f1, "f1": f1 - 0.02, "support": 2},
        },
        "items": 6,
        "answered": answered,
        "intervals": {
            "method": "percentile bootstrap over test texts, 2000 resamples, seed 0",
            "level": 0.95,
            "precision": [low + 0.01, high + 0.01],
            "recall": [low - 0.01, high - 0.01],
            "f1": [low, high],
            "per_label_f1": {"ORG": [low + 0.02, high + 0.02], "<b>": [low - 0.02, high - 0.02]},
        },
        "test_ids": [f"t{n}" for n in range(6)],
    }


STATS = {  # labels/span_vote.py write_votes: annotation_stats, vote_summary, min_share
    "annotation": {
        "iterations": 3,
        "answers": 54,
        "requests_made": 54,
        "cache_hits": 0,
        "request_errors": 1,
        "parse_failures": 4,
        "parse_status": {"ok": 49, "not_a_label": 3, "invalid_json": 1, "request_error": 1},
        "input_tokens": 5400,
        "output_tokens": 900,
        "latency_p50_s": 0.4,
        "latency_p95_s": 0.9,
        "compute_s": 21.6,
        "compute_source": "busy-time shares measured when each answer was paid for",
    },
    "vote": {
        "items": 18,
        "labelled": 17,
        "all_failed": 1,
        "unanimous_share": 0.5,
        "spans_kept": 23,
        "spans_kept_per_label": {"<b>": 5, "ORG": 18},
        "candidate_spans_dropped": 11,
        "items_without_spans": 2,
    },
    "min_share": 0.5,
}

METADATA = {  # students/token_classification.py train, with teacher and prompt (students/span_files.py)
    "base_model": "minilm",
    "labels": LABELS,
    "tags": ["O", "B-ORG", "I-ORG", "B-<b>", "I-<b>"],
    "hyperparameters": {"epochs": 2},
    "train_examples": 12,
    "train_spans": 17,
    "validation_examples": 3,
    "best_epoch": 2,
    "history": [],
    "train_seconds": 4.26,
    "device": "cpu",
    "torch_threads": 2,
    "teacher": "smollm2",
    "prompt": "spans",
}

ONNX_CHECK = {  # students/span_onnx.py write_span_onnx_export, with expert spans on the test split
    "items": 6,
    "quantization": "weight_only",
    "same_spans_share": 5 / 6,
    "entity_f1_onnx_vs_torch": 0.9,
    "entity_f1_torch": 0.456,
    "entity_f1_onnx_int8": 0.421,
    "entity_f1_difference_points": -3.5,
    "size_mb": 23.1,
}

SYSTEMS = {  # model name in the report -> (learned from, its test metrics)
    "smollm2 / spans (votes)": ("teacher", metrics(0.612, 0.401, 0.789)),
    "minilm": ("smollm2 / spans", metrics(0.456, 0.234, 0.678, answered=6)),
}


def write(folder: Path, name: str, content: dict) -> str:
    path = folder / name
    path.write_text(json.dumps(content))
    return str(path)


def run_report(tmp_path: Path, evaluated: bool = True, onnx_check: dict | None = ONNX_CHECK) -> tuple[str, str]:
    teacher_metrics, student_metrics = (m for _, m in SYSTEMS.values())
    teachers = [
        {
            "teacher": "smollm2",
            "prompt": "spans",
            "stats": write(tmp_path, "stats.json", STATS),
            "metrics": write(tmp_path, "teacher.json", teacher_metrics) if evaluated else None,
        }
    ]
    students = [
        {
            "student": "minilm",
            "teacher": "smollm2",
            "prompt": "spans",
            "metadata": write(tmp_path, "metadata.json", METADATA),
            "metrics": write(tmp_path, "student.json", student_metrics) if evaluated else None,
            "onnx_check": write(tmp_path, "onnx_check.json", onnx_check) if onnx_check else None,
        }
    ]
    outputs = {"markdown": str(tmp_path / "report.md"), "html": str(tmp_path / "report.html")}
    assert write_report({"teachers": teachers, "students": students}, LABELS, outputs, {}) is None
    return Path(outputs["markdown"]).read_text(), Path(outputs["html"]).read_text()


def html_row(page: str, first_cell: str) -> str:
    """The first HTML table row whose first cell is ``first_cell`` (already escaped)."""
    match = re.search(rf"<tr>\s*<td>{re.escape(first_cell)}</td>.*?</tr>", page, re.DOTALL)
    assert match, f"no HTML row for {first_cell}"
    return match.group(0)


def test_the_fixture_artifacts_have_the_keys_the_run_writes():
    expert = pd.Series([to_json([Span(0, 4, "ORG")]), to_json([Span(5, 8, "<b>")])])
    real = span_metrics.test_span_metrics(expert, expert, pd.Series(["a", "b"]), LABELS)
    hand = SYSTEMS["minilm"][1]
    assert set(real) == set(hand)
    assert set(real["intervals"]) == set(hand["intervals"]) and set(real["per_label"]) == set(hand["per_label"])
    assert set(real["per_label"]["ORG"]) == set(hand["per_label"]["ORG"])
    iteration = pd.DataFrame(
        {
            "id": ["a", "b"],
            "label": [to_json([Span(0, 4, "ORG")]), None],
            "raw_output": ["{}", None],
            "parse_status": ["ok", "request_error"],
            "cached": [False, False],
            "input_tokens": [10, None],
            "output_tokens": [5, None],
            "latency_s": [0.1, 0.2],
        }
    )
    items = pd.DataFrame({"id": ["a", "b"], "split": ["train", "test"], "text": ["Acme x", "Bo y"]})
    assert set(annotation_stats([iteration])) == set(STATS["annotation"])
    assert set(vote_summary(vote([iteration], items, 0.5))) == set(STATS["vote"])


def test_markdown_and_html_carry_every_system_f1_with_its_interval(tmp_path):
    markdown, page = run_report(tmp_path)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<table" in page
    headers = re.findall(r"^## (.+)$", markdown, re.MULTILINE)
    assert headers == [
        "Teachers and students on the expert test split",
        "F1 per entity type",
        "Teacher annotation",
        "Students",
        "ONNX int8 export",
    ]
    assert headers == re.findall(r"<h2>(.+)</h2>", page)
    assert "6 test texts with 9 expert spans" in markdown
    for name, (learned_from, scores) in SYSTEMS.items():
        low, high = scores["intervals"]["f1"]
        f1 = f"{scores['f1']:.3f} [{low:.3f}, {high:.3f}]"
        row = table_row(markdown, "Teachers and students on the expert test split", name, learned_from)
        assert row[4] == f1
        assert row[2].startswith(f"{scores['precision']:.3f} [") and row[5] == "6 of 6"
        assert f"<td>{f1}</td>" in html_row(page, name)
        types = table_row(markdown, "F1 per entity type", name, learned_from)
        for column, label in enumerate(LABELS, start=2):
            low, high = scores["intervals"]["per_label_f1"][label]
            assert types[column] == f"{scores['per_label'][label]['f1']:.3f} [{low:.3f}, {high:.3f}]"


def test_a_label_that_looks_like_a_tag_is_escaped_in_the_page(tmp_path):
    markdown, page = run_report(tmp_path)
    assert "<b>" not in page  # neither in the intro nor in the per-type table's header
    assert "&lt;b&gt; (2)</th>" in page and "ORG (7)</th>" in page
    assert "(ORG, &lt;b&gt;)" in page
    header = markdown.split("\n## F1 per entity type\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^\| model .*\| ORG \(7\) +\| <b> \(2\) +\|$", header, re.MULTILINE)  # Markdown as written


def test_annotation_failures_votes_training_and_onnx_facts(tmp_path):
    markdown, page = run_report(tmp_path)
    annotation = table_row(markdown, "Teacher annotation", "smollm2 / spans")
    assert annotation[1:] == ["54", "5", "invalid_json 1, not_a_label 3, request_error 1", "1", "23", "11"]
    assert "kept when at least 0.5 of the iterations that answered found it" in markdown
    student = table_row(markdown, "Students", "minilm", "smollm2 / spans")
    assert student[2:] == ["12", "17", "2", "4.3", "cpu"]
    onnx = table_row(markdown, "ONNX int8 export", "minilm", "smollm2 / spans")
    assert onnx[2:] == ["0.456", "0.421", "-3.5", "83%"]
    assert "<td>-3.5</td>" in page and "<td>invalid_json 1, not_a_label 3, request_error 1</td>" in page


def test_without_expert_spans_nothing_is_scored_and_the_facts_remain(tmp_path):
    unscored = {k: v for k, v in ONNX_CHECK.items() if not k.startswith("entity_f1_") or k.endswith("vs_torch")}
    markdown, page = run_report(tmp_path, evaluated=False, onnx_check=unscored)
    assert "no expert spans, so nothing is scored" in markdown and "nothing is scored" in page
    assert re.findall(r"^## (.+)$", markdown, re.MULTILINE) == [
        "Teacher annotation",
        "Students",
        "ONNX int8 export",
    ]
    assert table_row(markdown, "ONNX int8 export", "minilm")[2:] == ["–", "–", "–", "83%"]
    assert "[95% CI]" not in markdown and "[95% CI]" not in page


def test_no_onnx_section_without_an_export(tmp_path):
    markdown, page = run_report(tmp_path, onnx_check=None)
    assert "ONNX" not in markdown and "ONNX" not in page
