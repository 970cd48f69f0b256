"""Task multi_label end to end: the Snakefile on a tiny config with the embedded teacher (SmolLM2)
and student (MiniLM), every artifact checked against what it must hold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from synthdistill.annotation.cache import ResponseCache
from synthdistill.students.inference import write_onnx_export
from synthdistill.students.model_card import card_text
from synthdistill.students.predict import predict_file
from synthdistill.tasks.multi_label import indicator_matrix

from .conftest import MINILM, PREDICT_DEFAULTS, SMOLLM2, copy_workflow
from .pipeline_helpers import copy_run, planned_jobs, rules_of, snakemake, write_config

pytestmark = pytest.mark.slow

LABELS = ["billing", "bug", "feature_request", "account", "praise"]
CONFIG = {
    "task": "multi_label",
    "labels": LABELS,
    "dataset": {
        "path": "data/demo/support_tickets.csv",
        "text_column": "text",
        "label_column": "labels",
        "max_items": 30,
    },
    "split": {"test_size": 0.3, "validation_size": 0.2, "seed": 1},
    "prompts": {
        "labels_json": {
            "template": "config/prompts/labels_json.txt",
            "kind": "labels_json",
            "max_tokens": 64,
            "structured": True,
        }
    },
    "teachers": {"smollm2": {"backend": "llama_cpp", "model_path": SMOLLM2, "temperature": 0.7, "seed": 0}},
    "students": {"minilm": {"model": MINILM, "learning_rate": 1.0e-4, "epochs": 1, "batch_size": 8, "max_length": 64}},
    "self_consistency": {"iterations": 1},
    # One export, in test_onnx_int8_export_and_predict, rather than one per student in the run.
    "inference": {"onnx": False},
    "cache": {"path": "cache/responses.sqlite"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("multi_label_run"))
    write_config(workdir / "config" / "config.yaml", CONFIG)
    snakemake(workdir)  # no target: the task file's rule all
    return workdir


def read_json(path):
    return json.loads(path.read_text())


def test_data_and_votes(run):
    splits = {name: pd.read_parquet(run / "results" / "data" / f"{name}.parquet") for name in ("train", "test")}
    for frame in splits.values():  # canonical JSON sets in label order
        assert all(json.dumps([x for x in LABELS if x in json.loads(v)]) == v for v in frame["expert_label"])
    votes = pd.read_parquet(run / "results" / "votes" / "smollm2" / "labels_json.parquet")
    assert len(votes) == 30 and {f"share_{label}" for label in LABELS} <= set(votes.columns)
    assert "voted_label" not in votes  # the voted set is named label, as a single_label vote
    iteration = pd.read_parquet(run / "results" / "annotations" / "smollm2" / "labels_json" / "iter0.parquet")
    answered = iteration.set_index("id")["label"].dropna()
    # one iteration: the vote is its answer, and agreement is 1 wherever it answered
    assert votes.set_index("id").loc[answered.index, "label"].tolist() == answered.tolist()
    assert (votes.set_index("id").loc[answered.index, "agreement"] == 1.0).all()
    stats = read_json(run / "results" / "votes" / "smollm2" / "labels_json.stats.json")
    assert stats["annotation"]["answers"] == 30 and stats["vote"]["labelled"] == len(answered)
    train_csv = pd.read_csv(run / "results" / "votes" / "smollm2" / "labels_json.train.csv")
    assert train_csv.columns.tolist() == ["text", "label", *LABELS]


@pytest.mark.parametrize("source", ["smollm2/labels_json", "expert/gold"])
def test_students_predict_their_thresholded_sets(run, source):
    student = run / "results" / "students" / "minilm" / source
    config = read_json(student / "model" / "config.json")
    assert config["problem_type"] == "multi_label_classification"
    thresholds = np.array([config["label_thresholds"][label] for label in LABELS])
    metadata = read_json(student / "metadata.json")
    assert metadata["label_thresholds"] == config["label_thresholds"] and metadata["best_epoch"] == 1
    predictions = pd.read_parquet(
        run / "results" / "evaluation" / "students" / "minilm" / f"{source}.predictions.parquet"
    )
    probs = predictions[[f"prob_{label}" for label in LABELS]].to_numpy()
    assert ((probs > 0) & (probs < 1)).all()  # sigmoid scores, not one distribution
    assert not np.allclose(probs.sum(axis=1), 1.0)
    assert (indicator_matrix(predictions["label"], LABELS) == (probs >= thresholds)).all()


def card_snippet(card: str) -> str:
    """The Python block of a model card's Use section."""
    return card.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("source", ["smollm2/labels_json", "expert/gold"])
