"""Corrections to multi_label votes: CSV/XLSX cells, Label Studio and Argilla exports of the tasks and
records our review export writes, and bad rows that stop the import naming the row."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.labels.multi_label_corrections import import_review
from synthdistill.labels.multi_label_review import argilla_records, label_studio_tasks, review_table

LABELS = ["billing", "bug", "feature_request"]


def votes() -> pd.DataFrame:
    rows = [
        ("a1", "train", '["billing"]', 1.0),
        ("a2", "train", '["bug"]', 0.5),
        ("a3", "validation", "[]", 0.5),
        ("a4", "train", None, 0.0),  # no iteration answered
        ("t1", "test", '["bug"]', 1.0),
    ]
    frame = pd.DataFrame(rows, columns=["id", "split", "label", "agreement"])
    frame["text"] = "text of " + frame["id"]
    frame["vote_status"] = ["voted", "voted", "voted", "all_failed", "voted"]
    frame["n_failed"] = 0
    for label in LABELS:
        chosen = frame["label"].fillna("[]").str.contains(f'"{label}"')
        frame[f"share_{label}"] = chosen.astype(float)
        frame[f"agreement_{label}"] = 1.0
    return frame


def run_import(tmp_path, corrections_path):
    votes_path = tmp_path / "votes.parquet"
    votes().to_parquet(votes_path)
    out, audit_out = tmp_path / "labels.parquet", tmp_path / "audit.csv"
    audit = import_review(
        str(votes_path), str(corrections_path), LABELS, str(out), str(audit_out), {"label_delimiter": "|"}
    )
    return pd.read_parquet(out).set_index("id"), audit, pd.read_csv(audit_out)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_spreadsheet_cells_are_delimited_sets_json_lists_or_empty(tmp_path, suffix):
    table = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3", "a4"],
            "label": ["bug | billing", '["feature_request"]', "", "billing"],
            "reviewer": ["ann", "bob", "ann", None],
        }
    )
    path = tmp_path / f"corrections.{suffix}"
    table.to_csv(path, index=False) if suffix == "csv" else table.to_excel(path, index=False)
    reviewed, audit, audit_file = run_import(tmp_path, path)
    # Canonical JSON in config order, whatever order the reviewer typed.
    assert reviewed.loc[["a1", "a2", "a3", "a4"], "label"].tolist() == [
        '["billing", "bug"]',
        '["feature_request"]',
        "[]",
        '["billing"]',
    ]
    assert reviewed.loc["a1", "voted_label"] == '["billing"]' and pd.isna(reviewed.loc["a4", "voted_label"])
    assert reviewed["corrected"].tolist() == [True, True, True, True, False]
    assert reviewed.loc["t1", "label"] == '["bug"]'  # test items keep the vote
    assert reviewed.loc["a2", "agreement"] == 1.0 and reviewed.loc["a2", "voted_agreement"] == 0.5
    assert audit["changed"].tolist() == [True, True, False, True]
    assert audit["reviewer"].tolist()[:3] == ["ann", "bob", "ann"]
    assert audit_file["row"].tolist() == [1, 2, 3, 4]


def test_label_studio_export_of_our_tasks(tmp_path):
    tasks = label_studio_tasks(review_table(votes(), LABELS), LABELS, "smollm2/labels_json")
    by_id = {task["data"]["id"]: task for task in tasks}
    # A reviewer adds a label to a1, clears a2 (no choice: the empty set), skips a3, cancels a4.
    choices = {"a1": ["bug", "billing"], "a2": []}
    for item_id, chosen in choices.items():
        result = [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": chosen}}]
        by_id[item_id]["annotations"] = [{"result": result if chosen else [], "completed_by": {"email": "ann@x"}}]
    by_id["a4"]["annotations"] = [{"was_cancelled": True, "result": []}]
    path = tmp_path / "label_studio_export.json"
    path.write_text(json.dumps(tasks))
    reviewed, audit, _ = run_import(tmp_path, path)
    assert reviewed.loc["a1", "label"] == '["billing", "bug"]' and reviewed.loc["a2", "label"] == "[]"
    assert set(reviewed.index[reviewed["corrected"]]) == {"a1", "a2"}
    assert audit["reviewer"].tolist() == ["ann@x", "ann@x"]


def test_argilla_export_of_our_records(tmp_path):
    exported = argilla_records(review_table(votes(), LABELS), LABELS, "smollm2/labels_json")
    # What an Argilla server checks: a required question to publish, a non-empty list answer from the
    # question's options, and one score per suggested label.
    question = exported["settings"]["questions"][0]
    assert question["required"] and question["labels"] == [*LABELS, "(none)"]
    records = exported["records"]
    for record in records:
        suggestion = record["suggestions"].get("labels")
        if suggestion:
            assert suggestion["value"] and set(suggestion["value"]) <= set(question["labels"])
            assert len(suggestion["score"]) == len(suggestion["value"])
    by_id = {record["id"]: record for record in records}
    assert by_id["a3"]["suggestions"]["labels"]["value"] == ["(none)"]  # the voted empty set
    by_id["a1"]["responses"] = {"labels": [{"value": ["feature_request"], "user_id": "u1", "status": "submitted"}]}
    by_id["a2"]["responses"] = [
        {"question_name": "labels", "value": ["(none)"], "user_id": "u2", "status": "submitted"}
    ]
    by_id["a3"]["responses"] = {"labels": [{"value": ["bug"], "user_id": "u1", "status": "draft"}]}
    path = tmp_path / "argilla_export.json"
    path.write_text(json.dumps({"records": records}))
    reviewed, audit, _ = run_import(tmp_path, path)
    assert reviewed.loc["a1", "label"] == '["feature_request"]' and reviewed.loc["a2", "label"] == "[]"
    assert reviewed.loc["a3", "label"] == "[]" and not reviewed.loc["a3", "corrected"]  # a draft is no answer
    assert dict(zip(audit["id"], audit["reviewer"], strict=True)) == {"a1": "u1", "a2": "u2"}


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("a1", "bug"), ("zz", "bug")], "row 2: unknown id 'zz'"),
        ([("a1", "bug|refund")], "row 1: id 'a1': label 'refund' is not one of"),
        ([("a1", "bug||billing")], "row 1: id 'a1': label '' (an empty label between two delimiters)"),
        ([("a2", '["bug"')], "row 1: id 'a2': label cell '[\"bug\"' is not a valid JSON list"),
        ([("a2", '["(none)", "bug"]')], "row 1: id 'a2': label cell ['(none)', 'bug'] chooses '(none)' (no label)"),
        ([("t1", "bug")], "row 1: unknown id 't1' (not in the train or validation split)"),
        ([("a1", "bug|billing"), ("a1", "billing")], "rows [1, 2]: id 'a1' is corrected to different labels"),
    ],
)
def test_a_bad_row_stops_naming_it_and_applies_nothing(tmp_path, rows, message):
    path = tmp_path / "corrections.csv"
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(path, index=False)
    with pytest.raises(SynthDistillError, match="No correction was applied") as error:
        run_import(tmp_path, path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert not (tmp_path / "labels.parquet").exists()


def test_the_same_set_written_two_ways_is_one_correction(tmp_path):
    path = tmp_path / "corrections.csv"
    pd.DataFrame({"id": ["a1", "a1"], "label": ["bug|billing", '["billing", "bug"]']}).to_csv(path, index=False)
    reviewed, audit, _ = run_import(tmp_path, path)
    assert reviewed.loc["a1", "label"] == '["billing", "bug"]' and len(audit) == 1
