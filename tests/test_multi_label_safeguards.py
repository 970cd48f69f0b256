"""Task multi_label's safeguards (issue 26): a floor of validation positives under a per-label
threshold, the collapse flag of a student's validation answers, and trivial baselines in the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthdistill.evaluation.baselines import multi_label_baselines
from synthdistill.evaluation.multi_label_metrics import test_metrics as label_set_metrics
from synthdistill.metrics.collapse import label_set_collapse
from synthdistill.reporting import multi_label_report
from synthdistill.schema import defaults
from synthdistill.students.multi_label_training import THRESHOLD_GRID, too_few_positives, tune_thresholds
from synthdistill.tasks.multi_label import label_set_json, label_sets_of

from .conftest import MINILM

LABELS = ["anger", "fear", "joy"]


# --- the floor of validation positives under a per-label threshold --------------------------------


def _validation_with_a_rare_label() -> tuple[np.ndarray, np.ndarray]:
    """40 validation texts: anger and fear each on 20, well separated around 0.5; joy on 2 texts,
    whose scores (0.06, 0.07) sit among the other texts' joy scores (0.05 to 0.30)."""
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 3), dtype=int)
    truth[:20, 0] = 1
    truth[10:30, 1] = 1
    truth[[3, 33], 2] = 1
    probs = np.where(truth == 1, rng.uniform(0.6, 0.9, truth.shape), rng.uniform(0.1, 0.4, truth.shape))
    probs[:, 2] = rng.uniform(0.05, 0.30, 40)
    probs[[3, 33], 2] = [0.06, 0.07]
    return probs, truth


def test_a_label_with_two_validation_positives_gets_the_global_threshold_not_its_own():
    probs, truth = _validation_with_a_rare_label()
    # Its own threshold would be 0.05 (the only one that keeps its two positives): joy for every text.
    own = tune_thresholds(probs, truth, 1)
    assert own[2] == pytest.approx(0.05) and (probs[:, 2] >= own[2]).all()

    thresholds = tune_thresholds(probs, truth, 10)
    assert too_few_positives(truth, 10).tolist() == [False, False, True]
    assert thresholds[:2].tolist() == pytest.approx(own[:2].tolist())  # enough positives: their own
    # joy answers at the one threshold tuned on all labels together (micro F1), which here separates
    # anger and fear and answers joy for no text.
    predicted = probs[:, :, None] >= THRESHOLD_GRID
    tp = (predicted & (truth[:, :, None] == 1)).sum(axis=(0, 1))
    wrong = (predicted != (truth[:, :, None] == 1)).sum(axis=(0, 1))
    micro_f1 = 2 * tp / (tp + tp + wrong)
    assert np.isclose(THRESHOLD_GRID[micro_f1 == micro_f1.max()], thresholds[2]).any()
    assert thresholds[2] > 0.3 and not (probs[:, 2] >= thresholds[2]).any()


def test_the_floor_is_a_student_setting_with_its_default_in_the_schema():
    assert defaults("students", "*")["min_threshold_positives"] == 10


# --- the collapse flag ------------------------------------------------------------------------------


def test_answering_every_label_for_every_text_is_a_collapse_and_answering_like_the_labels_is_not():
    probs, truth = _validation_with_a_rare_label()
    everything = np.ones_like(truth)
    check = label_set_collapse(truth, everything, LABELS)
    assert check["collapsed"] and check["every_label"] == 1.0 and check["every_label_in_labels"] == 0.0
    assert check["always_answered"] == {"joy": 1.0}  # joy is on 5% of the texts
    assert any("every label" in reason for reason in check["reasons"])

    assert not label_set_collapse(truth, truth, LABELS)["collapsed"]
    nothing = label_set_collapse(truth, np.zeros_like(truth), LABELS)
    assert nothing["collapsed"] and nothing["no_label"] == 1.0
    # Most texts truly without a label: answering none for them follows the labels, no collapse.
    mostly_empty = np.zeros((10, 3), dtype=int)
    mostly_empty[0, 0] = 1
    assert not label_set_collapse(mostly_empty, np.zeros_like(mostly_empty), LABELS)["collapsed"]
    # One rare label for nearly every text, the others right: a collapse of that label.
    rare = truth.copy()
    rare[:, 2] = 1
    check = label_set_collapse(truth, rare, LABELS)
    assert check["collapsed"] and list(check["always_answered"]) == ["joy"]