def test_every_student_ships_a_card_with_its_thresholds_and_test_scores(run, source):
    from huggingface_hub import ModelCard

    student = run / "results" / "students" / "minilm" / source
    readme = (student / "README.md").read_text()
    card = ModelCard(readme)
    assert card.data.pipeline_tag == "text-classification"
    assert "multi-label-classification" in card.data.tags and card.data.library_name == "transformers"
    metadata = read_json(student / "metadata.json")
    teacher, prompt = source.split("/")
    source_phrase = (
        "the expert labels of the dataset" if teacher == "expert" else "teacher `smollm2` with prompt `labels_json`"
    )
    assert source_phrase in readme
    assert (
        f"training items: {metadata['train_examples']}, validation items: {metadata['validation_examples']}" in readme
    )
    thresholds = read_json(student / "model" / "config.json")["label_thresholds"]
    for index, label in enumerate(LABELS):
        assert f"| {index} | {label} | {thresholds[label]:.2f} |" in readme
    metrics = read_json(run / "results" / "evaluation" / "students" / "minilm" / f"{source}.json")
    for name in ("f1_micro", "f1_macro", "subset_accuracy", "hamming_loss"):
        low, high = metrics["intervals"][name]
        assert f"| {name} | {metrics[name]:.3f} | {low:.3f} – {high:.3f} |" in readme
    for label, scores in metrics["per_label"].items():
        assert f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['f1']:.3f} |" in readme
    assert "## Limitations" in readme and "## Intended use" in readme
    assert "## ONNX int8 export" not in readme  # inference.onnx is off in this run: nothing was checked

    # The card's own usage code (the Hub widget's pipeline) gives the student's predicted sets.
    predictions = pd.read_parquet(
        run / "results" / "evaluation" / "students" / "minilm" / f"{source}.predictions.parquet"
    ).head(4)
    texts = pd.read_parquet(run / "results" / "data" / "test.parquet").set_index("id")["text"]
    predictions = predictions.assign(text=texts.reindex(predictions["id"]).to_numpy())
    for text, expected in zip(predictions["text"], predictions["label"], strict=True):
        code = card_snippet(readme).replace("<this folder or repo>", str(student / "model"))
        scope: dict = {}
        exec(code.replace('"<text>"', repr(text)), scope)
        assert sorted(scope["labels"]) == sorted(json.loads(expected))


def test_teacher_and_students_are_scored_on_the_same_test_split(run):
    test = pd.read_parquet(run / "results" / "data" / "test.parquet")
    evaluation = run / "results" / "evaluation"
    votes = pd.read_parquet(run / "results" / "votes" / "smollm2" / "labels_json.parquet").set_index("id")
    files = {
        "smollm2/labels_json": (evaluation / "teachers" / "smollm2" / "labels_json.json", votes["label"]),
    }
    for source in ("smollm2/labels_json", "expert/gold"):
        predictions = pd.read_parquet(evaluation / "students" / "minilm" / f"{source}.predictions.parquet")
        files[f"minilm/{source}"] = (
            evaluation / "students" / "minilm" / f"{source}.json",
            predictions.set_index("id")["label"],
        )
    truth = indicator_matrix(test["expert_label"], LABELS)
    for path, predicted in files.values():
        metrics = read_json(path)
        assert metrics["test_ids"] == sorted(test["id"])
        guess = indicator_matrix(predicted.reindex(test["id"]).fillna("[]"), LABELS)
        assert metrics["f1_micro"] == pytest.approx(f1_score(truth, guess, average="micro", zero_division=0))
        assert metrics["f1_macro"] == pytest.approx(f1_score(truth, guess, average="macro", zero_division=0))
        assert metrics["hamming_loss"] == pytest.approx((truth != guess).mean())
        assert metrics["subset_accuracy"] == pytest.approx((truth == guess).all(axis=1).mean())
        for name in ("f1_micro", "f1_macro", "subset_accuracy", "hamming_loss"):
            low, high = metrics["intervals"][name]
            assert low <= metrics[name] + 1e-9 and metrics[name] <= high + 1e-9
        assert set(metrics["per_label"]) == set(LABELS)
    paired = pd.read_csv(evaluation / "paired_tests.csv")
    assert paired[["a", "b"]].values.tolist() == [["minilm/smollm2/labels_json", "smollm2/labels_json"]]


