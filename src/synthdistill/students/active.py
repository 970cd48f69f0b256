"""Which texts of the pool the teacher labels next, from the current student's answers (issue 27).

Pure functions of arrays, so each strategy can be checked for what it chooses: the rounds that call
them (predict the unlabelled pool with the round's student, choose, annotate the chosen texts) come
on top. Probabilities are one row per pool text: a distribution over the labels for single_label
(rows sum to 1), independent per-label probabilities for multi_label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthdistill import SynthDistillError

STRATEGIES = ("random", "uncertainty", "diversity", "accept_reject")
MEASURES = ("margin", "entropy")
# accept_reject passes over the pool before the last places go to the most uncertain texts left.
_MAX_PASSES = 100


def uncertainty(probabilities: np.ndarray, *, measure: str, multi_label: bool) -> np.ndarray:
    """Per text, how unsure the student is, in [0, 1] (1: no idea).

    margin: 1 - (top probability - second); entropy: the distribution's entropy over its maximum.
    For multi_label each label is its own yes/no question and the text's uncertainty is their mean,
    so a text the student is sure of for every label but one still counts as somewhat unsure.
    """
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    if p.ndim != 2 or len(p) == 0:
        raise SynthDistillError(f"uncertainty: probabilities must be a non-empty texts × labels array, got {p.shape}")
    if measure not in MEASURES:
        raise SynthDistillError(f"uncertainty: measure {measure!r} is not one of {', '.join(MEASURES)}")
    if multi_label:
        # Each label as a two-way distribution (p, 1 - p).
        pairs = np.stack([p, 1.0 - p], axis=-1)
        return np.mean([_one(pairs[:, j, :], measure) for j in range(p.shape[1])], axis=0)
    return _one(p, measure)


def _one(p: np.ndarray, measure: str) -> np.ndarray:
    if measure == "margin":
        top_two = -np.sort(-p, axis=1)[:, :2]
        return 1.0 - (top_two[:, 0] - top_two[:, 1])
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log(safe)).sum(axis=1) / np.log(p.shape[1])


def choose(
    strategy: str,
    size: int,
    *,
    scores: np.ndarray,
    rng: np.random.Generator,
    embeddings: np.ndarray | None = None,
    labelled_embeddings: np.ndarray | None = None,
    candidates_per_pick: int,
) -> np.ndarray:
    """Positions (into ``scores``) of the ``size`` pool texts to annotate next, in the order chosen.

    random: uniformly, the baseline. uncertainty: the highest ``scores``. diversity: among the
    ``candidates_per_pick × size`` most uncertain, greedy k-center on the embeddings, so the round
    does not spend its budget on near-copies of one hard text (each pick is the candidate farthest
    from everything labelled or picked so far). accept_reject (after M-RARU, arXiv 2511.11574): texts
    drawn at random are each kept with probability score / max score, so uncertain texts are
    favoured and every text keeps a chance, which guards against a student that is confidently wrong.
    """
    scores = np.asarray(scores, dtype=float)
    if strategy not in STRATEGIES:
        raise SynthDistillError(f"active strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    size = min(size, len(scores))
    if size <= 0:
        return np.array([], dtype=int)
    if strategy == "random":
        return rng.choice(len(scores), size=size, replace=False)
    if strategy == "uncertainty":
        # Ties (a student that says the same for many texts) broken at random, not by pool order.
        return np.lexsort((rng.random(len(scores)), -scores))[:size]
    if strategy == "diversity":
        if embeddings is None:
            raise SynthDistillError("active strategy diversity needs the pool's embeddings")
        shortlist = np.lexsort((rng.random(len(scores)), -scores))[: size * candidates_per_pick]
        picked = k_center(embeddings[shortlist], size, labelled_embeddings)
        return shortlist[picked]
    return _accept_reject(scores, size, rng)


def _accept_reject(scores: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    top = scores.max()
    accept = scores / top if top > 0 else np.ones_like(scores)
    chosen: list[int] = []
    left = np.arange(len(scores))
    for _ in range(_MAX_PASSES):
        if len(chosen) == size:
            break
        order = rng.permutation(left)
        kept = order[rng.random(len(order)) < accept[order]]
        chosen.extend(kept[: size - len(chosen)].tolist())
        left = np.setdiff1d(left, chosen)
    # Texts the student is (almost) sure of are (almost) never kept: the rest, most uncertain first.
    rest = left[np.argsort(-scores[left], kind="stable")]
    return np.asarray(chosen + rest[: size - len(chosen)].tolist(), dtype=int)


def k_center(points: np.ndarray, size: int, centres: np.ndarray | None = None) -> np.ndarray:
    """Greedy k-center (Sener and Savarese 2018) by cosine distance: ``size`` positions of ``points``,
    each the one farthest from the ``centres`` and the points picked before it."""
    unit = _unit(points)
    if centres is not None and len(centres):
        nearest = 1.0 - (unit @ _unit(centres).T).max(axis=1)
    else:
        nearest = np.full(len(unit), np.inf)
    picked: list[int] = []
    for _ in range(min(size, len(unit))):
        # The first pick without centres is the first point (the most uncertain, in choose's order).
        best = int(np.argmax(nearest))
        picked.append(best)
        nearest = np.minimum(nearest, 1.0 - unit @ unit[best])
        nearest[picked] = -np.inf
    return np.asarray(picked, dtype=int)


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def stopped_after(scores: Sequence[float], *, min_gain: float, patience: int) -> int | None:
    """The round after which annotation stops, or None: the first round whose validation score (the
    student's agreement with the teacher) is no more than ``min_gain`` above the best before it for
    ``patience`` rounds in a row. Rounds are numbered from 0."""
    flat = 0
    for round_, score in enumerate(scores):
        if round_ == 0:
            continue
        flat = flat + 1 if score <= max(scores[:round_]) + min_gain else 0
        if flat >= patience:
            return round_
    return None
