"""Trivial baselines on the expert test split, and the checks that compare every system with them.

A teacher or student that does not beat always answering the train pool's majority class has
learned nothing usable, however good its numbers look on their own; a student that answers one
class for nearly every validation item has collapsed. The report says both, never silently.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthdistill.evaluation.scoring import test_metrics

# A student predicting one class for more than this share of the validation split has collapsed.
COLLAPSE_SHARE = 0.95


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