def _frames(n: int, sets: list[list[str]], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [f"text number {i} says {' and '.join(sets[i % len(sets)]) or 'nothing'}" for i in range(n)],
            "label": [label_set_json(sets[i % len(sets)], labels) for i in range(n)],
        }
    )


@pytest.mark.slow
def test_a_real_student_that_answers_every_label_is_flagged_in_its_metadata(tmp_path):
    """MiniLM taught that every text carries every label answers them all on validation, where each
    text has one: its metadata says it collapsed, and which labels fell back to the global threshold."""
    from synthdistill.students.multi_label_training import train_multi_label

    labels = ["a", "b", "c", "d"]
    train = _frames(16, [labels], labels)
    validation = _frames(20, [["a"], ["a"], ["b"], ["c"], ["d"]], labels)  # a on 8 texts, the others on 4
    settings = {
        "learning_rate": 1e-3,
        "epochs": 3,
        "batch_size": 8,
        "max_length": 16,
        "warmup_ratio": 0.0,
        "min_threshold_positives": 6,
    }
    metadata = train_multi_label(
        train, validation, labels, MINILM, settings, tmp_path / "model", trust_remote_code=False
    )
    assert metadata["threshold_floor"]["fell_back"] == ["b", "c", "d"]
    assert metadata["threshold_floor"]["validation_positives"] == {"a": 8, "b": 4, "c": 4, "d": 4}
    thresholds = metadata["label_thresholds"]
    assert thresholds["b"] == thresholds["c"] == thresholds["d"] == metadata["threshold_floor"]["global_threshold"]
    check = metadata["validation_collapse"]
    assert check["collapsed"] is True and check["every_label"] > 0.5
    assert metadata["history"][metadata["best_epoch"] - 1]["validation_collapsed"] is True


# --- trivial baselines ------------------------------------------------------------------------------


def _split(sets: list[list[str]], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"i{k}" for k in range(len(sets))],
            "text": [f"t{k}" for k in range(len(sets))],
            "expert_label": [label_set_json(chosen, labels) for chosen in sets],
        }
    )


def test_the_baselines_figures_by_hand():
    labels = ["a", "b"]
    train = _split([["a"], ["a", "b"], [], ["a"]], labels)  # p_a = 3/4, p_b = 1/4
    test = _split([["a"], ["b"], []], labels)  # q_a = q_b = 1/3
    out = multi_label_baselines(train, test, labels)

    every = out["every_label"]  # tp 2, fp 4, fn 0
    assert (every["f1_micro"], every["f1_macro"], every["subset_accuracy"]) == pytest.approx((0.5, 0.5, 0.0))
    assert every["hamming_loss"] == pytest.approx(4 / 6) and "intervals" in every
    nothing = out["no_label"]
    assert (nothing["f1_micro"], nothing["subset_accuracy"], nothing["hamming_loss"]) == pytest.approx(
        (0, 1 / 3, 1 / 3)
    )

    prior = out["prior_random"]
    assert prior["train_shares"] == {"a": 0.75, "b": 0.25}
    # expected counts: tp = .75 + .25 = 1, fp = .75*2 + .25*2 = 2, fn = .25 + .75 = 1
    assert prior["f1_micro"] == pytest.approx(2 / (2 + 2 + 1))
    # per label 2pq / (p + q): a 0.5 / (13/12), b (1/6) / (7/12)
    assert prior["f1_macro"] == pytest.approx((6 / 13 + 2 / 7) / 2)
    # texts {a}: .75 * .75, {b}: .25 * .25, {}: .25 * .75
    assert prior["subset_accuracy"] == pytest.approx((0.5625 + 0.0625 + 0.1875) / 3)
    # per label p (1 - q) + (1 - p) q: a 7/12, b 5/12
    assert prior["hamming_loss"] == pytest.approx(0.5)


