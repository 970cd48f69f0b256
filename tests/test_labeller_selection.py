"""The gold dev split, the labeller ranking on it, and students_learn_from: best."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from synthdistill import SynthDistillError
from synthdistill.data import prepare
from synthdistill.labels.selection import rank_labellers, select_labeller
from synthdistill.reporting.sections import selection_section
from synthdistill.settings import check_gold_dev

from .conftest import LABELS, REPO
from .pipeline_helpers import copy_run, planned_jobs, snakemake, write_config

DATASET = {"path": str(REPO / "data" / "demo" / "financial_news_sentiment.csv"), "text_column": "text"}
DATASET["label_column"] = "label"
SPLIT = {"test_size": 0.2, "validation_size": 0.15, "seed": 3}


def test_gold_dev_comes_from_the_train_pool_and_leaves_test_and_validation_as_they_were():
    plain, _ = prepare(DATASET, LABELS, SPLIT, "single_label")
    items, summary = prepare(DATASET, LABELS, {**SPLIT, "gold_dev_size": 30}, "single_label")
    for name in ("test", "validation"):
        assert set(items.loc[items["split"] == name, "id"]) == set(plain.loc[plain["split"] == name, "id"])
    gold = items.loc[items["split"] == "gold_dev"]
    assert len(gold) == 30 and set(gold["id"]) <= set(plain.loc[plain["split"] == "train", "id"])
    assert not set(gold["id"]) & set(items.loc[items["split"] != "gold_dev", "id"])
    assert set(gold["expert_label"]) == set(LABELS)  # stratified
    assert summary["per_split"]["gold_dev"] == 30


def test_gold_dev_and_best_need_expert_labels_and_each_other():
    base = {"dataset": DATASET, "split": SPLIT, "students_learn_from": "all"}
    with pytest.raises(SynthDistillError, match=r"students_learn_from: best .* split\.gold_dev_size"):
        check_gold_dev({**base, "students_learn_from": "best"})
    unlabelled = {**base, "dataset": {**DATASET, "label_column": None}, "split": {**SPLIT, "gold_dev_size": 10}}
    with pytest.raises(SynthDistillError, match="split.gold_dev_size.*dataset.label_column"):
        check_gold_dev(unlabelled)
    with pytest.raises(SynthDistillError, match="gold_dev_size=5000: the train pool has only"):
        prepare(DATASET, LABELS, {**SPLIT, "gold_dev_size": 5000}, "single_label")


def votes_of(labels_by_split: dict[str, list[str]], expert: dict[str, list[str]]) -> pd.DataFrame:
    rows = [
        {"id": f"{split}{i}", "split": split, "label": label, "expert_label": expert[split][i]}
        for split, labels in labels_by_split.items()
        for i, label in enumerate(labels)
    ]
    return pd.DataFrame(rows)


def test_ranking_uses_gold_dev_only():
    gold_expert = ["positive", "negative", "neutral", "neutral"]
    expert = {"gold_dev": gold_expert, "test": ["positive", "negative", "neutral"]}
    gold_dev = pd.DataFrame({"id": [f"gold_dev{i}" for i in range(4)], "expert_label": gold_expert})
    # a is right on 3 of 4 gold dev items and wrong on every test item; b the other way round.
    votes = {
        "t/a": votes_of({"gold_dev": ["positive", "negative", "neutral", "positive"], "test": ["neutral"] * 3}, expert),
        "t/b": votes_of({"gold_dev": ["neutral", "neutral", "neutral", None], "test": expert["test"]}, expert),
    }
    ranking = rank_labellers(votes, gold_dev, LABELS)
    assert ranking["labeller"].tolist() == ["t/a", "t/b"] and ranking["chosen"].tolist() == [True, False]
    assert ranking.loc[0, "accuracy"] == 0.75 and ranking.loc[1, "coverage"] == 0.75
    flipped = {
        name: frame.assign(label=np.where(frame["split"] == "test", "negative", frame["label"]))
        for name, frame in votes.items()
    }
    pd.testing.assert_frame_equal(rank_labellers(flipped, gold_dev, LABELS), ranking)
    with pytest.raises(SynthDistillError, match="t/a: 1 gold dev items were not annotated"):
        rank_labellers({"t/a": votes["t/a"].iloc[1:]}, gold_dev, LABELS)


@pytest.mark.slow
def test_students_learn_from_the_labeller_ranked_first_on_gold_dev(tiny_run, tmp_path):
    """A real run with a gold dev split, students_learn_from: best and vote targets, by config alone
    (every target, with the shipped profile the run picks up from profiles/default): the labeller
    ranked first on gold dev is the one the student learned from, the test split is the tiny run's,
    and test labels, however changed, change no choice. compare_models once failed here after every
    paid call (its params held a rule's output object, which cannot be pickled into the script), and
    so did every plain rerun."""
    run = copy_run(tiny_run, tmp_path / "run")
    config = yaml.safe_load((run / "config" / "config.yaml").read_text())
    config = copy.deepcopy(config)
    config["split"]["gold_dev_size"] = 5
    config["students_learn_from"] = "best"
    config["students"]["minilm"]["targets"] = "votes"
    # Cheaper than the tiny run where that changes nothing under test: every target still runs.
    config["evaluation"] = {"expert_baseline": False}
    config["review"] = {"features": "tfidf"}
    config["costs"]["benchmark"] = {"texts": 40, "latency_texts": 5, "batch_sizes": [8]}
    write_config(run / "config" / "config.yaml", config)
    assert (run / "profiles" / "default" / "config.yaml").exists()
    snakemake(run)
    paired = pd.read_csv(run / "results" / "evaluation" / "paired_tests.csv")
    assert {"best/on_gold_dev", "minilm/best/on_gold_dev"} <= set(paired["a"]) | set(paired["b"])
    assert "Ranked first" in (run / "results" / "report" / "report.md").read_text()
    assert planned_jobs(run) == []  # a plain rerun has nothing left to do

    data = run / "results" / "data"
    pd.testing.assert_frame_equal(
        pd.read_parquet(data / "test.parquet"), pd.read_parquet(tiny_run / "results" / "data" / "test.parquet")
    )
    gold = pd.read_parquet(data / "gold_dev.parquet")
    assert len(gold) == 5
    train_ids = set(pd.read_parquet(data / "train.parquet")["id"]) | set(
        pd.read_parquet(data / "validation.parquet")["id"]
    )
    assert not set(gold["id"]) & train_ids

    # The ranking, recomputed from the vote files and the gold dev file alone.
    names = ["smollm2/label", "smollm2/cot_json"]
    votes = {n: run / "results" / "votes" / f"{n}.parquet" for n in names}
    f1 = {}
    for name, path in votes.items():
        frame = pd.read_parquet(path)
        assert set(gold["id"]) <= set(frame.loc[frame["split"] == "gold_dev", "id"])  # every labeller annotated them
        f1[name] = rank_labellers({name: frame}, gold, LABELS).loc[0, "f1_macro"]
    choice = json.loads((run / "results" / "labels" / "best.json").read_text())
    ranking = pd.read_csv(run / "results" / "labels" / "ranking.csv")
    assert choice["labeller"] == ranking.loc[0, "labeller"] == max(names, key=lambda n: (f1[n], -names.index(n)))
    best = pd.read_parquet(run / "results" / "labels" / "best.parquet")
    reviewed = pd.read_parquet(run / "results" / "review" / f"{choice['labeller']}.labels.parquet")
    pd.testing.assert_frame_equal(best.drop(columns="labeller"), reviewed)
    metadata = json.loads(
        (run / "results" / "students" / "minilm" / "best" / "on_gold_dev" / "metadata.json").read_text()
    )
    assert metadata["labeller"] == choice["labeller"] and metadata["targets"] == "soft"
    assert metadata["train_examples"] == int(((reviewed["split"] == "train") & reviewed["label"].notna()).sum())

    # Test labels (expert and every labeller's) changed in the real vote files: the same choice.
    outputs = {k: str(tmp_path / f"again.{k}") for k in ("ranking", "choice", "labels")}
    changed = {}
    for name, path in votes.items():
        frame = pd.read_parquet(path)
        test = frame["split"] == "test"
        frame.loc[test, "label"] = "negative"
        frame.loc[test, "expert_label"] = "negative"
        changed[name] = str(tmp_path / f"{name.replace('/', '_')}.parquet")
        frame.to_parquet(changed[name])
    labels = {n: str(run / "results" / "review" / f"{n}.labels.parquet") for n in names}
    again = select_labeller(changed, labels, str(data / "gold_dev.parquet"), LABELS, outputs)
    assert again == choice
    pd.testing.assert_frame_equal(pd.read_csv(outputs["ranking"]), ranking)

    section = selection_section(choice=choice, ranking=ranking, learn_from_best=True)
    text = " ".join(value for kind, value in section.blocks if kind == "text")
    assert f"Ranked first: {choice['labeller']}" in text and "best/on_gold_dev" in text


def test_report_names_the_choice_and_costs_a_best_student_against_the_chosen_labeller(tmp_path):
    from synthdistill.reporting.report import build

    from .test_report import report_inputs

    inputs = report_inputs(tmp_path)
    inputs["students"][1].update(teacher="best", prompt="on_gold_dev")  # learned from the chosen labeller
    choice = {
        "labeller": "smollm2/cot_json",
        "ranked_on": "gold_dev split, 40 expert-labelled items; by F1 macro, then accuracy",
        "versus_runner_up": {
            "runner_up": "smollm2/label",
            "mcnemar_p": 0.03,
            "f1_macro_difference_interval": [0.01, 0.2],
        },
    }
    (tmp_path / "best.json").write_text(json.dumps(choice))
    ranking = pd.DataFrame(
        {
            "rank": [1, 2],
            "labeller": ["smollm2/cot_json", "smollm2/label"],
            "n": [40, 40],
            "f1_macro": [0.6, 0.5],
            "f1_macro_low": [0.5, 0.4],
            "f1_macro_high": [0.7, 0.6],
            "accuracy": [0.65, 0.55],
            "accuracy_low": [0.55, 0.45],
            "accuracy_high": [0.75, 0.65],
            "coverage": [1.0, 0.95],
            "chosen": [True, False],
        }
    )
    ranking.to_csv(tmp_path / "ranking.csv", index=False)
    tables = build(**inputs, selection_paths=(str(tmp_path / "best.json"), str(tmp_path / "ranking.csv")))
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Labeller selection" in markdown.split("## Label quality")[0].split("## Quality")[1]
    assert "Ranked first: smollm2/cot_json." in markdown
    assert "learned from smollm2/cot_json's labels" in markdown
    breaks = tables["break_even"].set_index("student")
    assert breaks.loc["minilm/best/on_gold_dev", "teacher_prompt"] == "smollm2/cot_json"
    assert "minilm/best/on_gold_dev (learned from smollm2/cot_json): F1 macro" in markdown.split("## Quality")[0]
