"""Per-label self-consistency vote (task multi_label).

A label is kept when at least ``vote.min_share`` of the iterations that answered chose it; an
iteration that failed (no parsable answer) neither chooses nor rejects. Each label's agreement is the
share of the answering iterations that agree with the vote on it (chose a kept label, left out a
dropped one). The item's ``agreement`` is the share of ALL iterations whose whole set equals the
voted set: a failed answer counts as dissent, as in the single-label vote. An item that no iteration
answered has no vote (``label`` None, status all_failed).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.labels.vote import ALL_FAILED, VOTED, iteration_answers, mean_label_probabilities, vote_frame
from synthdistill.labels.vote_files import Voted, vote_step, voted_train
from synthdistill.tasks.multi_label import indicator_matrix, label_sets_of

# A share is a ratio of small counts; the tolerance keeps 2/3 >= 0.6667-style configs exact enough.
_TOLERANCE = 1e-9


def vote_label_sets(
    iterations: list[pd.DataFrame], items: pd.DataFrame, labels: list[str], min_share: float
) -> pd.DataFrame:
    """One row per item: the voted set, its agreement, and each label's share and agreement.

    ``items`` carries id, split, text (and expert_label when known); every iteration must cover
    exactly the same ids, or the votes would be misaligned.
    """
    if not 0 < min_share <= 1:
        raise SynthDistillError(f"vote.min_share: {min_share} is not in (0, 1]")
    ids = items["id"].tolist()
    answers = iteration_answers(iterations, ids)
    out = vote_frame(items)
    answered = np.stack([a.notna().to_numpy() for a in answers])  # iterations × items
    # iterations × items × labels, 0 where an iteration did not answer
    chosen = np.stack([indicator_matrix(a.fillna("[]"), labels) for a in answers]).astype(float)
    n_answered = answered.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = chosen.sum(axis=0) / n_answered[:, None]
    kept = shares >= min_share - _TOLERANCE
    voted = np.array(label_sets_of(kept, labels), dtype=object)
    has_vote = n_answered > 0
    voted[~has_vote] = None
    out["label"] = voted
    out["vote_status"] = np.where(has_vote, VOTED, ALL_FAILED)
    same_set = np.stack([(a.to_numpy() == voted) & answered[i] for i, a in enumerate(answers)])
    out["agreement"] = np.where(has_vote, same_set.sum(axis=0) / len(iterations), 0.0)
    for j, label in enumerate(labels):
        share = shares[:, j]
        out[f"share_{label}"] = np.where(has_vote, share, np.nan)
        out[f"agreement_{label}"] = np.where(has_vote, np.where(kept[:, j], share, 1.0 - share), np.nan)
    out["n_answered"] = n_answered
    out["n_failed"] = len(iterations) - n_answered
    out["n_iterations"] = len(iterations)
    probs = mean_label_probabilities(iterations, ids, labels)
    if probs is not None:  # a label_scores prompt: each label's own probability, not its vote share
        out[[f"prob_{label}" for label in labels]] = probs
    return out


def vote_summary(votes: pd.DataFrame, labels: list[str]) -> dict[str, Any]:
    """Counts the report shows: labelled, all-failed, unanimous share, and per label how often it was
    kept and how much the iterations agreed on it."""
    labelled = votes.loc[votes["label"].notna()]
    voted = indicator_matrix(labelled["label"], labels)
    sizes = voted.sum(axis=1)
    return {
        "items": len(votes),
        "labelled": len(labelled),
        "all_failed": int((votes["vote_status"] == ALL_FAILED).sum()),
        "empty_sets": int((sizes == 0).sum()),
        "mean_labels_per_item": float(sizes.mean()) if len(sizes) else None,
        "unanimous_share": float((votes["agreement"] == 1.0).mean()) if len(votes) else None,
        "per_label": {
            label: {
                "kept": int(voted[:, j].sum()),
                "mean_agreement": float(labelled[f"agreement_{label}"].mean()) if len(labelled) else None,
            }
            for j, label in enumerate(labels)
        },
    }


def _label_set_vote(
    iterations: list[pd.DataFrame], items: pd.DataFrame, labels: list[str], settings: dict[str, Any]
) -> Voted:
    """The files of a vote job: votes, the trainer-ready CSV (text, label set, one 0/1 column per
    label) of the train split, and the stats. ``settings``: config vote, whose min_share it reads."""
    votes = vote_label_sets(iterations, items, labels, settings["min_share"])
    train = voted_train(votes)
    onehot = pd.DataFrame(indicator_matrix(train["label"], labels), columns=labels)
    return Voted(votes, {"vote": vote_summary(votes, labels)}, pd.concat([train, onehot], axis=1))


write_votes = partial(vote_step, kind_vote=_label_set_vote)
