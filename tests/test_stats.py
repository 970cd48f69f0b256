import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from synthdistill.evaluation.scoring import comparison_pairs, paired_tests
from synthdistill.metrics.stats import _accuracy_f1, _codes, bootstrap_intervals, compare, mcnemar

LABELS = ["positive", "negative", "neutral"]


def random_labels(n, seed, noise):
    rng = np.random.default_rng(seed)
    truth = rng.choice(LABELS, size=n)
    predicted = np.where(rng.random(n) < noise, rng.choice(LABELS, size=n), truth)
    return pd.Series(truth), pd.Series(predicted)


def test_vectorised_scores_match_scikit_learn_on_every_resample():
    truth, predicted = random_labels(60, seed=1, noise=0.5)
    predicted[3] = None  # an abstention counts as wrong
    y_true, y_pred = _codes(truth, LABELS), _codes(predicted, LABELS)
    index = np.random.default_rng(0).integers(0, 60, size=(20, 60))
    accuracy, f1 = _accuracy_f1(y_true[index], y_pred[index], len(LABELS))
    for row, sample in enumerate(index):
        t, p = y_true[sample], y_pred[sample]
        assert accuracy[row] == pytest.approx(accuracy_score(t, p))
        assert f1[row] == pytest.approx(f1_score(t, p, labels=[0, 1, 2], average="macro", zero_division=0))


def test_interval_brackets_the_score_and_narrows_with_more_items():
    small = bootstrap_intervals(*random_labels(100, seed=2, noise=0.3), LABELS)
    large = bootstrap_intervals(*random_labels(2000, seed=2, noise=0.3), LABELS)
    truth, predicted = random_labels(100, seed=2, noise=0.3)
    point = accuracy_score(truth, predicted)
    assert small["accuracy"][0] < point < small["accuracy"][1]
    assert small["level"] == 0.95
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(large["accuracy"]) < width(small["accuracy"]) / 2
    assert width(large["f1_macro"]) < width(small["f1_macro"]) / 2


def test_mcnemar_counts_discordant_items_and_gives_the_exact_p_value():
    truth = pd.Series(["positive"] * 20)
    a = pd.Series(["positive"] * 20)
    b = pd.Series(["positive"] * 10 + ["negative"] * 10)
    result = mcnemar(truth, a, b, LABELS)
    assert (result["only_a_right"], result["only_b_right"]) == (10, 0)
    assert result["p_value"] == pytest.approx(2 * 0.5**10)
    assert mcnemar(truth, a, a, LABELS)["p_value"] == 1.0


def test_paired_bootstrap_separates_a_better_model_and_not_an_equal_one():
    truth, good = random_labels(400, seed=3, noise=0.1)
    _, bad = random_labels(400, seed=4, noise=0.8)
    bad = pd.Series(np.where(np.random.default_rng(5).random(400) < 0.5, truth, bad))
    clear = compare(truth, good, bad, LABELS)
    assert clear["paired_bootstrap"]["f1_macro_difference_interval"][0] > 0
    assert clear["mcnemar"]["p_value"] < 0.001
    same = compare(truth, good, good, LABELS)
    assert same["paired_bootstrap"]["f1_macro_difference_interval"] == [0.0, 0.0]


def test_paired_tests_refuse_models_scored_on_different_items(tmp_path):
    test = pd.DataFrame({"id": ["a", "b", "c"], "expert_label": ["positive", "negative", "neutral"]})
    test.to_parquet(tmp_path / "test.parquet")
    pd.DataFrame({"id": ["a", "b", "c"], "split": "test", "label": ["positive", "negative", "positive"]}).to_parquet(
        tmp_path / "teacher.parquet"
    )
    pd.DataFrame({"id": ["a", "b", "x"], "label": ["positive", "negative", "neutral"]}).to_parquet(
        tmp_path / "student.parquet"
    )
    models = {"t/p": str(tmp_path / "teacher.parquet"), "s/t/p": str(tmp_path / "student.parquet")}
    with pytest.raises(Exception, match="student.parquet: predicted test ids differ"):
        paired_tests(models, [("s/t/p", "t/p")], str(tmp_path / "test.parquet"), LABELS)


def test_comparison_pairs_match_students_to_their_teacher_and_teachers_to_each_other():
    pairs = comparison_pairs(["t/a", "t/b"], {"s/t/a": "t/a", "s/expert/gold": "expert/gold"})
    assert pairs == [("s/t/a", "t/a"), ("t/a", "t/b")]
