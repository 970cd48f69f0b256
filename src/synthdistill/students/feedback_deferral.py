"""Deferred share before and after the feedback loop: of the texts the served student deferred (all
of them, by construction: only deferred texts reach the feedback file), how many the student
retrained on them still defers at its new cascade operating point, and how often it now agrees with
the teacher's label on them.

These texts are in the retrained student's training data, so the figures say what the loop taught
it, not how it does on unseen texts (the cascade's test-split figures say that).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.students.cascade_policy import CascadePolicy
from synthdistill.students.inference import load_predictor


def feedback_deferral(
    student_dir: str | Path, labels_path: str | Path, cascade_path: str | Path, max_length: int
) -> dict[str, Any]:
    labels = pd.read_parquet(labels_path)
    served = labels.loc[labels["feedback"].astype(bool)] if "feedback" in labels else labels.iloc[:0]
    policy = CascadePolicy.from_file(cascade_path)
    result: dict[str, Any] = {
        "feedback_texts": len(served),
        "deferred_share_before": 1.0 if len(served) else None,
        "deferred_share_after": None,
        "agreement_with_teacher_after": None,
        "policy": policy.to_dict(),
        "in_training_data": True,
    }
    if len(served):
        predictor = load_predictor(student_dir, "auto", max_length, batch_size=None)  # the predictor's own batch
        probabilities = predictor.predict_proba(served["text"].tolist())
        predicted = np.array(predictor.labels)[probabilities.argmax(axis=1)]
        result["deferred_share_after"] = float(policy.defer(probabilities).mean())
        result["agreement_with_teacher_after"] = float((predicted == served["label"].to_numpy()).mean())
    return result


def write_feedback_deferral(
    student_dir: str, labels_path: str, cascade_path: str, max_length: int, output: str, names: dict[str, str]
) -> dict[str, Any]:
    """The feedback_deferral rule."""
    result = {**names, **feedback_deferral(student_dir, labels_path, cascade_path, max_length)}
    Path(output).write_text(json.dumps(result, indent=2) + "\n")
    return result
