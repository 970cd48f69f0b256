"""Evaluate teachers and students on the same frozen expert test split."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.errors import SynthDistillError
from synthdistill.metrics.single_label import score
from synthdistill.metrics.stats import bootstrap_intervals, compare
from synthdistill.students.inference import predict_frame


def _write(metrics: dict[str, Any], path: str) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2) + "\n")


def test_metrics(expert: pd.Series, predicted: pd.Series, ids: pd.Series, labels: list[str]) -> dict[str, Any]:
    """score() plus 95% bootstrap intervals and the test ids, so runs can prove they used one split."""
    return {
        **score(expert, predicted, labels),
        "intervals": bootstrap_intervals(expert, predicted, labels),
        "test_ids": sorted(ids),
    }


# A kind's test metrics: (expert answers, predicted answers, ids, labels) -> scores with intervals.
TestMetrics = Callable[[pd.Series, pd.Series, pd.Series, list[str]], dict[str, Any]]


def score_votes(votes_path: str, labels: list[str], output_path: str, metrics: TestMetrics) -> dict[str, Any]:
    """A teacher × prompt's votes on the test split, scored by its kind's ``metrics``."""
    votes = pd.read_parquet(votes_path)
    test = votes.loc[votes["split"] == "test"]
    scores = metrics(test["expert_label"], test["label"], test["id"], labels)
    _write(scores, output_path)
    return scores


def score_student(
    model_dir: str,
    test_path: str,
    max_length: int,
    outputs: tuple[str, str],
    labels: list[str],
    metrics: TestMetrics,
) -> dict[str, Any]:
    """A sequence-classification student's answers on the test split through the torch serving path
    (``outputs``: metrics and predictions files), scored by its kind's ``metrics``."""
    test = pd.read_parquet(test_path)
    predictions = predict_frame(model_dir, test, max_length)
    predictions.to_parquet(outputs[1], index=False)
    scores = metrics(test["expert_label"], predictions["label"], test["id"], labels)
    _write(scores, outputs[0])
    return scores


def evaluate_teacher(votes_path: str, labels: list[str], output_path: str) -> dict[str, Any]:
    """The evaluate_teacher step of task single_label."""
    return score_votes(votes_path, labels, output_path, test_metrics)


def evaluate_student(
    model_dir: str, test_path: str, labels: list[str], max_length: int, metrics_path: str, predictions_path: str
) -> dict[str, Any]:
    """The evaluate_student step of task single_label."""
    return score_student(model_dir, test_path, max_length, (metrics_path, predictions_path), labels, test_metrics)


def test_predictions(path: str) -> pd.Series:
    """Predicted test labels by id, from a teacher's votes or a student's predictions file."""
    frame = pd.read_parquet(path)
    if "split" in frame:
        frame = frame.loc[frame["split"] == "test"]
    return frame.set_index("id")["label"]


def paired_tests(
    models: dict[str, str], pairs: list[tuple[str, str]], test_path: str, labels: list[str]
) -> pd.DataFrame:
    """McNemar and paired-bootstrap results for each (a, b) pair of named prediction files.

    Every model must have predicted the same test ids; a mismatch would compare different items
    (the reference case's row-indexing bug), so it is an error.
    """
    test = pd.read_parquet(test_path).set_index("id")
    predictions = {}
    for name, path in models.items():
        series = test_predictions(path)
        if set(series.index) != set(test.index):
            raise SynthDistillError(f"{path}: predicted test ids differ from {test_path}")
        predictions[name] = series.reindex(test.index)
    rows = []
    for a, b in pairs:
        result = compare(test["expert_label"], predictions[a], predictions[b], labels)
        rows.append(
            {
                "a": a,
                "b": b,
                "n": result["n"],
                "accuracy_a": result["accuracy_a"],
                "accuracy_b": result["accuracy_b"],
                "only_a_right": result["mcnemar"]["only_a_right"],
                "only_b_right": result["mcnemar"]["only_b_right"],
                "mcnemar_p": result["mcnemar"]["p_value"],
                "f1_diff_low": result["paired_bootstrap"]["f1_macro_difference_interval"][0],
                "f1_diff_high": result["paired_bootstrap"]["f1_macro_difference_interval"][1],
                "bootstrap_p": result["paired_bootstrap"]["p_value"],
            }
        )
    return pd.DataFrame(rows)


def comparison_pairs(
    teachers: list[str], students: dict[str, str], sources: list[str] | None = None
) -> list[tuple[str, str]]:
    """Each student against the teacher it learned from, and every two teachers against each other.

    ``students`` maps a student's name to its label source's name; a student is compared with its
    source when that is among ``sources`` (default ``teachers``; the chosen labeller of
    students_learn_from: best is a source but no extra teacher), so not for the expert-label
    baseline, which has no teacher to compare with.
    """
    known = set(teachers if sources is None else sources)
    pairs = [(student, source) for student, source in students.items() if source in known]
    return pairs + list(itertools.combinations(teachers, 2))


def write_paired_tests(
    models: dict[str, str],
    teachers: list[str],
    students: dict[str, str],
    test_path: str,
    labels: list[str],
    output: str,
) -> pd.DataFrame:
    table = paired_tests(models, comparison_pairs(teachers, students, list(models)), test_path, labels)
    table.to_csv(output, index=False)
    return table
