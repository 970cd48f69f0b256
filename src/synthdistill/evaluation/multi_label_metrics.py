"""Scores of label sets on the frozen expert test split (task multi_label), identical for teachers
and students, with percentile bootstrap intervals over test items (metrics.stats) and a paired
bootstrap between two models on the same items.

An item without a prediction (no teacher iteration answered) counts as the empty set, so a teacher
cannot look better by failing; ``coverage`` says how often that happened.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.evaluation import scoring
from synthdistill.metrics.stats import LEVEL, RESAMPLES, _interval, _resample_index, bootstrap_draw, difference_test
from synthdistill.tasks.multi_label import indicator_matrix

SCORES = ("f1_micro", "f1_macro", "subset_accuracy", "hamming_loss")


def _matrices(expert: pd.Series, predicted: pd.Series, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if len(expert) != len(predicted):
        raise ValueError("expert and predicted label sets differ in length")
    filled = [p if isinstance(p, str) else "[]" for p in predicted]
    return indicator_matrix(expert, labels).astype(bool), indicator_matrix(filled, labels).astype(bool)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(tp.shape, dtype=float), where=denominator > 0)


def _scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """The SCORES for a stack of resamples: arrays of shape (..., items, labels) -> (...)."""
    tp = (truth & predicted).sum(axis=-2)
    fp = (~truth & predicted).sum(axis=-2)
    fn = (truth & ~predicted).sum(axis=-2)
    return {
        "f1_micro": _f1(tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1)),
        # scikit-learn's average="macro" with zero_division=0: a label absent and never predicted scores 0
        "f1_macro": _f1(tp, fp, fn).mean(axis=-1),
        "subset_accuracy": (truth == predicted).all(axis=-1).mean(axis=-1),
        "hamming_loss": (truth != predicted).mean(axis=(-2, -1)),
    }


def score_label_sets(expert: pd.Series, predicted: pd.Series, labels: list[str]) -> dict[str, Any]:
    """Micro and macro F1, subset accuracy, Hamming loss, per-label precision/recall/F1, coverage."""
    truth, guess = _matrices(expert, predicted, labels)
    tp, fp, fn = (truth & guess).sum(axis=0), (~truth & guess).sum(axis=0), (truth & ~guess).sum(axis=0)
    precision = np.divide(tp, tp + fp, out=np.zeros(len(labels)), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(len(labels)), where=(tp + fn) > 0)
    micro_precision, micro_recall = tp.sum() / max(tp.sum() + fp.sum(), 1), tp.sum() / max(tp.sum() + fn.sum(), 1)
    return {
        "n": len(truth),
        **{name: float(value) for name, value in _scores(truth, guess).items()},
        "precision_micro": float(micro_precision),
        "recall_micro": float(micro_recall),
        "coverage": float(np.mean([isinstance(p, str) for p in predicted])) if len(truth) else 0.0,
        "per_label": {
            label: {
                "precision": float(precision[j]),
                "recall": float(recall[j]),
                "f1": float(_f1(tp[j], fp[j], fn[j])),
                "support": int(truth[:, j].sum()),
                "predicted": int(guess[:, j].sum()),
            }
            for j, label in enumerate(labels)
        },
    }


def bootstrap_label_set_intervals(
    expert: pd.Series,
    predicted: pd.Series,
    labels: list[str],
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of every score in SCORES and of each label's F1."""
    truth, guess = _matrices(expert, predicted, labels)
    index, method = bootstrap_draw(len(truth), resamples, level, seed, "items")
    scores = _scores(truth[index], guess[index])
    t, g = truth[index], guess[index]
    per_label = _f1((t & g).sum(axis=1), (~t & g).sum(axis=1), (t & ~g).sum(axis=1))  # resamples × labels
    return {
        **method,
        **{name: _interval(values, level) for name, values in scores.items()},
        "per_label_f1": {label: _interval(per_label[:, j], level) for j, label in enumerate(labels)},
    }


def paired_bootstrap(
    expert: pd.Series,
    a: pd.Series,
    b: pd.Series,
    labels: list[str],
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Micro F1 of a and b on the same resampled items: the interval of their difference and a
    two-sided bootstrap p-value."""
    truth, guess_a = _matrices(expert, a, labels)
    _, guess_b = _matrices(expert, b, labels)
    index = _resample_index(len(truth), resamples, seed)
    difference = _scores(truth[index], guess_a[index])["f1_micro"] - _scores(truth[index], guess_b[index])["f1_micro"]
    interval, p_value = difference_test(difference, level)
    return {
        "n": len(truth),
        "f1_micro_a": float(_scores(truth, guess_a)["f1_micro"]),
        "f1_micro_b": float(_scores(truth, guess_b)["f1_micro"]),
        "f1_micro_difference_interval": interval,
        "p_value": p_value,
    }


def test_metrics(expert: pd.Series, predicted: pd.Series, ids: pd.Series, labels: list[str]) -> dict[str, Any]:
    """The label sets' scores, their intervals and the test ids, marked as multi_label's."""
    scores = scoring.scores_with_intervals(
        expert, predicted, ids, labels, score_label_sets, bootstrap_label_set_intervals
    )
    return {"task": "multi_label", **scores}


# The scoring steps of task multi_label: the voted and the predicted sets on the test split.
evaluate_teacher = partial(scoring.score_votes, metrics=test_metrics)
evaluate_student = partial(scoring.score_student, metrics=test_metrics)


def paired_table(
    models: dict[str, str], teachers: list[str], students: dict[str, str], test_path: str, labels: list[str]
) -> pd.DataFrame:
    """Each student against the teacher it learned from (``students``: student -> source name), on the
    same test ids (a mismatch is an error: it would compare different items). Teachers are not
    compared with each other in a multi_label run: ``teachers`` is unused."""
    test = pd.read_parquet(test_path).set_index("id")
    rows = []
    for student, source in students.items():
        if source not in models:
            continue
        pair = {name: scoring.aligned_predictions(models[name], test, test_path) for name in (student, source)}
        result = paired_bootstrap(test["expert_label"], pair[student], pair[source], labels)
        low, high = result["f1_micro_difference_interval"]
        rows.append(
            {
                "a": student,
                "b": source,
                "n": result["n"],
                "f1_micro_a": result["f1_micro_a"],
                "f1_micro_b": result["f1_micro_b"],
                "f1_micro_diff_low": low,
                "f1_micro_diff_high": high,
                "bootstrap_p": result["p_value"],
            }
        )
    columns = ["a", "b", "n", "f1_micro_a", "f1_micro_b", "f1_micro_diff_low", "f1_micro_diff_high", "bootstrap_p"]
    return pd.DataFrame(rows, columns=columns)


# The compare_models step of task multi_label.
write_paired_tests = partial(scoring.write_paired, tests=paired_table)
