"""Review loop: review order and files, corrections parsers, audit, ensembles, and a real rerun."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.labels.corrections import apply_corrections, import_review, read_corrections
from synthdistill.labels.ensemble import ensemble_votes
from synthdistill.labels.review import (
    FORMULA_TRIGGERS,
    annotator_labels,
    argilla_records,
    escape_cell,
    export_review,
    label_studio_config,
    label_studio_tasks,
    order_for_review,
    review_table,
    score_items,
    unescape_cell,
    write_review_files,
)
from synthdistill.settings import ensemble_settings

from .conftest import LABEL_DEFAULTS, LABELS, REVIEW_CV
from .pipeline_helpers import TINY_CONFIG, copy_run, planned_jobs, rules_of, snakemake, write_config

WORDS = {
    "positive": "profit rose strongly growth gains record",
    "negative": "loss fell sharply decline cuts warning",
    "neutral": "company office located meeting held annual",
}


def scripted_votes(n: int = 120, flipped: tuple[int, ...] = (3, 10, 20)) -> pd.DataFrame:
    """Texts whose words give their label away, with a few labels flipped (a noisy teacher)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        text = " ".join(rng.choice(WORDS[label].split(), 4)) + f" item{i}"
        split = "train" if i < 0.7 * n else ("validation" if i < 0.85 * n else "test")
        rows.append({"id": f"i{i}", "split": split, "text": text, "label": label, "expert_label": label})
    votes = pd.DataFrame(rows)
    for i in flipped:
        votes.loc[i, "label"] = LABELS[(LABELS.index(votes.loc[i, "label"]) + 1) % 3]
    votes["vote_status"] = "voted"
    votes["agreement"] = 1.0
    for label in LABELS:
        votes[f"votes_{label}"] = (votes["label"] == label).astype(int) * 3
    votes["n_failed"] = 0
    return votes


def iterations_of(votes: pd.DataFrame, n: int = 3, name: str = "t/p") -> dict[str, pd.DataFrame]:
    frame = votes[["id", "label"]].assign(reason="because the words say so")
    return {f"{name}/iter{k}": frame.copy() for k in range(n)}


def test_cleanlab_flags_the_flipped_labels_and_they_lead_the_review_order():
    votes = scripted_votes()
    iterations = iterations_of(votes)
    ids = votes.loc[votes["split"] != "test", "id"].tolist()
    scores = score_items(
        votes,
        annotator_labels(iterations, ids),
        LABELS,
        features="tfidf",
        embedding_model=None,
        cv_folds=5,
        seed=REVIEW_CV["seed"],
    )
    assert set(scores["id"]) == set(ids)  # the test split is never up for review
    assert set(scores.loc[scores["label_issue"], "id"]) == {"i3", "i10", "i20"}
    assert scores["issue_method"].iloc[0] == "cv_logreg_tfidf+crowdlab"
    table = review_table(votes, scores, iterations, LABELS)
    assert table["id"].head(3).tolist() and set(table["id"].head(3)) == {"i3", "i10", "i20"}
    assert table["rank"].tolist() == list(range(1, len(table) + 1))
    assert (table["reasons"].str.count("because") == 3).all()


def test_crowdlab_flags_a_vote_the_other_annotators_contradict():
    votes = scripted_votes(flipped=())
    iterations = iterations_of(votes, n=2, name="a/p")
    # A second teacher and the first disagree on i5; the first one's vote says negative.
    votes.loc[5, "label"] = "negative"
    other = votes[["id", "label"]].assign(label=votes["expert_label"])
    iterations.update({f"b/p/iter{k}": other.copy() for k in range(3)})
    ids = votes.loc[votes["split"] != "test", "id"].tolist()
    scores = score_items(
        votes,
        annotator_labels(iterations, ids),
        LABELS,
        features="tfidf",
        embedding_model=None,
        cv_folds=REVIEW_CV["cv_folds"],
        seed=REVIEW_CV["seed"],
    ).set_index("id")
    assert scores.loc["i5", "consensus_label"] == votes.loc[5, "expert_label"]
    assert scores.loc["i5", "label_issue"]


def test_review_order_puts_flagged_first_then_low_agreement_then_low_quality():
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "label_issue": [False, True, False, False, True],
            "agreement": [1.0, 1.0, 0.34, 0.67, 0.67],
            "label_quality": [0.2, 0.9, 0.8, np.nan, 0.1],
        }
    )
    assert order_for_review(frame)["id"].tolist() == ["e", "b", "c", "d", "a"]


