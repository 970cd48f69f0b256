"""Scores on the frozen expert test split, identical for teachers and students."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

ABSTAIN = "<abstain>"


def score(expert: pd.Series, predicted: pd.Series, labels: list[str]) -> dict[str, Any]:
    """Accuracy, F1 macro, per-class precision/recall/F1 and the confusion matrix.

    An item without a prediction (a teacher abstained on a tie or every answer failed) counts as
    wrong, so a teacher cannot look better by abstaining; coverage says how often that happened.
    """
    if len(expert) != len(predicted):
        raise ValueError("expert and predicted labels differ in length")
    y_true = expert.astype(str).tolist()
    y_pred = [ABSTAIN if pd.isna(p) else str(p) for p in predicted]
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=[*labels, ABSTAIN])
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "coverage": float(sum(p != ABSTAIN for p in y_pred) / len(y_pred)) if y_pred else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "rows_expert": labels,
            "columns_predicted": [*labels, ABSTAIN],
            "counts": matrix[: len(labels)].tolist(),
        },
    }
