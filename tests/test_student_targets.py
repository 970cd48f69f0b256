"""Students trained on hard labels, vote shares or label scores, with optional balanced class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthdistill import SynthDistillError
from synthdistill.students.files import label_frames
from synthdistill.students.inference import TorchPredictor
from synthdistill.students.targets import class_weight_vector, soft_cross_entropy, target_matrix
from synthdistill.students.training import train

from .conftest import LABEL_DEFAULTS, LABELS, MINILM, REPO


def votes_frame() -> pd.DataFrame:
    """Vote-file rows as vote() and import_review write them (LABELS = positive, negative, neutral)."""
    return pd.DataFrame(
        {
            "id": list("abcde"),
            "split": ["train", "train", "train", "validation", "test"],
            "text": list("abcde"),
            "label": ["positive", "negative", "neutral", "neutral", "neutral"],
            "votes_positive": [2, 0, 1, 0, 0],
            "votes_negative": [1, 3, 0, 0, 0],
            "votes_neutral": [0, 0, 1, 3, 3],
            "n_failed": [0, 0, 1, 0, 0],
            "prob_positive": [0.5, 0.1, 0.2, 0.1, 0.1],
            "prob_negative": [0.3, 0.8, 0.2, 0.1, 0.1],
            "prob_neutral": [0.2, 0.1, 0.6, 0.8, 0.8],
            # c was corrected by a person from the teacher's tie to neutral.
            "corrected": [False, False, True, False, False],
        }
    )


def test_targets_are_vote_shares_or_scores_and_corrections_stay_one_hot():
    items = votes_frame().iloc[:3]
    hard = target_matrix(items, LABELS, "hard", "s")
    assert hard.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    votes = target_matrix(items, LABELS, "votes", "s")
    # A failed answer is no vote: a's 2:1 split gives 2/3, 1/3.
    np.testing.assert_allclose(votes[0], [2 / 3, 1 / 3, 0], rtol=1e-6)
    np.testing.assert_allclose(votes[1], [0, 1, 0])
    np.testing.assert_allclose(votes[2], [0, 0, 1])  # corrected: the person's label, not the 1:1 votes
    scores = target_matrix(items, LABELS, "scores", "s")
    np.testing.assert_allclose(scores[0], [0.5, 0.3, 0.2], rtol=1e-6)
    np.testing.assert_allclose(scores[2], [0, 0, 1])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)


def test_scores_without_label_scores_name_the_student_and_labeller(tmp_path):
    votes = votes_frame().drop(columns=["prob_positive", "prob_negative", "prob_neutral"])
    votes.to_parquet(tmp_path / "labels.parquet")
    source = "students.minilm.targets (labeller smollm2/cot_json)"
    with pytest.raises(
        SynthDistillError, match=r"students\.minilm\.targets \(labeller smollm2/cot_json\).*label_scores"
    ):
        label_frames(
            [str(tmp_path / "labels.parquet")],
            "smollm2",
            **{**LABEL_DEFAULTS, "targets": "scores"},
            labels=LABELS,
            source=source,
        )


def test_label_frames_carry_targets_for_training_items_only(tmp_path):
    votes_frame().to_parquet(tmp_path / "labels.parquet")
    train_items, validation = label_frames(
        [str(tmp_path / "labels.parquet")], "t", **{**LABEL_DEFAULTS, "targets": "votes"}, labels=LABELS
    )
    np.testing.assert_allclose(train_items["target_positive"], [2 / 3, 0, 0], rtol=1e-6)
    assert "target_positive" not in validation  # epochs are chosen on the hard validation labels


def test_balanced_class_weights_follow_the_target_mass():
    targets = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]], dtype="float32")
    weights = class_weight_vector(targets, "balanced")
    # n / (k * mass): 4/(3*3), 4/(3*1), and 0 for a class no item is pulled towards.
    np.testing.assert_allclose(weights, [4 / 9, 4 / 3, 0], rtol=1e-6)
    np.testing.assert_allclose(class_weight_vector(targets, None), [1, 1, 1])
    with pytest.raises(SynthDistillError, match="class_weights"):
        class_weight_vector(targets, "inverse")


def test_soft_cross_entropy_is_cross_entropy_for_one_hot_and_minimal_at_the_target():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.3, -0.2]])
    ones = torch.ones(3)
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 2]), 3).float()
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]), reduction="none")
    torch.testing.assert_close(soft_cross_entropy(logits, one_hot, ones), expected)
    weights = torch.tensor([0.5, 2.0, 1.0])
    weighted = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]), weight=weights, reduction="none")
    torch.testing.assert_close(soft_cross_entropy(logits, one_hot, weights), weighted)
    # The gradient vanishes where the model's distribution is the target distribution.
    target = torch.tensor([[0.6, 0.3, 0.1]])
    at_target = target.log().clone().requires_grad_(True)
    soft_cross_entropy(at_target, target, ones).sum().backward()
    torch.testing.assert_close(at_target.grad, torch.zeros_like(target), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_vote_targets_reach_the_model(tmp_path):
    """Every item voted 2:1 positive:negative. Hard targets teach 'positive, surely'; vote targets
    teach the split, so the trained MiniLM gives negative about a third of its probability."""
    texts = pd.read_csv(REPO / "data" / "demo" / "financial_news_sentiment.csv")["text"].iloc[:24]
    items = pd.DataFrame({"text": texts, "label": "positive"})
    settings = {"learning_rate": 5e-4, "epochs": 2, "batch_size": 8, "max_length": 24, "seed": 0}
    shares = {"target_positive": 2 / 3, "target_negative": 1 / 3, "target_neutral": 0.0}
    negative = {}
    for name, frame in (("hard", items), ("votes", items.assign(**shares))):
        meta = train(frame, items.iloc[:0], LABELS, MINILM, settings, tmp_path / name, trust_remote_code=False)
        assert meta["targets"] == ("soft" if name == "votes" else "hard")
        probabilities = TorchPredictor(tmp_path / name, 24).predict_proba(texts.tolist())
        negative[name] = float(probabilities[:, LABELS.index("negative")].mean())
    # Measured: hard 0.06, votes 0.27 (the target is 1/3; two short epochs do not get all the way).
    assert negative["hard"] < 0.12, negative
    assert 0.2 < negative["votes"] < 0.45, negative
