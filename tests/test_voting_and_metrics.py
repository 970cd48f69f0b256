import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.labels.vote import ALL_FAILED, TIE, TIE_BROKEN, VOTED, vote, vote_one
from synthdistill.metrics.single_label import score

from .conftest import LABELS


@pytest.mark.parametrize(
    "votes, policy, expected",
    [
        (["positive", "positive", "negative"], "abstain", ("positive", VOTED, 2 / 3)),
        (["neutral", "neutral", "neutral"], "abstain", ("neutral", VOTED, 1.0)),
        (["positive", None, None], "abstain", ("positive", VOTED, 1 / 3)),
        (["negative", "positive", None], "abstain", (None, TIE, 1 / 3)),
        (["negative", "positive", None], "label_order", ("positive", TIE_BROKEN, 1 / 3)),
        ([None, None, None], "abstain", (None, ALL_FAILED, 0.0)),
    ],
)
def test_vote_one(votes, policy, expected):
    assert vote_one(votes, LABELS, policy) == expected


def iteration(labels_by_id):
    return pd.DataFrame({"id": list(labels_by_id), "label": list(labels_by_id.values())})


def test_vote_aligns_by_id_not_by_row_order():
    items = pd.DataFrame({"id": ["a", "b"], "split": ["train", "test"], "text": ["x", "y"]})
    first = iteration({"a": "positive", "b": "negative"})
    second = iteration({"b": "negative", "a": "positive"})  # same answers, other row order
    third = iteration({"a": None, "b": "positive"})
    votes = vote([first, second, third], items, LABELS, "abstain").set_index("id")
    assert votes.loc["a", "label"] == "positive"
    assert votes.loc["a", "n_failed"] == 1
    assert votes.loc["b", "label"] == "negative"
    assert votes.loc["b", ["votes_positive", "votes_negative", "votes_neutral"]].tolist() == [1, 2, 0]
    assert votes.loc["b", "agreement"] == pytest.approx(2 / 3)


def test_vote_rejects_misaligned_iterations():
    items = pd.DataFrame({"id": ["a", "b"], "split": ["train", "train"], "text": ["x", "y"]})
    with pytest.raises(SynthDistillError, match="iteration 1 does not cover"):
        vote([iteration({"a": "positive", "b": "positive"}), iteration({"a": "positive"})], items, LABELS, "abstain")


def test_score_counts_abstentions_as_wrong():
    expert = pd.Series(["positive", "negative", "neutral", "neutral"])
    predicted = pd.Series(["positive", None, "neutral", "positive"])
    metrics = score(expert, predicted, LABELS)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["coverage"] == pytest.approx(0.75)
    assert metrics["per_class"]["negative"]["recall"] == 0.0
    assert metrics["per_class"]["neutral"]["recall"] == pytest.approx(0.5)
    assert metrics["confusion_matrix"]["counts"][1] == [0, 0, 0, 1]  # negative -> abstain
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
