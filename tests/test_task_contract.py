"""One contract for every registered task kind: its demo dataset is prepared, a teacher's answers are
voted, sent out for review and read back, and scored on the test split; a student learns one epoch
from the reviewed labels, is scored, exported to ONNX and reported beside the teacher. Each step runs through
the function the kind names for it (tasks/<kind>.py), with the arguments the step's one script passes.

The teacher here answers from the expert labels (every third text of each iteration dropped or
swapped), so the figures can be checked exactly; the real engine and model behind annotation are
tested in the pipeline tests. A new kind registered in tasks/ is picked up here with no change but its
demo config in KIND_CONFIGS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthdistill import data
from synthdistill.metrics.costs import student_hardware, teacher_costing
from synthdistill.schema import defaults, with_defaults
from synthdistill.settings import review_settings
from synthdistill.tasks import REGISTRY, get_task

from .conftest import MINILM, REPO, SMOLLM2

# The embedded teacher's config, for the report's teacher cost (measured time × hardware).
TEACHER = {"backend": "llama_cpp", "model_path": SMOLLM2}

# The example config each kind's demo runs with (its labels, dataset and split settings).
KIND_CONFIGS = {
    "single_label": REPO / "config" / "config.yaml",
    "multi_label": REPO / "config" / "examples" / "multi_label.yaml",
    "spans": REPO / "config" / "examples" / "spans.yaml",
}


def test_every_registered_kind_has_a_demo_config_here():
    assert set(KIND_CONFIGS) == set(REGISTRY)


def _prepared(kind: str, folder: Path) -> tuple[dict, dict[str, str]]:
    config = yaml.safe_load(KIND_CONFIGS[kind].read_text())
    dataset = {**config["dataset"], "path": str(REPO / config["dataset"]["path"])}
    items, summary = data.prepare(dataset, config["labels"], config["split"], kind)
    paths = {name: str(folder / f"{name}.parquet") for name in ("train", "validation", "test")}
    data.write_splits(items, summary, paths, str(folder / "summary.json"))
    return config, paths


def _iterations(splits: pd.DataFrame, labels: list[str], kind: str, folder: Path) -> list[str]:
    """Three iterations answering with the expert label, except: in iteration 0 every third text fails,
    in iteration 1 every third text (another third) answers the first label's answer (for spans: no
    span). No text has more than one bad answer, so every vote is the expert's answer."""
    wrong = {"single_label": labels[0], "multi_label": json.dumps([labels[0]]), "spans": "[]"}[kind]
    paths = []
    for number in range(3):
        answers = splits["expert_label"].astype(object).copy()
        if number == 0:
            answers[splits.index % 3 == 0] = None
        elif number == 1:
            answers[splits.index % 3 == 1] = wrong
        frame = splits[["id", "split", "text"]].assign(
            label=answers,
            reason=None,
            parse_status=["ok" if a is not None else "invalid_json" for a in answers],
            raw_output="x",
            error=None,
            latency_s=0.1,
            compute_s=0.1,
            input_tokens=10,
            output_tokens=5,
            cached=False,
        )
        paths.append(str(folder / f"iter{number}.parquet"))
        frame.to_parquet(paths[-1], index=False)
    return paths