# --- the report ---------------------------------------------------------------------------------------


def _write(path, value) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def test_the_report_shows_the_baselines_and_names_a_collapsed_student(tmp_path):
    labels = ["a", "b", "c"]
    train = _split([["a"], ["b"], ["c"], ["a"], [], ["a", "b"]] * 5, labels)
    test = _split([["a"], ["b"], ["c"], ["a"], [], ["a", "c"]] * 5, labels)
    train.to_parquet(tmp_path / "train.parquet")
    test.to_parquet(tmp_path / "test.parquet")
    truth = test["expert_label"]

    def student(name: str, predicted: pd.Series, collapse_predictions: np.ndarray) -> dict[str, str]:
        metrics = label_set_metrics(truth, predicted, test["id"], labels)
        validation = np.eye(3, dtype=int)[[0, 1, 2, 0, 1, 2]]
        metadata = {
            "train_examples": 30,
            "validation_examples": 6,
            "best_epoch": 1,
            "label_thresholds": {label: 0.5 for label in labels},
            "train_seconds": 1.0,
            "threshold_floor": {"fell_back": ["c"]},
            "validation_collapse": label_set_collapse(validation, collapse_predictions, labels),
        }
        return {
            "student": name,
            "teacher": "expert",
            "prompt": "gold",
            "metrics": _write(tmp_path / f"{name}.json", metrics),
            "metadata": _write(tmp_path / f"{name}.metadata.json", metadata),
        }

    everything = pd.Series([label_set_json(labels, labels)] * len(test), index=test.index)
    students = [
        student("good", truth, np.eye(3, dtype=int)[[0, 1, 2, 0, 1, 2]]),
        student("greedy", everything, np.ones((6, 3), dtype=int)),
    ]
    teacher_sets = pd.Series(label_sets_of(np.eye(3, dtype=int)[[0, 1, 2, 0, 0, 0] * 5], labels), index=test.index)
    stats = {
        "annotation": {"answers": 30, "parse_failures": 0, "request_errors": 0},
        "vote": {"labelled": 30, "items": 30, "unanimous_share": 1.0, "mean_labels_per_item": 1.0, "empty_sets": 0},
    }
    teachers = [
        {
            "teacher": "llm",
            "prompt": "p",
            "metrics": _write(tmp_path / "teacher.json", label_set_metrics(truth, teacher_sets, test["id"], labels)),
            "stats": _write(tmp_path / "stats.json", stats),
        }
    ]
    outputs = {"markdown": str(tmp_path / "report.md"), "html": str(tmp_path / "report.html")}
    splits = {"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet")}
    multi_label_report.build(teachers, students, labels, None, outputs, splits=splits)
    markdown = (tmp_path / "report.md").read_text()

    baselines = multi_label_baselines(train, test, labels)
    for name in ("baseline: every label", "baseline: no label", "baseline: each label at its train share"):
        assert f"| {name}" in markdown
    assert f"{baselines['every_label']['f1_micro']:.3f} [" in markdown
    # every label is the best trivial F1 micro; the greedy student is that baseline, so it does not beat it
    best = baselines["every_label"]["f1_micro"]
    assert f"The best on F1 micro: baseline: every label ({best:.3f}); on subset accuracy:" in markdown
    assert f"Not better than the best trivial baseline on F1 micro (baseline: every label, {best:.3f}): greedy" in (
        markdown
    )
    assert "beats trivial (F1 micro)" in markdown
    assert "Collapsed: greedy (expert/gold) answers (near-)every label" in markdown
    assert "Collapsed: good" not in markdown
    assert "Collapsed: greedy" in (tmp_path / "report.html").read_text()

    # Without the splits (a run before the rules pass them), no baselines and the flag still shown.
    multi_label_report.build(teachers, students, labels, None, outputs)
    markdown = (tmp_path / "report.md").read_text()
    assert "baseline:" not in markdown and "Collapsed: greedy (expert/gold)" in markdown
