"""The whole loop on a tiny config with the embedded teacher and student, and the rerun rules."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from .pipeline_helpers import (
    TINY_CONFIG,
    cache_rows,
    copy_run,
    make_workdir,
    planned_jobs,
    rules_of,
    snakemake,
    write_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    # These tests edit prompts, iterations and results in turn: they share one copy of the run.
    return copy_run(tiny_run, tmp_path_factory.mktemp("pipeline"))


def test_every_stage_writes_its_artifact(run):
    results = run / "results"
    splits = {name: pd.read_parquet(results / "data" / f"{name}.parquet") for name in ("train", "validation", "test")}
    assert sum(len(s) for s in splits.values()) == 30
    assert set().union(*(set(s["id"]) for s in splits.values())) == set(pd.concat(splits.values())["id"])
    summary = json.loads((results / "data" / "summary.json").read_text())
    assert summary["per_split"] == {name: len(s) for name, s in splits.items()}

    for prompt in ("label", "cot_json"):
        prompts = pd.read_parquet(results / "prompts" / "smollm2" / f"{prompt}.parquet")
        assert list(prompts.columns) == ["id", "split", "text", "messages", "rendered"]
        assert len(prompts) == 30
        # SmolLM2's chat template was applied: the model reads ChatML, with the text inside.
        assert prompts["rendered"].str.startswith("<|im_start|>").all()
        assert all(t in r for t, r in zip(prompts["text"], prompts["rendered"], strict=True))

        for iteration in (0, 1):
            answers = pd.read_parquet(results / "annotations" / "smollm2" / prompt / f"iter{iteration}.parquet")
            assert list(answers["id"]) == list(prompts["id"])
            assert {
                "raw_output",
                "label",
                "reason",
                "parse_status",
                "latency_s",
                "input_tokens",
                "output_tokens",
            } <= set(answers.columns)
            assert answers["label"].dropna().isin(TINY_CONFIG["labels"]).all()
            assert (answers["input_tokens"] > 0).all()
            ok = answers["parse_status"] == "ok"
            assert answers.loc[ok, "label"].notna().all() and answers.loc[~ok, "label"].isna().all()
            if prompt == "cot_json":
                assert answers.loc[ok, "reason"].notna().all()

        votes = pd.read_parquet(results / "votes" / "smollm2" / f"{prompt}.parquet")
        assert {"label", "agreement", "vote_status", "votes_positive", "n_failed", "expert_label"} <= set(votes.columns)
        assert (votes[["votes_positive", "votes_negative", "votes_neutral"]].sum(axis=1) + votes["n_failed"] == 2).all()
        train_csv = pd.read_csv(results / "votes" / "smollm2" / f"{prompt}.train.csv")
        assert list(train_csv.columns) == ["text", "label"]
        assert len(train_csv) == ((votes["split"] == "train") & votes["label"].notna()).sum()

    for teacher, prompt in (("smollm2", "label"), ("smollm2", "cot_json"), ("expert", "gold")):
        folder = results / "students" / "minilm" / teacher / prompt
        assert (folder / "model" / "model.safetensors").exists()
        metadata = json.loads((folder / "metadata.json").read_text())
        assert metadata["teacher"] == teacher and metadata["labels"] == TINY_CONFIG["labels"]
        assert metadata["train_examples"] > 0
        metrics = json.loads((results / "evaluation" / "students" / "minilm" / teacher / f"{prompt}.json").read_text())
        assert metrics["n"] == len(splits["test"])

    report = (results / "report" / "report.md").read_text()
    teacher_metrics = json.loads((results / "evaluation" / "teachers" / "smollm2" / "label.json").read_text())
    assert f"{teacher_metrics['accuracy']:.3f}" in report
    assert "expert labels (upper bound)" in report
    stats = json.loads((results / "votes" / "smollm2" / "label.stats.json").read_text())["annotation"]
    assert stats["answers"] == 60 and stats["input_tokens"] > 0
    # The in-process teacher's cost: its measured busy time × the default teacher hardware's $0.085/h.
    cost = stats["compute_s"] * 0.085 / 3600
    assert cost > 0 and f"{cost:.4g}" in report
    assert (results / "report" / "report.html").read_text().startswith("<!doctype html>")


def test_teachers_and_students_are_scored_on_the_same_frozen_test_split(run):
    test_ids = sorted(pd.read_parquet(run / "results" / "data" / "test.parquet")["id"])
    scored = list((run / "results" / "evaluation").rglob("*.json"))
    assert len(scored) == 5  # 2 teacher × prompt + 3 students
    for path in scored:
        metrics = json.loads(path.read_text())
        assert metrics["test_ids"] == test_ids, path
        low, high = metrics["intervals"]["accuracy"]
        assert low <= metrics["accuracy"] <= high, path


def test_paired_tests_compare_each_student_with_its_teacher_and_the_teachers(run):
    table = pd.read_csv(run / "results" / "evaluation" / "paired_tests.csv")
    assert set(zip(table["a"], table["b"], strict=True)) == {
        ("minilm/smollm2/label", "smollm2/label"),
        ("minilm/smollm2/cot_json", "smollm2/cot_json"),
        ("smollm2/label", "smollm2/cot_json"),
    }
    teacher = json.loads((run / "results" / "evaluation" / "teachers" / "smollm2" / "label.json").read_text())
    row = table.loc[table["a"] == "smollm2/label"].iloc[0]
    assert row["accuracy_a"] == pytest.approx(teacher["accuracy"])
    assert 0 <= row["mcnemar_p"] <= 1


def test_every_student_ships_a_card_and_a_checked_onnx_export(run):
    for teacher, prompt in (("smollm2", "label"), ("smollm2", "cot_json"), ("expert", "gold")):
        folder = run / "results" / "students" / "minilm" / teacher / prompt
        metrics = json.loads(
            (run / "results" / "evaluation" / "students" / "minilm" / teacher / f"{prompt}.json").read_text()
        )
        check = json.loads((folder / "onnx_check.json").read_text())
        # The check's torch figure is the student's own test accuracy: same model, same items.
        assert check["accuracy_torch"] == pytest.approx(metrics["accuracy"])
        assert (folder / "onnx" / "model.int8.onnx").exists()
        card = (folder / "README.md").read_text()
        low, high = metrics["intervals"]["accuracy"]
        assert f"| accuracy | {metrics['accuracy']:.3f} | {low:.3f} – {high:.3f} |" in card
        metadata = json.loads((folder / "metadata.json").read_text())
        assert f"training items: {metadata['train_examples']}" in card


def test_predict_rule_labels_a_users_file_with_the_trained_student(run):
    texts = pd.DataFrame(
        {"doc": [f"n{i}" for i in range(25)], "body": [f"Revenue rose {i} percent." for i in range(25)]}
    )
    texts.to_json(run / "incoming.jsonl", orient="records", lines=True)
    predict = {"files": {"incoming": "incoming.jsonl"}, "text_column": "body", "id_column": "doc"}
    config = write_config(run / "config" / "predict.yaml", {**TINY_CONFIG, "predict": predict})
    jobs = planned_jobs(run, "predict_all", "--configfile", str(config))
    assert rules_of(jobs) == {"predict": 1, "predict_all": 1}  # nothing upstream reruns
    snakemake(run, "predict_all", "--configfile", str(config))
    out = pd.read_parquet(run / "results" / "predictions" / "incoming.parquet")
    assert out["doc"].tolist() == texts["doc"].tolist()
    assert out["label"].isin(TINY_CONFIG["labels"]).all()
    assert out[["prob_positive", "prob_negative", "prob_neutral"]].sum(axis=1).round(4).eq(1).all()


def test_learning_curve_ends_at_the_full_students_score(run):
    config = write_config(run / "config" / "curve.yaml", {**TINY_CONFIG, "learning_curve": {"sizes": [10]}})
    snakemake(run, "learning_curves", "--configfile", str(config))
    curve = pd.read_csv(run / "results" / "learning_curve" / "minilm" / "smollm2" / "label.csv")
    votes = pd.read_parquet(run / "results" / "votes" / "smollm2" / "label.parquet")
    n_train = int(((votes["split"] == "train") & votes["label"].notna()).sum())
    assert curve["train_labels"].tolist() == [10, n_train]
    full = json.loads((run / "results" / "evaluation" / "students" / "minilm" / "smollm2" / "label.json").read_text())
    # The last point retrains the same student on the same labels with the same seed.
    assert curve["accuracy"].iloc[-1] == pytest.approx(full["accuracy"])
    assert (run / "results" / "learning_curve" / "minilm" / "smollm2" / "label.png").stat().st_size > 10_000


def test_after_a_full_run_nothing_is_left_to_do(run):
    assert planned_jobs(run) == []


def test_editing_one_prompt_reruns_only_that_prompts_jobs(run):
    template = run / "config" / "prompts" / "label.txt"
    before, stat = template.read_text(), template.stat()
    template.write_text(before + "Be concise.\n")
    try:
        jobs = planned_jobs(run)
    finally:
        template.write_text(before)
        os.utime(template, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert rules_of(jobs) == {
        "build_prompts": 1,
        "annotate": 2,
        "gather_annotations": 2,  # one shard per iteration by default (annotate.shards: 1)
        "vote": 1,
        "import_review": 1,
        # CROWDLAB treats every teacher × prompt iteration as an annotator: both prompts are rescored.
        "export_review": 2,
        "train_student": 1,
        "export_onnx": 1,
        "write_model_card": 1,
        "evaluate_teacher": 1,
        "evaluate_student": 1,
        "benchmark_student": 1,
        "cascade": 1,
        "compare_models": 1,
        "report": 1,
    }
    assert all(w.get("prompt", "label") == "label" for rule, w in jobs if rule != "export_review"), jobs
    assert planned_jobs(run) == []


def test_raising_iterations_runs_one_new_annotate_job_per_teacher_and_prompt(run):
    config = write_config(run / "config" / "four.yaml", {**TINY_CONFIG, "self_consistency": {"iterations": 3}})
    jobs = planned_jobs(run, "--configfile", str(config))
    annotate = sorted((w["prompt"], w["iteration"]) for rule, w in jobs if rule == "annotate")
    assert annotate == [("cot_json", "2"), ("label", "2")]
    counts = rules_of(jobs)
    assert "build_prompts" not in counts and "prepare_data" not in counts
    assert counts["vote"] == 2 and counts["train_student"] == 2  # the expert baseline is untouched


def test_changing_a_student_hyperparameter_reruns_no_annotation(run):
    students = {"minilm": {**TINY_CONFIG["students"]["minilm"], "learning_rate": 5.0e-5}}
    config = write_config(run / "config" / "lr.yaml", {**TINY_CONFIG, "students": students})
    counts = rules_of(planned_jobs(run, "--configfile", str(config)))
    assert counts == {
        "train_student": 3,
        "evaluate_student": 3,
        "export_onnx": 3,
        "write_model_card": 3,
        "benchmark_student": 3,
        "cascade": 2,  # not the expert baseline: it has no teacher to defer to
        "compare_models": 1,
        "report": 1,
    }


def test_deleting_results_loses_no_llm_call(run):
    rows = cache_rows(run)
    assert rows == 2 * 2 * 30  # prompts × iterations × items, each stored once
    shutil.rmtree(run / "results")
    snakemake(run, "--until", "vote")
    for path in (run / "results" / "annotations").rglob("*.parquet"):
        assert pd.read_parquet(path)["cached"].all(), path
    assert cache_rows(run) == rows


@pytest.fixture(scope="module")
def bad_workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"run": {"teachers": ["gpt9"]}}, "run.teachers: unknown name 'gpt9'"),
        ({"run": {"students": ["huge"]}}, "run.students: unknown name 'huge'"),
        ({"labels": "positive"}, "labels: 'positive' is not a list; write a list"),
        (
            {"teachers": {"smollm2": {**TINY_CONFIG["teachers"]["smollm2"], "temprature": 0.2}}},
            "teachers.smollm2.temprature: unknown key; did you mean temperature?",
        ),
        ({"dataset": {**TINY_CONFIG["dataset"], "path": "nope.csv"}}, "dataset.path: file nope.csv does not exist"),
        ({"prompts": {"p": {"template": "config/prompts/bad.txt", "kind": "label"}}}, "has no {text} placeholder"),
        # predict.files keys become file names: one that climbs out of results/ is refused.
        ({"predict": {"files": {"../../escaped": "data/x.csv"}}}, "the name '../../escaped' may hold only letters"),
        ({"labels": ["Positive", "positive", "neutral"]}, "'Positive' and 'positive' differ only in case"),
        # text_columns on top of config/config.yaml's text_column: words, not jsonschema's oneOf dump.
        (
            {"dataset": {**TINY_CONFIG["dataset"], "text_columns": ["title", "text"]}},
            "dataset: set exactly one of dataset.text_column (one column), dataset.text_columns",
        ),
        ({"labels": ["positive", " negative"]}, "labels[1]: ' negative' has the wrong form"),
        (
            {"prompts": {"p": {"template": "config/prompts/placeholder.txt", "kind": "label"}}},
            "unknown placeholder(s) {label}",
        ),
    ],
)
def test_bad_config_stops_before_any_job(bad_workdir, change, message):
    (bad_workdir / "config" / "prompts" / "bad.txt").write_text("Classify: {labels}\n")
    (bad_workdir / "config" / "prompts" / "placeholder.txt").write_text("One of {labels}: {text}\nAnswer: {label}\n")
    config = write_config(bad_workdir / "config" / "bad.yaml", {**TINY_CONFIG, **change})
    result = snakemake(bad_workdir, "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (bad_workdir / "results").exists()


def test_unknown_label_in_data_stops_before_any_llm_call(bad_workdir):
    data = pd.read_csv(bad_workdir / "data" / "demo" / "financial_news_sentiment.csv")
    data.loc[4, "label"] = "bullish"
    data.to_csv(bad_workdir / "data" / "bad.csv", index=False)
    config = write_config(
        bad_workdir / "config" / "bad.yaml",
        {**TINY_CONFIG, "dataset": {**TINY_CONFIG["dataset"], "path": "data/bad.csv"}},
    )
    result = snakemake(bad_workdir, "--configfile", str(config), check=False)
    assert result.returncode != 0
    log = (bad_workdir / "logs" / "prepare_data.log").read_text()
    assert "data/bad.csv: row 5: label 'bullish' is not in the configured labels" in log
    assert not (bad_workdir / "results" / "annotations").exists()


def test_dataset_without_expert_labels_skips_evaluation(tmp_path):
    dataset = {**TINY_CONFIG["dataset"], "label_column": None}
    # One prompt, one iteration and no ONNX export: what is checked is what the missing labels change.
    workdir = make_workdir(
        tmp_path,
        dataset=dataset,
        prompts={"label": TINY_CONFIG["prompts"]["label"]},
        self_consistency={"iterations": 1},
        inference={"onnx": False},
    )
    snakemake(workdir)
    assert not (workdir / "results" / "evaluation").exists()
    assert (workdir / "results" / "students" / "minilm" / "smollm2" / "label" / "model").exists()
    assert not (workdir / "results" / "students" / "minilm" / "expert").exists()
    assert (
        "Evaluation skipped: the dataset has no expert labels"
        in (workdir / "results" / "report" / "report.md").read_text()
    )


@pytest.mark.parametrize(
    "example, teacher, student",
    [
        ("mixtral_hf_fpb.yaml", "mixtral", "roberta"),
        ("vllm.yaml", "qwen_vllm", "minilm"),
        ("openai.yaml", "gpt4o_mini", "minilm"),
    ],
)
def test_example_configs_plan_a_run_with_their_teacher(tmp_path, example, teacher, student):
    workdir = make_workdir(tmp_path)
    jobs = planned_jobs(workdir, "--configfile", f"config/examples/{example}")
    assert {w["teacher"] for rule, w in jobs if rule == "annotate"} == {teacher}
    assert {w["student"] for rule, w in jobs if rule == "train_student"} == {student}