def test_one_voted_class_still_writes_a_review_ordered_by_agreement():
    votes = scripted_votes(flipped=()).assign(label="positive")
    votes.loc[0, "agreement"] = 0.34
    ids = votes.loc[votes["split"] != "test", "id"].tolist()
    scores = score_items(
        votes,
        annotator_labels(iterations_of(votes), ids),
        LABELS,
        features="tfidf",
        embedding_model=None,
        cv_folds=REVIEW_CV["cv_folds"],
        seed=REVIEW_CV["seed"],
    )
    assert (scores["issue_method"] == "agreement_only").all() and not scores["label_issue"].any()
    assert review_table(votes, scores, {}, LABELS)["id"].iloc[0] == "i0"


def test_review_files_in_every_format(tmp_path):
    votes = scripted_votes()
    votes.loc[7, ["label", "vote_status"]] = [None, "tie"]
    iterations = iterations_of(votes)
    ids = votes.loc[votes["split"] != "test", "id"].tolist()
    table = review_table(
        votes,
        score_items(
            votes,
            annotator_labels(iterations, ids),
            LABELS,
            features="tfidf",
            embedding_model=None,
            cv_folds=REVIEW_CV["cv_folds"],
            seed=REVIEW_CV["seed"],
        ),
        iterations,
        LABELS,
    )
    outputs = {k: str(tmp_path / f"r.{k}") for k in ("csv", "xlsx", "argilla", "label_studio", "label_studio_config")}
    write_review_files(table, LABELS, "synthdistill:t/p", outputs)
    csv = pd.read_csv(outputs["csv"])
    assert csv["id"].tolist() == table["id"].tolist()
    assert {"text", "voted_label", "votes_positive", "agreement", "reasons", "label_issue", "label_quality"} <= set(
        csv.columns
    )
    assert pd.read_excel(outputs["xlsx"])["id"].tolist() == table["id"].tolist()
    argilla = json.loads(open(outputs["argilla"]).read())
    assert argilla["settings"]["questions"] == [
        {"name": "label", "type": "label_selection", "labels": LABELS, "required": True}
    ]
    first = argilla["records"][0]
    assert first["id"] == table["id"].iloc[0] and first["fields"]["text"] == table["text"].iloc[0]
    assert first["suggestions"]["label"]["value"] == table["voted_label"].iloc[0]
    tie = next(r for r in argilla["records"] if r["id"] == "i7")
    assert tie["suggestions"] == {}  # no vote, no suggestion
    tasks = json.loads(open(outputs["label_studio"]).read())
    assert [t["data"]["id"] for t in tasks] == table["id"].tolist()
    choice = tasks[0]["predictions"][0]["result"][0]
    assert choice["from_name"] == "label" and choice["to_name"] == "text" and choice["type"] == "choices"
    assert choice["value"]["choices"] == [table["voted_label"].iloc[0]]
    assert '<Choices name="label" toName="text"' in open(outputs["label_studio_config"]).read()


def test_xlsx_corrections_are_read_as_the_text_in_each_cell_never_evaluated(tmp_path):
    # A script (pandas, openpyxl) saves a label "=0" as a formula with no computed value; a reviewer's
    # typed id 17 is stored as a number. Both come back as the text in the cell.
    frame = pd.DataFrame({"id": ["i1", 17, "'-3"], "label": ["=0", "0", "=A2"]})
    frame.to_excel(tmp_path / "c.xlsx", index=False)
    read = read_corrections(tmp_path / "c.xlsx")
    assert read["id"].tolist() == ["i1", "17", "-3"]
    assert read["label"].tolist() == ["=0", "0", "=A2"]
    assert read["row"].tolist() == [1, 2, 3]


