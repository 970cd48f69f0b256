"""Trivial baselines on the expert test split, and the checks that compare every system with them.

A teacher or student that does not beat always answering the train pool's majority class (multi-label:
every label, no label, or each label at random at its train share) has learned nothing usable, however
good its numbers look on their own; a student that answers one class for nearly every validation item
has collapsed (metrics.collapse). The report says both, never silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthdistill.evaluation.multi_label_metrics import test_metrics as label_set_metrics
from synthdistill.evaluation.scoring import test_metrics
from synthdistill.metrics.collapse import COLLAPSE_SHARE
from synthdistill.tasks.multi_label import indicator_matrix, label_set_json


def label_shares(values: pd.Series, labels: list[str]) -> dict[str, float]:
    """Share of each label among the non-missing values (0 for a label that never occurs)."""
    known = values.dropna().astype(str)
    counts = known.value_counts()
    return {label: float(counts.get(label, 0)) / len(known) if len(known) else 0.0 for label in labels}


def trivial_baselines(train: pd.DataFrame, test: pd.DataFrame, labels: list[str]) -> dict[str, dict[str, Any]]:
    """The majority class of the train pool's expert labels, always answered, scored on the test
    split like any system (intervals included); and the expected scores of answering at random with
    the train pool's label shares p_train: accuracy sum_c p_train(c) p_test(c), F1 macro the mean
    over labels of 2 p_train p_test / (p_train + p_test), the per-class F1 of such a guesser in expectation.
    """
    p_train = label_shares(train["expert_label"], labels)
    p_test = label_shares(test["expert_label"], labels)
    # Ties go to the label listed first in the config, so the choice does not depend on row order.
    majority = max(labels, key=lambda label: (p_train[label], -labels.index(label)))
    constant = pd.Series(majority, index=test.index)
    majority_metrics = test_metrics(test["expert_label"], constant, test["id"], labels)
    per_class_f1 = [
        2 * p_train[c] * p_test[c] / (p_train[c] + p_test[c]) if p_train[c] + p_test[c] else 0.0 for c in labels
    ]
    return {
        "majority": {**majority_metrics, "label": majority, "train_share": p_train[majority]},
        "prior_random": {
            "accuracy": sum(p_train[c] * p_test[c] for c in labels),
            "f1_macro": sum(per_class_f1) / len(labels),
            "coverage": 1.0,
            "n": len(test),
            "train_shares": p_train,
        },
    }


def collapsed(shares: dict[str, float] | None) -> tuple[bool | None, str | None, float | None]:
    """Whether a student's validation predictions collapsed onto one class: (flag, label, share);
    (None, None, None) when the shares were not recorded."""
    if not shares:
        return None, None, None
    label = max(shares, key=lambda name: shares[name])
    return shares[label] > COLLAPSE_SHARE, label, shares[label]


def _expert_sets(frame: pd.DataFrame) -> pd.Series:
    """A split's expert label sets (canonical JSON), items without one left out."""
    column = "expert_label" if "expert_label" in frame else "label"
    return frame[column].dropna()


def multi_label_baselines(train: pd.DataFrame, test: pd.DataFrame, labels: list[str]) -> dict[str, dict[str, Any]]:
    """Three trivial answers to a multi_label test split, scored like any system (task multi_label).

    ``every_label`` (every label for every text) and ``no_label`` (the empty set for every text) go
    through multi_label_metrics.test_metrics, intervals included. ``prior_random`` answers each label
    at random with its share p of the train pool's texts, independently: its expected scores, exact for
    subset accuracy (the mean over test texts of the product over labels of p or 1 - p) and Hamming loss
    (the mean over labels of p (1 - q) + (1 - p) q, q the label's test prevalence), and for F1 the F1 of
    the expected counts (tp = p n_pos, fp = p (n - n_pos), fn = (1 - p) n_pos; per label 2pq / (p + q)),
    as trivial_baselines does for single-label. No sample is drawn, so the figures are deterministic.
    """
    train_truth = indicator_matrix(_expert_sets(train), labels).astype(bool)
    test_sets = _expert_sets(test)
    ids = test.loc[test_sets.index, "id"]
    truth = indicator_matrix(test_sets, labels).astype(bool)
    p = train_truth.mean(axis=0) if len(train_truth) else np.zeros(len(labels))
    q = truth.mean(axis=0) if len(truth) else np.zeros(len(labels))
    n, positives = len(truth), truth.sum(axis=0)

    constant = {
        "every_label": label_set_json(labels, labels),
        "no_label": label_set_json([], labels),
    }
    out: dict[str, dict[str, Any]] = {
        name: label_set_metrics(test_sets, pd.Series(answer, index=test_sets.index), ids, labels)
        for name, answer in constant.items()
    }
    tp, fp, fn = p * positives, p * (n - positives), (1 - p) * positives
    per_label_f1 = np.divide(2 * p * q, p + q, out=np.zeros(len(labels)), where=(p + q) > 0)
    micro_denominator = 2 * tp.sum() + fp.sum() + fn.sum()
    out["prior_random"] = {
        "f1_micro": float(2 * tp.sum() / micro_denominator) if micro_denominator else 0.0,
        "f1_macro": float(per_label_f1.mean()),
        "subset_accuracy": float(np.where(truth, p, 1 - p).prod(axis=1).mean()) if n else 0.0,
        "hamming_loss": float((p * (1 - q) + (1 - p) * q).mean()),
        "coverage": 1.0,
        "n": n,
        "train_shares": dict(zip(labels, p.tolist(), strict=True)),
    }
    return out
