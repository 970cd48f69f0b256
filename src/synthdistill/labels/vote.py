"""Self-consistency vote: majority label over iterations, vote counts, agreement, failures."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError

TIE_POLICIES = ("abstain", "label_order")
VOTED, TIE_BROKEN, TIE, ALL_FAILED = "voted", "tie_broken", "tie", "all_failed"


def vote_one(votes: list[str | None], labels: list[str], tie_policy: str) -> tuple[str | None, str, float]:
    """The winning label, the vote status and the agreement for one item.

    Agreement is the winner's votes over all iterations: a failed answer counts as dissent, so
    one valid answer out of three is not mistaken for a unanimous one.
    """
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None, ALL_FAILED, 0.0
    top = max(counts.values())
    leaders = [label for label in labels if counts.get(label, 0) == top]
    agreement = top / len(votes)
    if len(leaders) == 1:
        return leaders[0], VOTED, agreement
    if tie_policy == "label_order":
        return leaders[0], TIE_BROKEN, agreement
    return None, TIE, agreement


def vote(iterations: list[pd.DataFrame], items: pd.DataFrame, labels: list[str], tie_policy: str) -> pd.DataFrame:
    """Combine the iterations of one teacher × prompt into one labelled row per item.

    ``items`` carries id, split, text (and expert_label when known); every iteration must cover
    exactly the same ids, or the votes would be misaligned.
    """
    if tie_policy not in TIE_POLICIES:
        raise SynthDistillError(f"vote.tie_policy: {tie_policy!r} is not one of {TIE_POLICIES}")
    ids = items["id"].tolist()
    out = vote_frame(items)
    matrix = pd.concat(iteration_answers(iterations, ids), axis=1).to_numpy()
    results = [vote_one([None if pd.isna(v) else v for v in row], labels, tie_policy) for row in matrix]
    out["label"] = [r[0] for r in results]
    out["vote_status"] = [r[1] for r in results]
    out["agreement"] = [r[2] for r in results]
    for label in labels:
        out[f"votes_{label}"] = (matrix == label).sum(axis=1)
    out["n_failed"] = pd.isna(pd.DataFrame(matrix)).sum(axis=1).to_numpy()
    out["n_iterations"] = len(iterations)
    probs = mean_label_probabilities(iterations, ids, labels)
    if probs is not None:
        out[[f"prob_{label}" for label in labels]] = probs
    return out


def iteration_answers(iterations: list[pd.DataFrame], ids: list[str]) -> list[pd.Series]:
    """Each iteration's answer (``label``) per item, in the order of ``ids``. Every iteration must
    cover exactly these ids, or the votes would be misaligned."""
    answers = []
    for number, frame in enumerate(iterations):
        if sorted(frame["id"]) != sorted(ids):
            raise SynthDistillError(f"annotation iteration {number} does not cover the same items as the prompts")
        answers.append(frame.set_index("id")["label"].reindex(ids))
    return answers


def vote_frame(items: pd.DataFrame) -> pd.DataFrame:
    """The item columns every kind's votes start with (expert_label only where it is known)."""
    return items[[c for c in ("id", "split", "text", "expert_label") if c in items]].copy().reset_index(drop=True)


def mean_label_probabilities(iterations: list[pd.DataFrame], ids: list[str], labels: list[str]) -> np.ndarray | None:
    """label_scores teachers: each label's probability averaged over the iterations that answered
    (items × labels), kept in the votes as ``prob_<label>`` for filtering, review and soft targets;
    None for other prompts. A single-label row is a distribution, a multi_label row one independent
    probability per label."""
    prob_columns = [f"prob_{label}" for label in labels]
    if not all(set(prob_columns) <= set(frame.columns) for frame in iterations):
        return None
    stacked = np.stack([frame.set_index("id")[prob_columns].reindex(ids).to_numpy() for frame in iterations])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an item no iteration scored stays NaN
        return np.nanmean(stacked, axis=0)


def vote_summary(votes: pd.DataFrame) -> dict[str, int | float]:
    """Counts the report shows: labelled, ties, all-failed, unanimous share."""
    status = votes["vote_status"].value_counts()
    return {
        "items": len(votes),
        "labelled": int(votes["label"].notna().sum()),
        "ties_abstained": int(status.get(TIE, 0)),
        "ties_broken": int(status.get(TIE_BROKEN, 0)),
        "all_failed": int(status.get(ALL_FAILED, 0)),
        "unanimous_share": float((votes["agreement"] == 1.0).mean()),
    }
