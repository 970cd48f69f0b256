"""Served feedback back into the pipeline (cascade.feedback), on a copy of the tiny run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from synthdistill import SynthDistillError
from synthdistill.labels.feedback import feedback_record, iter_feedback, merge_feedback

from .pipeline_helpers import copy_run, planned_jobs, rules_of, snakemake


def record(text: str, label: str | None, prompt: str = "label") -> dict:
    return feedback_record(
        text, label, teacher="smollm2", prompt=prompt, student="minilm", student_label="neutral", confidence=0.4
    )


@pytest.mark.slow
def test_feedback_retrains_only_that_teacher_prompts_students(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    test_text = pd.read_parquet(run / "results/data/test.parquet")["text"].iloc[0]
    train_text = pd.read_parquet(run / "results/data/train.parquet")["text"].iloc[0]
    new = [f"Served text {i}: the company reported its quarterly revenue." for i in range(5)]
    rows = [record(text, label) for text, label in zip(new, ["positive", "negative", "neutral"] * 2, strict=False)]
    rows += [
        record(test_text, "positive"),  # would leak the frozen test split
        record(new[0], "negative"),  # the same text again: the latest answer wins
        record("The teacher failed on this one.", None),
        record("An answer outside the label set.", "bullish"),
        record(train_text, "positive"),  # already labelled by the vote
        record("For another prompt of the same teacher.", "positive", prompt="cot_json"),
    ]
    (run / "served.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = yaml.safe_load((run / "config/config.yaml").read_text())
    config["cascade"] = {**config.get("cascade", {}), "feedback": ["served.jsonl"]}
    (run / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    jobs = planned_jobs(run)
    retrained = {(w["student"], w["teacher"], w["prompt"]) for rule, w in jobs if rule == "train_student"}
    assert retrained == {("minilm", "smollm2", "label"), ("minilm", "smollm2", "cot_json")}
    counts = rules_of(jobs)
    assert counts["add_feedback"] == 2
    assert not {"prepare_data", "build_prompts", "annotate", "gather_annotations", "vote", "import_review"} & set(
        counts
    ), counts

    assert {"feedback_deferral", "cascade"} <= set(counts)
    deferral_path = run / "results/feedback/minilm/smollm2/label.deferral.json"
    snakemake(run, str(deferral_path.relative_to(run)))
    summary = json.loads((run / "results/feedback/smollm2/label.summary.json").read_text())
    assert summary["added_to_train_pool"] == 5 and summary["feedback_rows"] == 10
    assert summary["dropped"] == {
        "already_labelled": 1,
        "duplicate_text": 1,
        "label_not_in_label_set": 1,
        "teacher_label_null": 1,
        "test_split_text": 1,
    }
    labels = pd.read_parquet(run / "results/feedback/smollm2/label.labels.parquet")
    added = labels.loc[labels["feedback"]]
    assert sorted(added["text"]) == sorted(new) and set(added["split"]) == {"train"}
    assert added.set_index("text").loc[new[0], "label"] == "negative"
    metadata = json.loads((run / "results/students/minilm/smollm2/label/metadata.json").read_text())
    assert metadata["feedback_examples"] == 5
    assert metadata["train_examples"] == summary["train_pool_after"]

    from synthdistill.reporting.feedback import feedback_section, feedback_table

    entry = {"student": "minilm", "teacher": "smollm2", "prompt": "label"}
    deferral = json.loads(deferral_path.read_text())
    assert deferral["feedback_texts"] == 5 and deferral["deferred_share_before"] == 1.0
    assert 0 <= deferral["deferred_share_after"] <= 1 and 0 <= deferral["agreement_with_teacher_after"] <= 1
    cascade = json.loads((run / "results/cascade/minilm/smollm2/label.json").read_text())
    assert deferral["policy"] == cascade["policy"]  # the retrained student's own operating point
    summary_path = run / "results/feedback/smollm2/label.summary.json"
    table = feedback_table([{**entry, "summary": summary_path, "deferral": deferral_path}])
    assert table.iloc[0][["added", "deferred_before"]].tolist() == [5, 1.0]
    assert table.iloc[0]["deferred_after"] == deferral["deferred_share_after"]
    assert "1 test split text" in table.iloc[0]["dropped"]
    assert feedback_section(feedback=table).title == "Served feedback"

    # Nothing new served: nothing reruns but what the target left stale downstream of the student.
    assert "train_student" not in rules_of(planned_jobs(run, "results/students/minilm/smollm2/label/metadata.json"))


def test_merge_keeps_ids_stable_and_errors_name_file_and_line(tmp_path):
    labels = pd.DataFrame({"id": ["a"], "split": ["train"], "text": ["known"], "label": ["positive"]})
    feedback = pd.DataFrame([record("new text", "neutral"), record("known", "neutral")])
    first, summary = merge_feedback(labels, feedback, [], ["positive", "negative", "neutral"])
    again, _ = merge_feedback(labels, feedback, [], ["positive", "negative", "neutral"])
    assert first["id"].tolist() == again["id"].tolist() and first["id"].iloc[1].startswith("feedback-")
    assert summary["dropped"] == {"already_labelled": 1} and summary["train_pool_after"] == 2

    path = tmp_path / "served.jsonl"
    path.write_text(json.dumps(record("ok", "positive")) + "\n[1, 2]\n")
    with pytest.raises(SynthDistillError, match=r"served.jsonl: line 2 is not a JSON object"):
        list(iter_feedback(path))
    path.write_text('{"text": "no label key", "teacher": "t", "prompt": "p"}\n')
    with pytest.raises(SynthDistillError, match=r"line 1 has no 'label'"):
        list(iter_feedback(path))
    # A server killed mid-write leaves a partial last line: the complete ones are read.
    path.write_text(json.dumps(record("ok", "positive")) + '\n{"text": "cut sh')
    assert [r["text"] for _, r in iter_feedback(path)] == ["ok"]
