"""From a ``label_scores`` item's answers (the teacher's log-probabilities per label) to label
probabilities, the calibration prior they are divided by, and the label they give."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from synthdistill.annotation.requests import YES_NO
from synthdistill.annotation.teachers.base import Completion
from synthdistill.tasks.base import OK
from synthdistill.tasks.multi_label import label_set_json


def label_probabilities(
    completion: Completion, labels: list[str], prior: np.ndarray | None, answers: list[str] | None = None
) -> np.ndarray:
    """Normalised label probabilities, divided by the content-free prior when calibrating.
    ``answers`` are what the teacher scored for each label (its letter alias), when not the label."""
    logprobs = np.array([completion.extra["label_logprobs"][answer] for answer in answers or labels])
    probs = np.exp(logprobs - logprobs.max())
    if prior is not None:
        probs = probs / prior
    return probs / probs.sum()


def scored_probabilities(
    completions: list[Completion],
    labels: list[str],
    prior: np.ndarray | None,
    answers: list[str] | None = None,
    per_label: bool = False,
) -> np.ndarray:
    """Each label's probability from an item's label_scores answers: one distribution over the labels
    (one request), or per label P(yes) / (P(yes) + P(no)) from its own request (per-label prompts;
    independent, so a text can have none or all of the labels). ``prior``: the content-free
    answers' probabilities, one row of (yes, no) per label for a per-label prompt."""
    if not per_label:
        return label_probabilities(completions[0], labels, prior, answers)
    return np.array(
        [label_probabilities(c, YES_NO, None if prior is None else prior[j])[0] for j, c in enumerate(completions)]
    )


def content_free_prior(
    completions: list[Completion], labels: list[str], answers: list[str] | None = None, per_label: bool = False
) -> np.ndarray:
    """What contextual calibration divides by: the teacher's answer distribution for the content-free
    text (per label its yes/no distribution, for a per-label prompt)."""
    if per_label:
        return np.stack([label_probabilities(c, YES_NO, None) for c in completions])
    return label_probabilities(completions[0], labels, None, answers)


def scored_answer(
    completions: list[Completion],
    labels: list[str],
    prior: np.ndarray | None,
    answers: list[str] | None,
    per_label: bool,
    threshold: float,
) -> dict[str, Any]:
    """An item's annotation columns from its label_scores answers: the raw log-probabilities, the label
    (for a per-label prompt the set of labels at or above ``threshold``) and ``prob_<label>``."""
    probs = scored_probabilities(completions, labels, prior, answers, per_label)
    if per_label:
        raw = json.dumps({x: c.extra["label_logprobs"] for x, c in zip(labels, completions, strict=True)})
        label = label_set_json([x for x, p in zip(labels, probs, strict=True) if p >= threshold], labels)
    else:
        raw, label = json.dumps(completions[0].extra["label_logprobs"]), labels[int(probs.argmax())]
    row: dict[str, Any] = {"raw_output": raw, "label": label, "reason": None, "parse_status": OK}
    row.update({f"prob_{x}": float(p) for x, p in zip(labels, probs, strict=True)})
    return row
