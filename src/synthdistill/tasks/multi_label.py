"""``multi_label``: any subset of the labels per text (docs/multi_label.md). Every artifact stores a
set as its canonical JSON: a JSON list in the order of config ``labels``, so that two equal sets are
the same string (``["billing", "bug"]``; ``[]`` is the empty set). Data, parsing, vote, students and
evaluation all write and read it through here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

from synthdistill.tasks.base import StudentCard, Task

TASK = Task(
    name="multi_label",
    description="any subset of the labels per text",
    # label_scores: one yes/no question per label (settings.is_per_label).
    prompt_kinds=("labels_json", "label_scores"),
    steps={
        "vote": "synthdistill.labels.multi_label_vote:write_votes",
        "export_review": "synthdistill.labels.multi_label_review:export_review",
        "import_review": "synthdistill.labels.multi_label_corrections:import_review",
        "train_student": "synthdistill.students.multi_label_training:train_from_files",
        # The same export as single_label: the int8 model's config.json carries the thresholds.
        "export_onnx": "synthdistill.students.inference:write_onnx_export",
        "evaluate_teacher": "synthdistill.evaluation.multi_label_metrics:evaluate_teacher",
        "evaluate_student": "synthdistill.evaluation.multi_label_metrics:evaluate_student",
        "compare_models": "synthdistill.evaluation.multi_label_metrics:write_paired_tests",
        "report": "synthdistill.reporting.multi_label_report:write_report",
        "expert_answers": "synthdistill.data.multi_label:expert_label_sets",
        "label_counts": "synthdistill.data.multi_label:label_sets_per_label",
    },
    features=frozenset({"paired_tests", "costs", "active"}),
    review_files=("csv", "xlsx", "argilla", "label_studio", "label_studio_config"),
    card=StudentCard(
        "text-classification",
        ("multi-label-classification",),
        "micro F1 at tuned thresholds",
        "f1_micro_difference_points",
    ),
    report_files=("table_teacher_cost", "table_student_cost", "table_break_even"),
)


def label_set_json(chosen: Iterable[str], labels: list[str]) -> str:
    """The canonical JSON of a set of labels (each must be one of ``labels``)."""
    members = set(chosen)
    return json.dumps([label for label in labels if label in members], ensure_ascii=False)


def read_label_set(value: str) -> list[str]:
    """The labels of a canonical JSON label set."""
    return list(json.loads(value))


def indicator_matrix(values: Iterable[str], labels: list[str]) -> np.ndarray:
    """One 0/1 row per label set (canonical JSON), one column per label in config order."""
    index = {label: i for i, label in enumerate(labels)}
    rows = list(values)
    matrix = np.zeros((len(rows), len(labels)), dtype=np.int8)
    for row, value in enumerate(rows):
        for label in read_label_set(value):
            matrix[row, index[label]] = 1
    return matrix


def label_sets_of(matrix: np.ndarray, labels: list[str]) -> list[str]:
    """The canonical JSON of each 0/1 row of ``matrix`` (the inverse of indicator_matrix)."""
    return [label_set_json([labels[i] for i in np.flatnonzero(row)], labels) for row in np.asarray(matrix)]