def test_reading_csv_xlsx_label_studio_and_argilla_corrections(tmp_path):
    frame = pd.DataFrame({"id": ["i1", "i2"], "label": ["negative", "neutral"], "reviewer": ["ann", None]})
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_excel(tmp_path / "c.xlsx", index=False)
    for name in ("c.csv", "c.xlsx"):
        read = read_corrections(tmp_path / name)
        assert read["id"].tolist() == ["i1", "i2"] and read["label"].tolist() == ["negative", "neutral"]
        assert read["reviewer"].tolist()[0] == "ann" and read["row"].tolist() == [1, 2]

    votes = scripted_votes(n=12, flipped=())
    tasks = label_studio_tasks(
        review_table(votes, votes[["id"]].assign(label_issue=False, label_quality=1.0), {}, LABELS), LABELS, "m"
    )
    # What Label Studio exports after review: the tasks with annotations (one cancelled, one untouched).
    tasks[0]["annotations"] = [
        {"completed_by": {"id": 7, "email": "ann@x.org"}, "was_cancelled": False, "result": [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["neutral"]}}]},
    ]  # fmt: skip
    tasks[1]["annotations"] = [{"completed_by": 8, "was_cancelled": True, "result": []}]
    tasks[2]["annotations"] = [
        {"completed_by": 8, "result": [{"from_name": "label", "type": "choices", "value": {"choices": ["positive"]}}]}
    ]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    read = read_corrections(tmp_path / "ls.json")
    assert read[["row", "id", "label", "reviewer"]].values.tolist() == [
        [1, tasks[0]["data"]["id"], "neutral", "ann@x.org"],
        [3, tasks[2]["data"]["id"], "positive", "8"],
    ]

    records = argilla_records(
        review_table(votes, votes[["id"]].assign(label_issue=False, label_quality=1.0), {}, LABELS), LABELS, "m"
    )["records"]
    records[0]["responses"] = {"label": [{"value": "negative", "user_id": "u-1", "status": "submitted"}]}
    records[1]["responses"] = {"label": [{"value": "neutral", "user_id": "u-2", "status": "draft"}]}
    records[2]["responses"] = [{"question_name": "label", "value": "neutral", "user_id": "u-3"}]
    (tmp_path / "ar.json").write_text(json.dumps(records))
    read = read_corrections(tmp_path / "ar.json")
    assert read[["row", "id", "label", "reviewer"]].values.tolist() == [
        [1, records[0]["id"], "negative", "u-1"],
        [3, records[2]["id"], "neutral", "u-3"],
    ]


def test_corrections_change_exactly_the_named_labels_and_are_audited(tmp_path):
    votes = scripted_votes(n=30, flipped=())
    votes.loc[4, ["label", "vote_status"]] = [None, "tie"]
    corrections = pd.DataFrame(
        {"row": [1, 2, 3], "id": ["i1", "i4", "i2"], "label": ["neutral", "positive", votes.loc[2, "label"]],
         "reviewer": ["ann", "bob", None]}
    )  # fmt: skip
    reviewed, audit = apply_corrections(votes, corrections, LABELS, "c.csv")
    changed = reviewed["label"].fillna("-") != votes["label"].fillna("-")
    assert reviewed.loc[changed, "id"].tolist() == ["i1", "i4"]
    assert reviewed.loc[reviewed["corrected"], "id"].tolist() == ["i1", "i2", "i4"]
    assert (reviewed["voted_label"].fillna("-") == votes["label"].fillna("-")).all()
    audit = audit.astype(object).where(audit.notna(), None)
    assert audit[["id", "old_label", "new_label", "changed", "reviewer", "row"]].values.tolist() == [
        ["i1", votes.loc[1, "label"], "neutral", True, "ann", 1],
        ["i4", None, "positive", True, "bob", 2],
        ["i2", votes.loc[2, "label"], votes.loc[2, "label"], False, None, 3],
    ]
    same, empty = apply_corrections(votes, None, LABELS)
    assert same["label"].equals(votes["label"]) and empty.empty


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("i1", "neutral"), ("nope", "neutral")], "row 2: unknown id 'nope'"),
        ([("i1", "bullish")], "row 1: id 'i1': label 'bullish' is not one of"),
        ([("i29", "neutral")], "row 1: unknown id 'i29' (not in the train or validation split)"),  # a test item
        ([("i1", "neutral"), ("i1", "negative")], "rows [1, 2]: id 'i1' is corrected to different labels"),
        ([("i1", "neutral"), ("", "neutral")], "row 2: no id"),
    ],
)
def test_bad_corrections_name_the_row_and_apply_nothing(tmp_path, rows, message):
    votes = scripted_votes(n=30, flipped=())
    votes.to_parquet(tmp_path / "votes.parquet")
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(tmp_path / "c.csv", index=False)
    labels_out, audit_out = tmp_path / "labels.parquet", tmp_path / "audit.csv"
    with pytest.raises(SynthDistillError) as error:
        import_review(str(tmp_path / "votes.parquet"), str(tmp_path / "c.csv"), LABELS, labels_out, audit_out, {})
    assert message in str(error.value) and str(tmp_path / "c.csv") in str(error.value)
    assert not labels_out.exists() and not audit_out.exists()