def test_the_report_shows_teacher_and_students_with_intervals(run):
    markdown = (run / "results" / "report" / "report.md").read_text()
    teacher = read_json(run / "results" / "evaluation" / "teachers" / "smollm2" / "labels_json.json")
    low, high = teacher["intervals"]["f1_micro"]
    assert f"{teacher['f1_micro']:.3f} [{low:.3f}, {high:.3f}]" in markdown
    assert "| minilm " in markdown and "expert/gold" in markdown
    assert "<table" in (run / "results" / "report" / "report.html").read_text()
    # Costs as single_label has them: each student benchmarked, priced and set against its teacher.
    assert "## Student cost" in markdown and "## Teacher cost" in markdown and "## Break-even" in markdown
    tables = run / "results" / "report" / "tables"
    breaks = pd.read_csv(tables / "break_even.csv")
    assert breaks["student"].tolist() == ["minilm/smollm2/labels_json"]  # the expert student has no break-even
    benchmark = read_json(run / "results" / "costs" / "students" / "minilm" / "smollm2" / "labels_json.json")
    student_costs = pd.read_csv(tables / "student_cost.csv").set_index("student")
    assert student_costs.loc["minilm/smollm2/labels_json", "throughput_texts_per_s"] == pytest.approx(
        benchmark["throughput"]["best_texts_per_second"]
    )


def test_review_files_offer_the_voted_sets_least_agreed_first(run):
    review = run / "results" / "review" / "smollm2"
    votes = pd.read_parquet(run / "results" / "votes" / "smollm2" / "labels_json.parquet").set_index("id")
    table = pd.read_csv(review / "labels_json.review.csv")
    assert set(table["split"]) <= {"train", "validation"}
    assert len(table) == int(votes["split"].isin(["train", "validation"]).sum())
    # cleanlab's flagged items first, then least agreed first within each block
    flags = table["label_issue"].astype(bool).tolist()
    assert flags == sorted(flags, reverse=True)
    assert table["issue_method"].iloc[0] in ("cv_ovr_logreg_embeddings", "agreement_only")
    for _, block in table.groupby("label_issue"):
        assert block["agreement"].is_monotonic_increasing
    argilla = read_json(review / "labels_json.argilla.json")
    assert argilla["settings"]["questions"][0]["type"] == "multi_label_selection"
    tasks = read_json(review / "labels_json.label_studio.json")
    assert 'choice="multiple"' in (review / "labels_json.label_studio.xml").read_text()
    for record, task in zip(argilla["records"], tasks, strict=True):
        expected = votes.loc[record["id"], "label"]
        if isinstance(expected, str):
            # Argilla takes no empty answer: the voted empty set is suggested as its "(none)" option.
            assert record["suggestions"]["labels"]["value"] == (json.loads(expected) or ["(none)"])
            assert task["predictions"][0]["result"][0]["value"]["choices"] == json.loads(expected)


