"""The active-distillation strategies choose what they say they choose."""

from __future__ import annotations

import numpy as np
import pytest

from synthdistill import SynthDistillError
from synthdistill.students.active import choose, k_center, stopped_after, uncertainty


@pytest.mark.parametrize("measure", ["margin", "entropy"])
def test_uncertainty_is_zero_when_sure_and_one_when_guessing(measure):
    single = uncertainty(
        np.array([[1.0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]]), measure=measure, multi_label=False
    )
    assert single[0] == pytest.approx(0) and single[1] == pytest.approx(1)
    assert 0 < single[2] < 1
    multi = uncertainty(np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.5]]), measure=measure, multi_label=True)
    assert multi.tolist() == pytest.approx([0, 1, 0.5])


def test_margin_ranks_a_close_call_above_a_clear_one():
    scores = uncertainty(np.array([[0.5, 0.45, 0.05], [0.5, 0.25, 0.25]]), measure="margin", multi_label=False)
    assert scores[0] > scores[1]


def _pick(strategy, scores, seed=0, **kwargs):
    return choose(
        strategy,
        kwargs.pop("size", 2),
        scores=np.asarray(scores),
        rng=np.random.default_rng(seed),
        candidates_per_pick=kwargs.pop("candidates_per_pick", 5),
        **kwargs,
    )


def test_uncertainty_takes_the_most_uncertain_texts():
    assert sorted(_pick("uncertainty", [0.1, 0.9, 0.3, 0.8, 0.2]).tolist()) == [1, 3]


def test_random_takes_distinct_texts_reproducibly_and_ignores_scores():
    picks = [set(_pick("random", [0.0] * 9 + [1.0], seed=seed, size=3).tolist()) for seed in range(200)]
    assert all(len(p) == 3 for p in picks)
    assert _pick("random", [0.5] * 10, seed=7, size=3).tolist() == _pick("random", [0.5] * 10, seed=7, size=3).tolist()
    # The most uncertain text is taken about as often as any other (3 in 10).
    assert 0.2 < np.mean([9 in p for p in picks]) < 0.4


def _two_clusters():
    rng = np.random.default_rng(1)
    a = np.array([1.0, 0, 0]) + rng.normal(0, 0.01, (5, 3))
    b = np.array([0, 1.0, 0]) + rng.normal(0, 0.01, (5, 3))
    # Cluster a holds the five most uncertain texts, cluster b the next five.
    return np.vstack([a, b]), np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.89, 0.88, 0.87, 0.86])


def test_diversity_spreads_a_round_over_clusters_that_uncertainty_spends_on_one():
    embeddings, scores = _two_clusters()
    assert set(_pick("uncertainty", scores).tolist()) <= {0, 1, 2, 3, 4}
    picked = _pick("diversity", scores, embeddings=embeddings).tolist()
    assert picked[0] == 0  # the most uncertain text first
    assert {p < 5 for p in picked} == {True, False}  # one of each cluster


def test_diversity_starts_away_from_what_is_already_labelled():
    embeddings, scores = _two_clusters()
    picked = _pick(
        "diversity", scores, size=1, candidates_per_pick=10, embeddings=embeddings, labelled_embeddings=embeddings[:1]
    )
    assert picked[0] >= 5


def test_diversity_needs_embeddings():
    with pytest.raises(SynthDistillError, match="diversity needs the pool's embeddings"):
        _pick("diversity", [0.5, 0.4])


def test_k_center_picks_the_farthest_point_each_time():
    points = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    assert k_center(points, 3).tolist() == [0, 3, 2]


def test_accept_reject_favours_uncertain_texts_but_leaves_every_one_a_chance():
    scores = np.array([1.0, 0.5, 0.1] + [0.05] * 7)
    counts = np.zeros(len(scores))
    for seed in range(400):
        picked = _pick("accept_reject", scores, seed=seed, size=2)
        assert len(set(picked.tolist())) == 2
        counts[picked] += 1
    assert counts[0] > counts[1] > counts[2] > counts[3]
    assert (counts > 0).all()


def test_accept_reject_fills_the_round_with_texts_the_student_is_sure_of_when_it_must():
    picked = _pick("accept_reject", [0.0, 0.0, 0.7, 0.0], size=3)
    assert picked[0] == 2 and sorted(picked.tolist()) in ([0, 1, 2], [0, 2, 3], [1, 2, 3])


def test_a_round_never_asks_for_more_texts_than_the_pool_holds():
    assert sorted(_pick("uncertainty", [0.3, 0.2], size=5).tolist()) == [0, 1]
    assert _pick("random", [0.3, 0.2], size=0).tolist() == []


def test_unknown_strategy_and_measure_are_refused_by_name():
    with pytest.raises(SynthDistillError, match="active strategy 'greedy' is not one of random, uncertainty"):
        _pick("greedy", [0.5])
    with pytest.raises(SynthDistillError, match="measure 'gini' is not one of margin, entropy"):
        uncertainty(np.array([[0.5, 0.5]]), measure="gini", multi_label=False)


@pytest.mark.parametrize(
    "scores, patience, expected",
    [
        ([0.5, 0.6, 0.605, 0.607], 2, 3),
        ([0.5, 0.6, 0.605, 0.607], 1, 2),
        ([0.5, 0.6, 0.7, 0.8], 1, None),
        ([0.5, 0.6, 0.55, 0.7, 0.69], 2, None),  # a dip then a gain resets the count
        ([0.5], 1, None),
    ],
)
def test_annotation_stops_when_validation_agreement_stops_gaining(scores, patience, expected):
    assert stopped_after(scores, min_gain=0.01, patience=patience) == expected