def test_ensemble_majority_pools_every_iteration_and_crowdlab_breaks_ties():
    votes = scripted_votes(n=60, flipped=())
    items = votes[["id", "split", "text", "expert_label"]]
    good = votes[["id"]].assign(label=votes["expert_label"], reason=None)
    noisy = good.copy()
    noisy.loc[[2, 5], "label"] = "negative"
    # a/p says positive-ish noise on two items; b/p is right; majority over 2 + 2 iterations ties there.
    iterations = {"a/p/iter0": noisy, "a/p/iter1": noisy, "b/p/iter0": good, "b/p/iter1": good}
    settings = {"features": "tfidf", "embedding_model": None, "cv_folds": 5, "seed": 0}
    majority = ensemble_votes(iterations, items, LABELS, "majority", "abstain", settings)
    assert majority.loc[[2, 5], "vote_status"].tolist() == ["tie", "tie"] and majority.loc[[2, 5], "label"].isna().all()
    assert (majority.drop(index=[2, 5])["label"] == items.drop(index=[2, 5])["expert_label"]).all()
    assert (majority[[f"votes_{x}" for x in LABELS]].sum(axis=1) == 4).all()
    consensus = ensemble_votes(iterations, items, LABELS, "crowdlab", "abstain", settings)
    assert consensus["label"].notna().all()
    assert (consensus["label"] == items["expert_label"]).mean() >= 0.95


def test_ensemble_members_must_be_teacher_prompts_of_the_run():
    config = {"teachers": {"t": {}}, "ensembles": {"e": {"members": [["t", "p"], ["t", "q"]], "method": "crowdlab"}}}
    assert ensemble_settings(config, ["t"], ["p", "q"]) == {
        "e": {"members": [("t", "p"), ("t", "q")], "method": "crowdlab"}
    }
    with pytest.raises(SynthDistillError, match=r"ensembles.e.members\[2\]: t/q is not a teacher × prompt"):
        ensemble_settings(config, ["t"], ["p"])


# --- labels that are no Python names, spreadsheet injection, control characters, XML ---

ODD_LABELS = ["no opinion", "very-negative", "n/a", "R&D", "Sci/Tech"]
OUTPUT_KINDS = ("csv", "xlsx", "argilla", "label_studio", "label_studio_config")


def votes_for(ids: list[str], labels: list[str], texts: list[str] | None = None) -> pd.DataFrame:
    """A vote file in the vote stage's shape: item k voted labels[k % len(labels)] unanimously."""
    voted = [labels[k % len(labels)] for k in range(len(ids))]
    votes = pd.DataFrame(
        {
            "id": ids,
            "split": "train",
            "text": texts or [f"text of {i}" for i in ids],
            "label": voted,
            "vote_status": "voted",
            "agreement": 1.0,
        }
    )
    for label in labels:
        votes[f"votes_{label}"] = [3 * (v == label) for v in voted]
    votes["n_failed"] = 0
    return votes


def export(tmp_path, votes: pd.DataFrame, labels: list[str], reason: str = "because") -> dict[str, str]:
    """Run export_review as the rule does: parquet inputs under results/-like paths, TF-IDF features."""
    votes_path = tmp_path / "votes.parquet"
    votes.to_parquet(votes_path)
    iteration = tmp_path / "annotations" / "t" / "p" / "iter0.parquet"
    iteration.parent.mkdir(parents=True)
    votes[["id", "label"]].assign(reason=reason).to_parquet(iteration)
    outputs = {k: str(tmp_path / f"r.{k}") for k in OUTPUT_KINDS}
    settings = {"features": "tfidf", "embedding_model": None, "cv_folds": 3, "seed": 0}
    export_review(
        str(votes_path),
        {"t/p/iter0": str(iteration)},
        {"t/p/iter0": str(iteration)},
        labels,
        settings,
        "t",
        "p",
        outputs,
    )
    return outputs


