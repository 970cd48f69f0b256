"""Uncertainty of test-split scores: bootstrap intervals and paired tests between two models.

A test split of a few hundred items moves accuracy by several points between resamples, so
every score a user compares carries an interval, and "is A better than B" is answered on the
same items (paired), not by comparing two intervals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

RESAMPLES = 2000
LEVEL = 0.95


def _codes(values: pd.Series | list, labels: list[str]) -> np.ndarray:
    """Label indexes; an abstention (or any value outside the label set) becomes -1, i.e. wrong."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index.get(v, -1) if not pd.isna(v) else -1 for v in values], dtype=np.int64)


def _accuracy_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and F1 macro for many resamples at once.

    ``y_true``/``y_pred`` are (resamples, n) arrays of label codes. F1 macro follows
    scikit-learn's ``average="macro"`` over the fixed label set with zero_division=0: a class
    absent from a resample and never predicted scores 0.
    """
    correct = y_true == y_pred
    accuracy = correct.mean(axis=1)
    f1 = np.zeros(len(y_true))
    for label in range(n_labels):
        tp = (correct & (y_true == label)).sum(axis=1)
        fp = ((y_pred == label) & (y_true != label)).sum(axis=1)
        fn = ((y_true == label) & (y_pred != label)).sum(axis=1)
        denominator = 2 * tp + fp + fn
        f1 += np.divide(2 * tp, denominator, out=np.zeros(len(y_true)), where=denominator > 0)
    return accuracy, f1 / n_labels


def _resample_index(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_draw(n: int, resamples: int, level: float, seed: int, over: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The resampled indices (resamples × n) of a percentile bootstrap over ``n`` test ``over`` (items,
    texts), and the method and level its intervals are reported with."""
    if n == 0:
        raise ValueError("no test items to resample")
    method = f"percentile bootstrap over test {over}, {resamples} resamples, seed {seed}"
    return _resample_index(n, resamples, seed), {"method": method, "level": level}


def _interval(values: np.ndarray, level: float) -> list[float]:
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def difference_test(difference: np.ndarray, level: float) -> tuple[list[float], float]:
    """A paired difference's interval over resamples and its two-sided bootstrap p-value."""
    return _interval(difference, level), float(min(1.0, 2 * min((difference <= 0).mean(), (difference >= 0).mean())))


def bootstrap_intervals(
    expert: pd.Series | list,
    predicted: pd.Series | list,
    labels: list[str],
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals for accuracy and F1 macro over the test items."""
    y_true, y_pred = _codes(expert, labels), _codes(predicted, labels)
    index, method = bootstrap_draw(len(y_true), resamples, level, seed, "items")
    accuracy, f1 = _accuracy_f1(y_true[index], y_pred[index], len(labels))
    return {
        **method,
        "accuracy": _interval(accuracy, level),
        "f1_macro": _interval(f1, level),
    }


def with_intervals(
    metrics: dict[str, Any], intervals: dict[str, list[float]], names: tuple[str, ...]
) -> dict[str, Any]:
    """``{name, name_low, name_high}`` for each metric name: the flat row shape the ranking,
    quality table and report share."""
    row: dict[str, Any] = {}
    for name in names:
        row[name] = metrics[name]
        row[f"{name}_low"], row[f"{name}_high"] = intervals[name]
    return row


def mcnemar(expert: pd.Series | list, a: pd.Series | list, b: pd.Series | list, labels: list[str]) -> dict[str, Any]:
    """Exact McNemar test on the items where exactly one of two models is right."""
    y_true = _codes(expert, labels)
    a_right, b_right = _codes(a, labels) == y_true, _codes(b, labels) == y_true
    only_a, only_b = int((a_right & ~b_right).sum()), int((~a_right & b_right).sum())
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else float(binomtest(only_a, discordant, 0.5).pvalue)
    return {"only_a_right": only_a, "only_b_right": only_b, "p_value": p_value}


def paired_bootstrap(
    expert: pd.Series | list,
    a: pd.Series | list,
    b: pd.Series | list,
    labels: list[str],
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Interval of F1 macro(a) - F1 macro(b), both scored on the same resampled items."""
    y_true, y_a, y_b = _codes(expert, labels), _codes(a, labels), _codes(b, labels)
    index = _resample_index(len(y_true), resamples, seed)
    _, f1_a = _accuracy_f1(y_true[index], y_a[index], len(labels))
    _, f1_b = _accuracy_f1(y_true[index], y_b[index], len(labels))
    interval, p_value = difference_test(f1_a - f1_b, level)
    return {"f1_macro_difference_interval": interval, "p_value": p_value}


def compare(
    expert: pd.Series | list, a: pd.Series | list, b: pd.Series | list, labels: list[str], seed: int = 0
) -> dict[str, Any]:
    """McNemar on correctness plus a paired bootstrap of the F1 macro difference."""
    y_true = _codes(expert, labels)
    return {
        "n": len(y_true),
        "accuracy_a": float((_codes(a, labels) == y_true).mean()),
        "accuracy_b": float((_codes(b, labels) == y_true).mean()),
        "mcnemar": mcnemar(expert, a, b, labels),
        "paired_bootstrap": paired_bootstrap(expert, a, b, labels, seed=seed),
    }