def test_a_label_scores_prompt_scores_each_label_on_its_own_through_the_workflow(tmp_path):
    """A multi_label label_scores prompt through the Snakefile, up to the vote, review and teacher
    evaluation (no student: those stages read the vote as for any prompt)."""
    workdir = copy_workflow(tmp_path)
    prompt = {"template": "config/prompts/label_yes_no.txt", "kind": "label_scores", "calibrate": True}
    dataset = {**CONFIG["dataset"], "max_items": 10}
    write_config(
        workdir / "config" / "config.yaml",
        {**CONFIG, "dataset": dataset, "prompts": {"yes_no": {**prompt, "threshold": 0.6}}},
    )
    review = "results/review/smollm2/yes_no.review.csv"
    evaluation = "results/evaluation/teachers/smollm2/yes_no.json"
    snakemake(workdir, review, evaluation)
    prompts = pd.read_parquet(workdir / "results" / "prompts" / "smollm2" / "yes_no.parquet")
    assert len(prompts) == 11 and prompts["split"].iloc[-1] == "calibration"  # 10 items, the content-free text
    assert all(len(json.loads(m)) == len(LABELS) for m in prompts["messages"])  # one chat per label
    assert len(ResponseCache(workdir / "cache" / "responses.sqlite")) == 11 * len(LABELS)
    answers = pd.read_parquet(workdir / "results" / "annotations" / "smollm2" / "yes_no" / "iter0.parquet")
    probs = [f"prob_{x}" for x in LABELS]
    assert (answers["parse_status"] == "ok").all() and answers[probs].notna().all().all()
    assert not np.allclose(answers[probs].sum(axis=1), 1.0)  # independent probabilities, no distribution
    for row in answers.to_dict("records"):  # the threshold configured (0.6) makes the set
        assert json.loads(row["label"]) == [x for x in LABELS if row[f"prob_{x}"] >= 0.6]
    votes = pd.read_parquet(workdir / "results" / "votes" / "smollm2" / "yes_no.parquet").set_index("id")
    assert np.allclose(votes.loc[answers["id"], probs], answers[probs])  # kept in the votes
    assert (votes.loc[answers["id"], "label"].to_numpy() == answers["label"].to_numpy()).all()
    table = pd.read_csv(workdir / review)
    assert set(probs) <= set(table.columns) and len(table) == int(votes["split"].isin(["train", "validation"]).sum())
    metrics = read_json(workdir / evaluation)
    assert sorted(metrics["test_ids"]) == sorted(votes.index[votes["split"] == "test"])
    assert 0 <= metrics["f1_micro"] <= 1

    # Another threshold answers from the cached scores: the prompts are rebuilt, no request is made.
    write_config(workdir / "config" / "config.yaml", {**CONFIG, "dataset": dataset, "prompts": {"yes_no": prompt}})
    snakemake(workdir, review, evaluation)
    assert len(ResponseCache(workdir / "cache" / "responses.sqlite")) == 11 * len(LABELS)
    again = pd.read_parquet(workdir / "results" / "annotations" / "smollm2" / "yes_no" / "iter0.parquet")
    assert again["cached"].all() and np.allclose(again[probs], answers[probs])
    for label, scores in zip(again["label"], answers[probs].to_numpy(), strict=True):
        assert json.loads(label) == [x for x, p in zip(LABELS, scores, strict=True) if p >= 0.5]