def test_labels_that_are_no_python_names_go_out_for_review_and_come_back(tmp_path):
    ids = [f"i{k}" for k in range(15)]
    votes = votes_for(ids, ODD_LABELS)
    outputs = export(tmp_path, votes, ODD_LABELS)
    csv_table = pd.read_csv(outputs["csv"], keep_default_na=False)
    assert (
        csv_table.set_index("id").loc["i2", "votes_n/a"] == 3
        and csv_table.set_index("id").loc["i2", "voted_label"] == "n/a"
    )
    records = {r["id"]: r for r in json.loads(open(outputs["argilla"]).read())["records"]}
    assert records["i3"]["metadata"]["votes_R&D"] == 3 and records["i3"]["suggestions"]["label"]["value"] == "R&D"
    assert records["i0"]["metadata"]["votes_no opinion"] == 3 and records["i0"]["metadata"]["votes_Sci/Tech"] == 0
    tasks = {t["data"]["id"]: t for t in json.loads(open(outputs["label_studio"]).read())}
    assert tasks["i4"]["data"]["votes_Sci/Tech"] == 3
    assert tasks["i4"]["predictions"][0]["result"][0]["value"]["choices"] == ["Sci/Tech"]
    choices = [c.get("value") for c in ET.parse(outputs["label_studio_config"]).getroot().iter("Choice")]
    assert choices == ODD_LABELS

    # "n/a" is a label, not a missing value, when the corrections come back from CSV or XLSX.
    corrections = pd.DataFrame({"id": ["i0", "i1", "i3"], "label": ["n/a", "very-negative", "no opinion"]})
    corrections.to_csv(tmp_path / "c.csv", index=False)
    corrections.to_excel(tmp_path / "c.xlsx", index=False)
    for name in ("c.csv", "c.xlsx"):
        audit = import_review(
            str(tmp_path / "votes.parquet"),
            str(tmp_path / name),
            ODD_LABELS,
            tmp_path / "l.parquet",
            tmp_path / "a.csv",
            {},
        )
        assert audit[["id", "old_label", "new_label", "changed"]].values.tolist() == [
            ["i0", "no opinion", "n/a", True],
            ["i1", "very-negative", "very-negative", False],
            ["i3", "R&D", "no opinion", True],
        ], name
        assert pd.read_parquet(tmp_path / "l.parquet").set_index("id").loc["i0", "label"] == "n/a"


