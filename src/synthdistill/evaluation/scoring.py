"""Evaluate teachers and students on the same frozen expert test split."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.metrics.single_label import score
from synthdistill.metrics.stats import bootstrap_intervals, compare
from synthdistill.students.inference import predict_frame


def _write(metrics: dict[str, Any], path: str) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2) + "\n")


# A kind's scores, or their intervals, of (expert answers, predicted answers, labels); its test metrics
# add the ids: (expert answers, predicted answers, ids, labels) -> scores with intervals.
Scores = Callable[[pd.Series, pd.Series, list[str]], dict[str, Any]]
TestMetrics = Callable[[pd.Series, pd.Series, pd.Series, list[str]], dict[str, Any]]


def scores_with_intervals(
    expert: pd.Series, predicted: pd.Series, ids: pd.Series, labels: list[str], scores: Scores, intervals: Scores
) -> dict[str, Any]:
    """``scores``, their 95% bootstrap ``intervals`` and the test ids (runs can prove they used one split)."""
    return {
        **scores(expert, predicted, labels),
        "intervals": intervals(expert, predicted, labels),
        "test_ids": sorted(ids),
    }


def test_metrics(expert: pd.Series, predicted: pd.Series, ids: pd.Series, labels: list[str]) -> dict[str, Any]:
    """score() with its intervals and the test ids."""
    return scores_with_intervals(expert, predicted, ids, labels, score, bootstrap_intervals)


def score_votes(votes_path: str, labels: list[str], output_path: str, *, metrics: TestMetrics) -> dict[str, Any]:
    """The evaluate_teacher step of a kind (its arguments): a teacher × prompt's votes on the test
    split, scored by the kind's ``metrics``."""
    votes = pd.read_parquet(votes_path)
    test = votes.loc[votes["split"] == "test"]
    scores = metrics(test["expert_label"], test["label"], test["id"], labels)
    _write(scores, output_path)
    return scores


def score_student(
    model_dir: str,
    test_path: str,
    labels: list[str],
    max_length: int,
    metrics_path: str,
    predictions_path: str,
    *,
    metrics: TestMetrics,
) -> dict[str, Any]:
    """The evaluate_student step of a sequence-classification kind (its arguments): the student's
    answers on the test split through the torch serving path, scored by the kind's ``metrics``."""
    test = pd.read_parquet(test_path)
    predictions = predict_frame(model_dir, test, max_length)
    predictions.to_parquet(predictions_path, index=False)
    scores = metrics(test["expert_label"], predictions["label"], test["id"], labels)
    _write(scores, metrics_path)
    return scores


# The scoring steps of task single_label: a kind differs only in its test metrics.
evaluate_teacher = partial(score_votes, metrics=test_metrics)
evaluate_student = partial(score_student, metrics=test_metrics)


def test_predictions(path: str) -> pd.Series:
    """Predicted test labels by id, from a teacher's votes or a student's predictions file."""
    frame = pd.read_parquet(path)
    if "split" in frame:
        frame = frame.loc[frame["split"] == "test"]
    return frame.set_index("id")["label"]


def aligned_predictions(path: str, test: pd.DataFrame, test_path: str) -> pd.Series:
    """A model's test predictions in the order of ``test`` (the test split by id). Other ids than the
    split's would compare different items (the reference case's row-indexing bug): an error."""
    series = test_predictions(path)
    if set(series.index) != set(test.index):
        raise SynthDistillError(f"{path}: predicted test ids differ from {test_path}")
    return series.reindex(test.index)


def paired_tests(
    models: dict[str, str], pairs: list[tuple[str, str]], test_path: str, labels: list[str]
) -> pd.DataFrame:
    """McNemar and paired-bootstrap results for each (a, b) pair of named prediction files; every
    model must have predicted the same test ids."""
    test = pd.read_parquet(test_path).set_index("id")
    predictions = {name: aligned_predictions(path, test, test_path) for name, path in models.items()}
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


def write_paired(
    models: dict[str, str],
    teachers: list[str],
    students: dict[str, str],
    test_path: str,
    labels: list[str],
    output: str,
    *,
    tests: Callable[[dict[str, str], list[str], dict[str, str], str, list[str]], pd.DataFrame],
) -> pd.DataFrame:
    """The compare_models step of a kind (its arguments): its paired ``tests`` of (models, teachers,
    students, test_path, labels), one row per pair, written as CSV."""
    table = tests(models, teachers, students, test_path, labels)
    table.to_csv(output, index=False)
    return table


def _paired_table(
    models: dict[str, str], teachers: list[str], students: dict[str, str], test_path: str, labels: list[str]
) -> pd.DataFrame:
    return paired_tests(models, comparison_pairs(teachers, students, list(models)), test_path, labels)


# The compare_models step of task single_label.
write_paired_tests = partial(write_paired, tests=_paired_table)
