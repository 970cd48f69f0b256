"""Whether a student's validation answers collapsed: one answer for nearly every text, whatever the text.

Single-label (the report reads ``validation_prediction_shares``): one class for more than COLLAPSE_SHARE
of the validation split. Multi-label (label_set_collapse, stored in the student's metadata.json at
training time): a pattern of answers that most validation texts get but their validation labels do not
show, or one label answered for nearly every text while few texts carry it. Only validation answers
are looked at, never the expert test split.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# A student answering one class (one label) for more than this share of the validation split has collapsed.
COLLAPSE_SHARE = 0.95
# "Most texts": more than this share of the validation split.
MOST_TEXTS = 0.5
# "(Near-)every label": at least this share of the labels, rounded up (5 of 6, 4 of 5, all of 2-4).
NEAR_EVERY_SHARE = 0.8
# A label is rare on validation (so answering it for nearly every text is a collapse) below this prevalence.
LOW_PREVALENCE = 0.5


def near_every(labels: int) -> int:
    """How many labels a set must hold to count as (near-)every label."""
    return max(1, math.ceil(NEAR_EVERY_SHARE * labels))


def label_set_collapse(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict[str, Any] | None:
    """The multi-label collapse check on validation (``truth``, ``predicted``: items × labels, 0/1).

    Collapsed when any of these holds, each named in ``reasons``:

    - more than MOST_TEXTS of the texts get (near-)every label, while at most MOST_TEXTS of their labels
      are that full (the labels do not ask for it);
    - more than MOST_TEXTS of the texts get no label, while at most MOST_TEXTS of them have none;
    - a label is answered for more than COLLAPSE_SHARE of the texts while its prevalence is below
      LOW_PREVALENCE (answering it says nothing about the text).

    A student whose answers follow what validation shows (most texts truly empty, say) is not flagged
    here; the report's trivial baselines say whether it beats answering that pattern blindly.
    None when there is no validation item.
    """
    truth, predicted = np.asarray(truth).astype(bool), np.asarray(predicted).astype(bool)
    if len(truth) == 0:
        return None
    full = near_every(len(labels))
    shares = {
        "every_label": float((predicted.sum(axis=1) >= full).mean()),
        "every_label_in_labels": float((truth.sum(axis=1) >= full).mean()),
        "no_label": float((~predicted.any(axis=1)).mean()),
        "no_label_in_labels": float((~truth.any(axis=1)).mean()),
    }
    answered, prevalence = predicted.mean(axis=0), truth.mean(axis=0)
    reasons = []
    if shares["every_label"] > MOST_TEXTS and shares["every_label_in_labels"] <= MOST_TEXTS:
        reasons.append(
            f"(near-)every label (at least {full} of {len(labels)}) for {shares['every_label']:.0%} of the "
            f"validation texts, whose labels are that full for {shares['every_label_in_labels']:.0%}"
        )
    if shares["no_label"] > MOST_TEXTS and shares["no_label_in_labels"] <= MOST_TEXTS:
        reasons.append(
            f"no label for {shares['no_label']:.0%} of the validation texts, "
            f"of which {shares['no_label_in_labels']:.0%} have none"
        )
    always = {
        label: float(answered[j])
        for j, label in enumerate(labels)
        if answered[j] > COLLAPSE_SHARE and prevalence[j] < LOW_PREVALENCE
    }
    if always:
        reasons.append(
            "a rare label for nearly every validation text: "
            + ", ".join(
                f"{label!r} for {share:.0%} (carried by {prevalence[labels.index(label)]:.0%})"
                for label, share in always.items()
            )
        )
    return {
        "collapsed": bool(reasons),
        "reasons": reasons,
        "near_every": full,
        **shares,
        "always_answered": always,
        "answered_shares": {label: float(answered[j]) for j, label in enumerate(labels)},
        "prevalence": {label: float(prevalence[j]) for j, label in enumerate(labels)},
        "items": len(truth),
    }