PAYLOADS = ['=HYPERLINK("http://evil","x")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_escaping_is_exactly_inverted_and_leaves_plain_values_alone():
    for value in [*PAYLOADS, "'", "'=1", "''", "'plain", "plain", "", "a=b", "-"]:
        assert unescape_cell(escape_cell(value)) == value
    for value in PAYLOADS:
        assert escape_cell(value) == "'" + value
    assert escape_cell("plain") == "plain" and escape_cell(-17) == -17 and escape_cell(None) is None
    # A value a person typed without our escaping is read as typed.
    assert unescape_cell("'plain") == "'plain" and unescape_cell("-17") == "-17"


def raw_spreadsheet_cells(outputs: dict[str, str]) -> dict[str, list[list]]:
    """Every cell of the review CSV and XLSX as a spreadsheet app receives it."""
    from openpyxl import load_workbook

    with open(outputs["csv"], newline="") as handle:
        csv_rows = list(csv.reader(handle))
    sheet = load_workbook(outputs["xlsx"])["review"]
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # not one formula cell
    return {"csv": csv_rows, "xlsx": [[c.value for c in row] for row in sheet.iter_rows()]}


def test_formula_like_cells_are_inert_in_the_review_spreadsheets_and_round_trip(tmp_path):
    labels = ["-2+3", "@SUM(A1)", "plain"]
    ids = ["-17", "=1+1", "+1+1", "@SUM(A1)", "\tx", "'quoted", "'=already", "plain", "i8"]
    texts = [*PAYLOADS, "ok", "fine"]
    votes = votes_for(ids, labels, texts)
    outputs = export(tmp_path, votes, labels, reason="=cmd|' /C calc'!A0")
    for kind, rows in raw_spreadsheet_cells(outputs).items():
        cells = [c for row in rows for c in row if isinstance(c, str)]
        assert not [c for c in cells if c.startswith(FORMULA_TRIGGERS)], kind
        header = rows[0]
        by_id = {row[header.index("id")]: dict(zip(header, row, strict=True)) for row in rows[1:]}
        assert set(by_id) == {escape_cell(i) for i in ids}, kind
        assert by_id["'-17"]["text"] == "'" + PAYLOADS[0] and by_id["'=1+1"]["voted_label"] == "'@SUM(A1)", kind
        assert by_id["'-17"]["reasons"] == "'-2+3: =cmd|' /C calc'!A0", kind

        # A reviewer fills a label column by copying label cells as the spreadsheet shows them.
        corrected = {"'-17": "'@SUM(A1)", "'=1+1": "'-2+3", "''=already": "plain"}
        path = tmp_path / f"corrections_{kind}.{kind}"
        if kind == "csv":
            with open(path, "w", newline="") as handle:
                csv.writer(handle).writerows([["id", "label"], *corrected.items()])
        else:
            from openpyxl import Workbook

            book = Workbook()
            for row in [["id", "label"], *corrected.items()]:
                book.active.append(row)
            book.save(path)
        read = read_corrections(path)
        assert read["id"].tolist() == ["-17", "=1+1", "'=already"], kind
        assert read["label"].tolist() == ["@SUM(A1)", "-2+3", "plain"], kind
        reviewed, audit = apply_corrections(votes, read, labels, str(path))
        assert audit[["id", "old_label", "new_label", "changed"]].values.tolist() == [
            ["-17", "-2+3", "@SUM(A1)", True],
            ["=1+1", "@SUM(A1)", "-2+3", True],
            ["'=already", "-2+3", "plain", True],
        ], kind
    # The JSON files are read by tools, not spreadsheets: exact values.
    tasks = json.loads(open(outputs["label_studio"]).read())
    assert [t["data"]["id"] for t in tasks if t["data"]["text"] == PAYLOADS[0]] == ["-17"]


def test_the_audit_csv_is_escaped_too(tmp_path):
    votes = votes_for(["-17", "a"], ["=x", "y"])
    votes.to_parquet(tmp_path / "votes.parquet")
    pd.DataFrame({"id": ["'-17"], "label": ["y"], "reviewer": ["'@ann"]}).to_csv(tmp_path / "c.csv", index=False)
    audit = import_review(
        str(tmp_path / "votes.parquet"),
        str(tmp_path / "c.csv"),
        ["=x", "y"],
        tmp_path / "l.parquet",
        tmp_path / "a.csv",
        {},
    )
    assert audit[["id", "old_label", "new_label", "reviewer"]].values.tolist() == [["-17", "=x", "y", "@ann"]]
    with open(tmp_path / "a.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["old_label"], r["reviewer"]) for r in rows] == [("'-17", "'=x", "'@ann")]


def test_control_characters_are_dropped_from_the_xlsx_only_and_a_bad_cell_names_its_row(tmp_path):
    from openpyxl import load_workbook

    labels = ["a", "b"]
    votes = votes_for(["i0", "i1", "i2", "i3"], labels, ["nul\x00 here", "bell\x07", "ok", "\x01=1+1"])
    outputs = export(tmp_path, votes, labels, reason="odd\x01 reason\x1f")
    sheet = load_workbook(outputs["xlsx"])["review"]
    header = [c.value for c in sheet[1]]
    rows = {
        r[header.index("id")]: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)
    }
    assert rows["i0"]["text"] == "nul here" and rows["i1"]["text"] == "bell"
    assert rows["i3"]["text"] == "'=1+1"  # stripping must not uncover a formula
    assert rows["i0"]["reasons"] == "a: odd reason"
    raw_csv = open(outputs["csv"], newline="").read()
    assert "nul\x00 here" in raw_csv and "odd\x01 reason\x1f" in raw_csv
    tasks = {t["data"]["id"]: t["data"] for t in json.loads(open(outputs["label_studio"]).read())}
    assert tasks["i1"]["text"] == "bell\x07" and tasks["i0"]["reasons"] == "a: odd\x01 reason\x1f"

    table = pd.read_csv(outputs["csv"], keep_default_na=False)
    table["reasons"] = table["reasons"].astype(object)
    table.at[2, "reasons"] = {"not": "a cell"}
    bad_id = table.at[2, "id"]
    with pytest.raises(SynthDistillError, match=f"cannot write the row of id '{bad_id}'"):
        write_review_files(table, labels, "s", {k: str(tmp_path / f"bad.{k}") for k in OUTPUT_KINDS})


def test_label_studio_config_is_valid_xml_whose_choices_are_exactly_the_labels():
    labels = ["R&D", 'x"/><Choice value="y', "no opinion", "<b>bold</b>", "it's"]
    root = ET.fromstring(label_studio_config(labels))
    assert root.tag == "View"
    (choices,) = root.iter("Choices")
    assert choices.attrib == {"name": "label", "toName": "text", "choice": "single", "showInLine": "true"}
    assert [c.get("value") for c in choices] == labels and len(list(root.iter("Choice"))) == len(labels)
    assert [t.get("value") for t in root.iter("Text")] == ["$text", "$reasons"]


# --- the real pipeline: a corrections file reruns only what is downstream of the labels ---

ENSEMBLE = {"both": {"members": [["smollm2", "label"], ["smollm2", "cot_json"]], "method": "majority"}}


def config_with(workdir, name: str, corrections: str | None):
    return write_config(
        workdir / "config" / name,
        {
            **TINY_CONFIG,
            "cache": {"path": "cache/responses.sqlite"},
            "ensembles": ENSEMBLE,
            "review": {"corrections": corrections},
        },
    )


@pytest.fixture(scope="module")
def finished_run(tiny_run, tmp_path_factory):
    """The tiny run with an ensemble of its two prompts added: only the ensemble's jobs (and the
    report) run, from the iterations already there."""
    workdir = copy_run(tiny_run, tmp_path_factory.mktemp("review"))
    config_with(workdir, "config.yaml", None)
    snakemake(workdir)
    return workdir


@pytest.mark.slow
def test_every_label_set_gets_review_files_and_the_ensemble_is_a_teacher(finished_run):
    review = finished_run / "results" / "review"
    for teacher, prompt in (("smollm2", "label"), ("smollm2", "cot_json"), ("both", "majority")):
        table = pd.read_csv(review / teacher / f"{prompt}.review.csv")
        votes = pd.read_parquet(finished_run / "results" / "votes" / teacher / f"{prompt}.parquet")
        assert sorted(table["id"]) == sorted(votes.loc[votes["split"] != "test", "id"])
        flagged = table["label_issue"].astype(bool)
        assert flagged.tolist() == sorted(flagged, reverse=True)  # flagged rows first
        for _, group in table.groupby(flagged):
            assert group["agreement"].is_monotonic_increasing
        assert len(json.loads((review / teacher / f"{prompt}.label_studio.json").read_text())) == len(table)
        assert len(json.loads((review / teacher / f"{prompt}.argilla.json").read_text())["records"]) == len(table)
        assert pd.read_excel(review / teacher / f"{prompt}.review.xlsx")["id"].tolist() == table["id"].tolist()
        labels = pd.read_parquet(review / teacher / f"{prompt}.labels.parquet")
        assert not labels["corrected"].any() and labels["label"].equals(votes["label"])
    ensemble = pd.read_parquet(finished_run / "results" / "votes" / "both" / "majority.parquet")
    assert (ensemble[[f"votes_{x}" for x in LABELS]].sum(axis=1) + ensemble["n_failed"] == 4).all()
    assert (finished_run / "results" / "students" / "minilm" / "both" / "majority" / "model").exists()
    assert (finished_run / "results" / "evaluation" / "teachers" / "both" / "majority.json").exists()
    metrics = json.loads((finished_run / "results" / "evaluation" / "teachers" / "both" / "majority.json").read_text())
    report = (finished_run / "results" / "report" / "report.md").read_text().splitlines()
    rows = [line for line in report if line.startswith("| both/majority ") and re.search(r"\|\s*teacher\s*\|", line)]
    assert len(rows) == 1 and f"| {metrics['accuracy']:.3f} [" in rows[0]
    table = pd.read_csv(review / "smollm2" / "cot_json.review.csv")
    assert table["reasons"].fillna("").str.len().gt(0).any()  # the CoT reasons reach the reviewer


@pytest.mark.slow
def test_a_corrections_file_reruns_only_downstream_and_changes_exactly_its_labels(finished_run):
    from synthdistill.students.files import label_frames

    run = finished_run
    labels_path = run / "results" / "review" / "smollm2" / "label.labels.parquet"
    before = pd.read_parquet(labels_path)
    train = before.loc[(before["split"] == "train") & before["label"].notna()]
    named = train["id"].head(3).tolist()
    new = [LABELS[(LABELS.index(v) + 1) % 3] for v in train["label"].head(3)]
    corrections = run / "corrections.csv"
    pd.DataFrame({"id": named, "label": new, "reviewer": ["ann", "ann", "bob"]}).to_csv(corrections, index=False)
    config = config_with(run, "reviewed.yaml", str(corrections))
    review = run / "results" / "review"
    sources = ("smollm2/label", "smollm2/cot_json", "both/majority")
    frames_before = {
        src: label_frames([str(review / f"{src}.labels.parquet")], "t", **LABEL_DEFAULTS)[0] for src in sources
    }

    jobs = planned_jobs(run, "--configfile", str(config))
    assert rules_of(jobs) == {
        "import_review": 3,
        "train_student": 3,
        "export_onnx": 3,
        "evaluate_student": 3,
        "write_model_card": 3,
        "benchmark_student": 3,
        "cascade": 3,
        "compare_models": 1,
        "report": 1,
    }
    # Run what the checks below read: the corrected label sets and one retrained student (the rest
    # of the plan above only reads them).
    student = run / "results" / "students" / "minilm" / "smollm2" / "label" / "metadata.json"
    targets = [str(p.relative_to(run)) for p in [*(review / f"{src}.labels.parquet" for src in sources), student]]
    snakemake(run, *targets, "--configfile", str(config))  # targets first: --configfile takes several
    assert planned_jobs(run, *targets, "--configfile", str(config)) == []

    for src, old in frames_before.items():
        # What the student trains on: only the named ids changed (the ensemble's or the other
        # prompt's vote may already agree with a correction, or have abstained on it).
        reviewed = pd.read_parquet(review / f"{src}.labels.parquet")
        after = label_frames([str(review / f"{src}.labels.parquet")], "t", **LABEL_DEFAULTS)[0]
        merged = old.set_index("id")["label"].to_frame("old").join(after.set_index("id")["label"], how="outer")
        differs = set(merged.index[merged["old"].fillna("-") != merged["label"].fillna("-")])
        assert differs <= set(named), src
        assert set(reviewed.loc[reviewed["corrected"], "id"]) == set(named), src
        assert reviewed.set_index("id").loc[named, "label"].tolist() == new, src
        audit = pd.read_csv(review / f"{src}.audit.csv")
        assert audit["id"].tolist() == named and audit["new_label"].tolist() == new
        assert audit["reviewer"].tolist() == ["ann", "ann", "bob"]
        if src == "smollm2/label":  # the corrections were chosen to change every one of these labels
            assert differs == set(named)
    assert json.loads(student.read_text())["reviewed_corrections"]["train"] == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "rows, message",
    [
        ([(0, "positive"), ("nope-1", "neutral")], "row 2: unknown id 'nope-1'"),
        ([(0, "bullish")], "row 1: id '{0}': label 'bullish' is not one of"),
    ],
)
def test_a_bad_corrections_file_fails_naming_the_row_and_retrains_nothing(finished_run, rows, message):
    run = finished_run
    train_ids = pd.read_parquet(run / "results" / "data" / "train.parquet")["id"].tolist()
    rows = [(train_ids[i] if isinstance(i, int) else i, label) for i, label in rows]
    message = message.replace("{0}", train_ids[0])
    path = run / "bad_corrections.csv"
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(path, index=False)
    config = config_with(run, "bad_review.yaml", str(path))
    model = run / "results" / "students" / "minilm" / "smollm2" / "label" / "model" / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    result = snakemake(run, "--configfile", str(config), check=False)
    assert result.returncode != 0
    logs = "".join(p.read_text() for p in (run / "logs" / "import_review").rglob("*.log"))
    assert message in result.stdout + result.stderr + logs
    assert model.stat().st_mtime_ns == stamp  # no student was retrained


@pytest.mark.slow
def test_a_missing_corrections_file_stops_before_any_job(finished_run):
    config = config_with(finished_run, "missing_review.yaml", "review/nope.csv")
    result = snakemake(finished_run, "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert "review.corrections: file review/nope.csv does not exist" in result.stdout + result.stderr