def test_onnx_int8_export_and_predict(run, tmp_path):
    from huggingface_hub import ModelCard

    student = run / "results" / "students" / "minilm" / "expert" / "gold"
    test = run / "results" / "data" / "test.parquet"
    check = write_onnx_export(
        str(student / "model"), str(test), LABELS, 64, str(tmp_path / "onnx"), str(tmp_path / "c.json")
    )
    # the int8 model keeps the thresholds (config.json) and answers nearly the same sets as torch
    assert (
        read_json(tmp_path / "onnx" / "config.json")["label_thresholds"]
        == read_json(student / "model" / "config.json")["label_thresholds"]
    )
    # int8 weights with float activations: the scores move far less than dynamic quantization's 0.07
    # (bench/README.md), so a score near its threshold does not flip
    assert check["quantization"] == "weight_only"
    assert check["max_probability_difference"] < 0.01 and 0 <= check["same_label_share"] <= 1
    assert {"f1_micro_torch", "f1_micro_onnx_int8", "f1_micro_difference_points"} <= set(check)
    # ... and the card reports that check (the run itself exports nothing: inference.onnx is off).
    card = card_text(
        read_json(student / "metadata.json"),
        None,
        {"power_w": None},
        check,
        task="multi_label",
        widget_texts=["I was charged twice"],
    )
    assert ModelCard(card).data.widget == [{"text": "I was charged twice"}]  # hub.widget_texts
    assert (
        f"micro F1 {check['f1_micro_onnx_int8']:.3f} against {check['f1_micro_torch']:.3f} "
        f"({check['f1_micro_difference_points']:+.1f} points)" in card
    )
    assert f"({check['size_mb']} MB, with the thresholds in its `config.json`)" in card
    texts = pd.DataFrame({"text": ["I was charged twice", "The app crashes", "Thanks a lot!"]})
    texts.to_csv(tmp_path / "texts.csv", index=False)
    predict_file(
        tmp_path,
        tmp_path / "texts.csv",
        tmp_path / "out.parquet",
        **{**PREDICT_DEFAULTS, "backend": "onnx"},
        max_length=64,
        progress=False,
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    thresholds = np.array([read_json(tmp_path / "onnx" / "config.json")["label_thresholds"][x] for x in LABELS])
    probs = out[[f"prob_{label}" for label in LABELS]].to_numpy()
    assert [list(v) for v in out["labels"]] == [
        [x for x, on in zip(LABELS, row, strict=True) if on] for row in probs >= thresholds
    ]
    assert [json.loads(v) for v in out["label"]] == [list(v) for v in out["labels"]]


def test_a_corrections_file_retrains_only_the_students_on_the_corrected_sets(run, tmp_path):
    work = copy_run(run, tmp_path / "reviewed")
    review = work / "results" / "review" / "smollm2"
    before = pd.read_parquet(review / "labels_json.labels.parquet")
    assert not before["corrected"].any() and before["label"].equals(before["voted_label"])
    items = before.loc[before["split"].isin(["train", "validation"])].head(3)
    # Each named item gets a set its vote does not have: every label the teacher left out.
    new_sets = [[x for x in LABELS if x not in json.loads(v or "[]")] for v in items["voted_label"]]
    cells = ["|".join(new_sets[0]), json.dumps(new_sets[1]), "|".join(new_sets[2])]
    pd.DataFrame({"id": items["id"], "label": cells, "reviewer": ["ann", "bob", "ann"]}).to_csv(
        work / "corrections.csv", index=False
    )
    write_config(work / "config" / "config.yaml", {**CONFIG, "review": {"corrections": "corrections.csv"}})
    jobs = planned_jobs(work)
    assert rules_of(jobs) == {
        "import_review": 1,
        "train_student": 1,
        "evaluate_student": 1,
        "write_model_card": 1,
        "benchmark_student": 1,
        "compare_models": 1,
        "report": 1,
    }
    assert {w["teacher"] for rule, w in jobs if rule == "train_student"} == {"smollm2"}
    snakemake(work)
    assert planned_jobs(work) == []

    after = pd.read_parquet(review / "labels_json.labels.parquet").set_index("id")
    expected = [json.dumps([x for x in LABELS if x in chosen]) for chosen in new_sets]
    assert after.loc[items["id"], "label"].tolist() == expected
    assert set(after.index[after["corrected"]]) == set(items["id"])
    untouched = ~after.index.isin(items["id"])
    assert after.loc[untouched, "label"].equals(after.loc[untouched, "voted_label"])
    audit = pd.read_csv(review / "labels_json.audit.csv")
    assert audit["new_label"].tolist() == expected and audit["changed"].all()
    assert audit["reviewer"].tolist() == ["ann", "bob", "ann"]
    metadata = read_json(work / "results" / "students" / "minilm" / "smollm2" / "labels_json" / "metadata.json")
    corrected = items["split"].value_counts()
    assert metadata["reviewed_corrections"] == {
        "train": int(corrected.get("train", 0)),
        "validation": int(corrected.get("validation", 0)),
    }

    # An unknown label stops the import naming the row; the student is not retrained.
    model = work / "results" / "students" / "minilm" / "smollm2" / "labels_json" / "model" / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    pd.DataFrame({"id": items["id"].head(1), "label": ["billing|refund"]}).to_csv(work / "corrections.csv", index=False)
    result = snakemake(work, check=False)
    assert result.returncode != 0
    log = (work / "logs" / "import_review" / "smollm2" / "labels_json.log").read_text()
    assert "row 1" in log and "'refund' is not one of" in log and "No correction was applied" in log
    assert model.stat().st_mtime_ns == stamp