def _teacher_steps(kind: str, tmp_path: Path) -> dict:
    """vote, export_review, import_review (no corrections) and evaluate_teacher, each checked; returns
    the files a student and the report take from them."""
    task = get_task(kind)
    config, split_paths = _prepared(kind, tmp_path)
    labels = config["labels"]
    splits = data.read_splits(list(split_paths.values())).reset_index(drop=True)
    iterations = _iterations(splits, labels, kind, tmp_path)

    votes = {name: str(tmp_path / f"votes.{name}") for name in ("votes", "train_csv", "stats")}
    task.step("vote")(
        iteration_paths=iterations,
        split_paths=list(split_paths.values()),
        labels=labels,
        settings={"tie_policy": "abstain", "min_share": 0.5},
        outputs=votes,
    )
    voted = pd.read_parquet(votes["votes"]).set_index("id")
    # Two of three iterations give the expert answer for every text: the vote is the expert's.
    expert = splits.set_index("id")["expert_label"]
    assert (voted["label"] == expert.loc[voted.index]).all(), kind
    assert set(voted["split"]) == {"train", "validation", "test"}

    names = {f"t/p/iter{i}": path for i, path in enumerate(iterations)}
    review = {name: str(tmp_path / f"review.{name}") for name in task.review_files}
    task.step("export_review")(
        votes_path=votes["votes"],
        iteration_paths=names,
        annotator_paths=names,
        labels=labels,
        settings={**review_settings({"features": "tfidf"}), "cv_folds": 2},
        teacher="t",
        prompt="p",
        outputs=review,
    )
    assert all(Path(path).stat().st_size > 0 for path in review.values())
    # Every reviewable text goes out: the train and validation splits, never the test split.
    reviewable = set(voted.index[voted["split"].isin(["train", "validation"])])
    exported = json.loads(Path(review["label_studio"]).read_text())
    assert {task_["data"]["id"] for task_ in exported} == reviewable

    reviewed = {"labels_out": str(tmp_path / "labels.parquet"), "audit_out": str(tmp_path / "audit.csv")}
    audit = task.step("import_review")(
        votes_path=votes["votes"],
        corrections_path=None,
        labels=labels,
        settings={"label_delimiter": "|"},
        **reviewed,
    )
    assert len(audit) == 0
    after = pd.read_parquet(reviewed["labels_out"]).set_index("id")
    assert (after["label"] == after["voted_label"]).all() and not after["corrected"].any()

    metrics_path = str(tmp_path / "teacher.json")
    task.step("evaluate_teacher")(votes_path=votes["votes"], labels=labels, output_path=metrics_path)
    metrics = json.loads(Path(metrics_path).read_text())
    f1 = metrics.get("f1_macro", metrics.get("f1_micro", metrics.get("f1")))
    assert f1 == pytest.approx(1.0), kind  # the vote is the expert's answer on every test text

    return {"config": config, "splits": split_paths, "votes": votes, "teacher_metrics": metrics_path, **reviewed}


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_a_kind_votes_reviews_and_scores_its_teacher_through_its_steps(kind, tmp_path):
    _teacher_steps(kind, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_a_kind_trains_its_student_scores_it_and_reports_both(kind, tmp_path):
    task = get_task(kind)
    run = _teacher_steps(kind, tmp_path)
    labels = run["config"]["labels"]
    settings = {"model": MINILM, "learning_rate": 1.0e-4, "epochs": 1, "batch_size": 16, "max_length": 64}
    student = with_defaults(settings, "students", "*")
    folder = tmp_path / "student"
    files = {"model_dir": str(folder / "model"), "metadata_path": str(folder / "metadata.json")}
    task.step("train_student")(
        [run["labels_out"]], teacher="t", prompt="p", student=student, labels=labels, threads=2, name="minilm", **files
    )
    scored = {"metrics_path": str(tmp_path / "student.json"), "predictions_path": str(tmp_path / "pred.parquet")}
    test = run["splits"]["test"]
    task.step("evaluate_student")(model_dir=files["model_dir"], test_path=test, labels=labels, max_length=64, **scored)
    predictions = pd.read_parquet(scored["predictions_path"])
    assert predictions["id"].tolist() == pd.read_parquet(test)["id"].tolist()
    check = str(folder / "onnx_check.json")
    task.step("export_onnx")(
        model_dir=files["model_dir"],
        test_path=test,
        labels=labels,
        max_length=64,
        output_dir=str(folder / "onnx"),
        check_path=check,
    )
    assert (folder / "onnx").is_dir() and json.loads(Path(check).read_text())

    entry = {"student": "minilm", "teacher": "t", "prompt": "p", "metadata": files["metadata_path"]}
    entry |= {"metrics": scored["metrics_path"], "onnx_check": check, "benchmark": None}
    outputs = {"markdown": str(tmp_path / "report.md"), "html": str(tmp_path / "report.html")}
    if task.supports("costs"):
        from synthdistill.students.benchmark import write_benchmark

        entry["benchmark"] = str(tmp_path / "benchmark.json")
        write_benchmark(str(folder), test, 64, defaults("costs", "benchmark"), entry["benchmark"], threads=2)
    # Every file the kind's report writes beside the pages (rules/report.smk asks for exactly these).
    outputs |= {
        name: str(tmp_path / f"{name}.{'png' if name.startswith('figure_') else 'csv'}") for name in task.report_files
    }
    teacher = {"teacher": "t", "prompt": "p", "stats": run["votes"]["stats"], "votes": run["votes"]["votes"]}
    teacher |= {"metrics": run["teacher_metrics"], "costing": teacher_costing("t", TEACHER, None)}
    task.step("report")(
        entries={"teachers": [teacher], "students": [entry], "cascades": []},
        labels=labels,
        outputs=outputs,
        run={
            "summary": str(tmp_path / "summary.json"),
            "evaluated": True,
            "hardware": student_hardware(None),
            "paired": None,
            "selection": None,
            "splits": {"train": run["splits"]["train"], "test": test},
            "benchmarks_dir": str(tmp_path / "benchmarks"),
            "config_hash": "0" * 12,
            "feedback": [],
        },
    )
    markdown, page = Path(outputs["markdown"]).read_text(), Path(outputs["html"]).read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    for text in (markdown, page):
        assert "minilm" in text and "1.000" in text  # the student's row and the teacher's perfect score
        # A kind with costs prices its students like single_label: measured speed, hardware, break-even.
        assert ("Student cost" in text and "Teacher cost" in text) == task.supports("costs")
    assert all(Path(path).stat().st_size for name, path in outputs.items() if name in task.report_files)
    if task.supports("costs"):
        student_costs = pd.read_csv(outputs["table_student_cost"])
        assert (
            student_costs["student"].tolist() == ["minilm/t/p"] and student_costs["throughput_texts_per_s"].gt(0).all()
        )
