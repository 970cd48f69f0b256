"""What a student is trained towards: one-hot labels, the teacher's vote shares, or its label scores.

A teacher that splits its votes 2:1 knows less than one that votes 3:0; training on the vote
distribution (or on the calibrated label probabilities of a ``label_scores`` prompt) passes that
uncertainty to the student instead of pretending every label is certain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError

TARGETS = ("hard", "votes", "scores")
CLASS_WEIGHTS = (None, "balanced")
# Columns of a training frame holding its target distribution (one per label, in label order).
TARGET_PREFIX = "target_"


def target_columns(labels: list[str]) -> list[str]:
    return [f"{TARGET_PREFIX}{label}" for label in labels]


def one_hot(label_values: pd.Series, labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(label_values), len(labels)), dtype="float32")
    out[np.arange(len(label_values)), [index[v] for v in label_values]] = 1.0
    return out


def target_matrix(items: pd.DataFrame, labels: list[str], targets: str, source: str) -> np.ndarray:
    """(items, labels) target distributions, each row summing to 1.

    ``votes`` reads the ``votes_<label>`` counts of the vote file (failed answers are no vote);
    ``scores`` reads the ``prob_<label>`` columns a ``label_scores`` prompt leaves there. Items a
    person corrected (``corrected``) keep their corrected label as a one-hot target: the review is
    the truth, not the teacher's doubt. ``source`` names the student and labeller in errors.
    """
    if targets not in TARGETS:
        raise SynthDistillError(f"{source}: targets {targets!r} is not one of {TARGETS}")
    hard = one_hot(items["label"], labels)
    if targets == "hard":
        return hard
    prefix = "votes_" if targets == "votes" else "prob_"
    columns = [f"{prefix}{label}" for label in labels]
    missing = [c for c in columns if c not in items]
    if missing:
        why = (
            "a label_scores prompt gives per-item label probabilities; this labeller's prompt does not"
            if targets == "scores"
            else "the vote file has no vote counts"
        )
        raise SynthDistillError(f"{source}: targets: {targets} needs columns {missing} in its labels: {why}")
    mass = items[columns].to_numpy(dtype="float64")
    total = np.nansum(mass, axis=1, keepdims=True)
    usable = np.isfinite(mass).all(axis=1) & (total[:, 0] > 0)
    # A labelled item always has at least one vote; scores can be missing where every request failed.
    soft = np.where(usable[:, None], np.nan_to_num(mass) / np.where(total > 0, total, 1.0), hard)
    if "corrected" in items:
        corrected = items["corrected"].fillna(False).to_numpy(dtype=bool)
        soft[corrected] = hard[corrected]
    return soft.astype("float32")


def with_targets(items: pd.DataFrame, labels: list[str], targets: str, source: str) -> pd.DataFrame:
    """``items`` with its target distribution in ``target_<label>`` columns (travels with subsets)."""
    return items.assign(
        **dict(zip(target_columns(labels), target_matrix(items, labels, targets, source).T, strict=True))
    )


def class_weight_vector(targets: np.ndarray, class_weights: str | None) -> np.ndarray:
    """Per-class loss weights: ones, or ``balanced`` (n / (classes × target mass of the class), as
    scikit-learn's 'balanced' on hard labels). A class with no target mass gets weight 0: no item
    is pulled towards it either way."""
    n, k = targets.shape
    if class_weights is None:
        return np.ones(k, dtype="float32")
    if class_weights != "balanced":
        raise SynthDistillError(f"class_weights {class_weights!r} is not one of {CLASS_WEIGHTS}")
    mass = targets.sum(axis=0)
    return np.divide(n, k * mass, out=np.zeros(k), where=mass > 0).astype("float32")


def soft_cross_entropy(logits: Any, targets: Any, class_weights: Any) -> Any:
    """Per-item cross-entropy against a target distribution, each class's term weighted:
    -sum_c w_c q_c log p_c. With one-hot targets and unit weights it is the usual cross-entropy."""
    import torch

    log_probs = torch.nn.functional.log_softmax(logits.float(), dim=-1)
    return -(targets * class_weights * log_probs).sum(dim=-1)
