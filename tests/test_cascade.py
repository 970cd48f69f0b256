"""The cascade's fitting and scoring on synthetic predictions (fast), and the cascade rule on the tiny run."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.students.cascade import DEFER_ALL, build_cascade, choose_threshold, fit_temperature
from synthdistill.students.cascade_policy import CascadePolicy

from .pipeline_helpers import copy_run, planned_jobs, snakemake

LABELS = ["positive", "negative", "neutral"]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_temperature_fit_undoes_an_overconfident_student():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(4000, 3))
    calibrated = softmax(logits)
    targets = np.array([rng.choice(3, p=p) for p in calibrated])
    overconfident = softmax(logits * 2.5)  # the same ranking, probabilities pushed to 0 and 1
    assert fit_temperature(overconfident, targets) == pytest.approx(2.5, rel=0.1)
    assert fit_temperature(calibrated, targets) == pytest.approx(1.0, rel=0.1)


def synthetic_run(n_val=300, n_test=300, seed=1):
    """A student right where it is confident and guessing where not; a teacher 94% right."""
    rng = np.random.default_rng(seed)
    frames, votes, probs = {}, [], []
    for split, n in (("validation", n_val), ("test", n_test)):
        expert = rng.choice(LABELS, size=n)
        teacher = np.where(rng.random(n) < 0.06, rng.choice(LABELS, size=n), expert)
        sure = rng.random(n) < 0.7
        student = np.where(sure, teacher, rng.choice(LABELS, size=n))
        top = np.where(sure, rng.uniform(0.8, 0.99, n), rng.uniform(0.34, 0.6, n))
        p = np.full((n, 3), 0.0)
        for i, label in enumerate(student):
            k = LABELS.index(label)
            p[i] = (1 - top[i]) / 2
            p[i, k] = top[i]
        ids = [f"{split}-{i}" for i in range(n)]
        frames[split] = pd.DataFrame({"id": ids, "text": ids, "expert_label": expert, "split": split})
        votes.append(pd.DataFrame({"id": ids, "split": split, "label": teacher}))
        probs.append(pd.DataFrame({"id": ids, **{f"prob_{label}": p[:, j] for j, label in enumerate(LABELS)}}))
    votes = pd.concat(votes, ignore_index=True)
    votes.loc[3, "label"] = None  # a teacher abstention: left out of agreement, not a crash
    return frames["validation"], frames["test"], pd.concat(probs, ignore_index=True), votes


def test_operating_point_meets_the_target_on_validation_and_is_scored_on_test():
    validation, test, predictions, votes = synthetic_run()
    summary, curve, items = build_cascade(
        validation, test, predictions, votes, LABELS, "max_prob", {"min_agreement": 0.97}
    )
    val = summary["validation"]
    assert val["agreement"] >= 0.97 and val["items_with_teacher_label"] == 299
    # the least deferral that reaches the target: one step less deferral falls short of it
    chosen = curve.index[curve["chosen"]][0]
    assert curve.at[chosen - 1, "validation_agreement"] < 0.97
    assert 0.2 < val["deferred_share"] < 0.45  # about the 30% guessing share
    # the curve's ends: the student alone, and the teacher answering everything
    assert curve["threshold"].iloc[0] == 0 and curve["threshold"].iloc[-1] == DEFER_ALL
    assert curve["validation_deferred_share"].iloc[0] == 0 and curve["validation_deferred_share"].iloc[-1] == 1
    assert curve["validation_agreement"].is_monotonic_increasing
    t = summary["test"]
    assert curve["test_f1_macro"].iloc[0] == pytest.approx(t["student"]["f1_macro"])
    assert curve["test_f1_macro"].iloc[-1] == pytest.approx(t["teacher"]["f1_macro"])
    assert curve.at[chosen, "test_f1_macro"] == pytest.approx(t["cascade"]["f1_macro"])
    assert t["student"]["f1_macro"] < t["cascade"]["f1_macro"] <= t["teacher"]["f1_macro"] + 0.02
    assert t["paired"]["student_vs_teacher"]["mcnemar"]["p_value"] < 0.05
    assert t["deferred_share"] == pytest.approx(items.loc[items["split"] == "test", "deferred"].mean())
    # a deferred item carries the teacher's label, any other the student's
    deferred = items["deferred"]
    assert items.loc[deferred, "label"].equals(items.loc[deferred, "teacher_label"])
    assert (items.loc[~deferred, "label"] == items.loc[~deferred, "student_label"]).all()


def test_test_labels_never_move_the_operating_point():
    validation, test, predictions, votes = synthetic_run()
    before, _, _ = build_cascade(validation, test, predictions, votes, LABELS, "margin", {"max_deferred": 0.2})
    flipped = test.assign(expert_label=np.roll(test["expert_label"].to_numpy(), 1))
    after, _, _ = build_cascade(validation, flipped, predictions, votes, LABELS, "margin", {"max_deferred": 0.2})
    assert after["policy"] == before["policy"] and after["validation"] == before["validation"]
    assert after["test"]["cascade"]["f1_macro"] != before["test"]["cascade"]["f1_macro"]
    assert before["validation"]["deferred_share"] <= 0.2


def test_choice_rules():
    curve = pd.DataFrame(
        {
            "threshold": [0.0, 0.5, 0.7, 0.9, DEFER_ALL],
            "validation_deferred_share": [0.0, 0.1, 0.2, 0.2, 1.0],
            "validation_agreement": [0.80, 0.90, 0.95, 0.95, 1.0],
        }
    )
    assert choose_threshold(curve, {"min_agreement": 0.9}) == 1
    assert choose_threshold(curve, {"min_agreement": 0.99}) == 4
    assert choose_threshold(curve, {"max_deferred": 0.2}) == 2  # ties go to the lower threshold
    assert choose_threshold(curve, {"max_deferred": 0.0}) == 0


def test_a_teacher_vote_missing_for_a_validation_item_names_the_votes_file():
    validation, test, predictions, votes = synthetic_run(n_val=20, n_test=20)
    with pytest.raises(SynthDistillError, match="votes.parquet: no teacher vote for 1 validation item"):
        build_cascade(
            validation,
            test,
            predictions,
            votes.iloc[1:],
            LABELS,
            "max_prob",
            {"min_agreement": 0.9},
            votes_path="votes.parquet",
        )


def decision_row(**overrides):
    row = {
        "test_items": 100,
        "test_deferred_share": 0.2,
        "student_matches": False,
        "cascade_matches": False,
        "student_usd_per_1m_texts": 1.0,
        "cascade_usd_per_1m_texts": 21.0,
        "teacher_usd_per_1m_texts": 100.0,
    }
    return {**row, **overrides}


@pytest.mark.parametrize(
    "overrides, option",
    [
        ({"student_matches": True, "cascade_matches": True}, "switch to the student"),
        ({"cascade_matches": True}, "run the cascade"),
        ({}, "keep the teacher"),
        # a free teacher: matching it at a higher price is no reason to leave it
        ({"cascade_matches": True, "teacher_usd_per_1m_texts": 0.0}, "keep the teacher"),
        # no price configured for the student: quality decides
        ({"cascade_matches": True, "cascade_usd_per_1m_texts": None}, "run the cascade"),
        ({"test_items": None}, "–"),
    ],
)
def test_decision_names_one_of_three_options(overrides, option):
    from synthdistill.reporting.cascade import decide

    assert decide(decision_row(**overrides))[0] == option


def read(path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_cascade_rule_on_the_tiny_run_and_its_threshold_never_sees_the_test_split(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    results = run / "results"
    splits = {name: pd.read_parquet(results / "data" / f"{name}.parquet") for name in ("validation", "test")}
    for prompt in ("label", "cot_json"):
        base = results / "cascade" / "minilm" / "smollm2" / prompt
        summary = read(base.with_suffix(".json"))
        assert (summary["student"], summary["teacher"], summary["prompt"]) == ("minilm", "smollm2", prompt)
        policy = CascadePolicy.from_file(base.with_suffix(".json"))  # what serving reads
        curve = pd.read_csv(f"{base}.curve.csv")
        assert curve["chosen"].sum() == 1 and curve.loc[curve["chosen"], "threshold"].item() == policy.threshold
        # the student's test scores are evaluate_student's, the teacher's are evaluate_teacher's
        student = read(results / "evaluation" / "students" / "minilm" / "smollm2" / f"{prompt}.json")
        teacher = read(results / "evaluation" / "teachers" / "smollm2" / f"{prompt}.json")
        assert summary["test"]["student"]["f1_macro"] == pytest.approx(student["f1_macro"])
        assert summary["test"]["teacher"]["accuracy"] == pytest.approx(teacher["accuracy"])
        assert summary["test"]["test_ids"] == teacher["test_ids"]
        # per item: every validation and test item, deferred ones answered with the teacher's vote
        items = pd.read_parquet(f"{base}.items.parquet")
        for split, frame in splits.items():
            assert sorted(items.loc[items["split"] == split, "id"]) == sorted(frame["id"])
        votes = pd.read_parquet(results / "votes" / "smollm2" / f"{prompt}.parquet").set_index("id")["label"]
        assert items["teacher_label"].equals(votes.reindex(items["id"]).reset_index(drop=True).rename("teacher_label"))
        assert (items["deferred"] == policy.defer(items[[f"prob_{label}" for label in LABELS]].to_numpy())).all()
    assert not (results / "cascade" / "minilm" / "expert").exists()  # the expert baseline has no teacher
    assert "\n## Cascade\n" in (results / "report" / "report.md").read_text()

    # New expert labels on the test split only: the cascade is rescored, not refitted.
    target = results / "cascade" / "minilm" / "smollm2" / "label.json"
    before = read(target)
    test_path = results / "data" / "test.parquet"
    test, stat = pd.read_parquet(test_path), test_path.stat()
    test["expert_label"] = [LABELS[(LABELS.index(v) + 1) % 3] for v in test["expert_label"]]
    test.to_parquet(test_path, index=False)
    # Its old time, so that only the rerun asked for happens (prompts are built from every split).
    os.utime(test_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rerun = (str(target.relative_to(run)), "--forcerun", "cascade")
    assert [rule for rule, _ in planned_jobs(run, *rerun)] == ["cascade"]  # no LLM call, no training
    snakemake(run, *rerun)
    after = read(target)
    assert after["policy"] == before["policy"] and after["validation"] == before["validation"]

    def scores(summary):
        return [summary["test"][s][m] for s in ("student", "cascade", "teacher") for m in ("accuracy", "f1_macro")]

    assert scores(after) != scores(before)


def test_a_reviewed_labels_file_defers_to_what_the_teacher_said_not_the_correction():
    validation, test, predictions, votes = synthetic_run(n_val=60, n_test=60)
    reviewed = votes.rename(columns={"label": "voted_label"}).assign(label="neutral")  # every item "corrected"
    plain, _, _ = build_cascade(validation, test, predictions, votes, LABELS, "max_prob", {"min_agreement": 0.9})
    best, _, _ = build_cascade(validation, test, predictions, reviewed, LABELS, "max_prob", {"min_agreement": 0.9})
    assert best == plain
