"""Task multi_label review: cleanlab's multi-label label-issue detection orders the review file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from synthdistill.labels.multi_label_review import export_review, review_table, score_items
from synthdistill.labels.multi_label_vote import vote_label_sets
from synthdistill.tasks.multi_label import label_set_json

from .conftest import REVIEW_CV

LABELS = ["billing", "bug", "feature_request", "account", "praise"]
WORDS = {
    "billing": "invoice charged refund payment",
    "bug": "crash error broken freezes",
    "feature_request": "please add wish option",
    "account": "login password username locked",
    "praise": "thanks great love wonderful",
}


def scripted_votes(n: int = 150, planted: dict[int, list[str]] | None = None, labels=LABELS) -> pd.DataFrame:
    """Texts whose words give their set away (a few plain words each), voted unanimously by three
    iterations; ``planted`` replaces some items' voted sets by wrong ones (a noisy teacher)."""
    rng = np.random.default_rng(0)
    rows, answers = [], []
    for i in range(n):
        chosen = [x for x in labels if rng.random() < 0.35]
        words = [w for x in chosen for w in rng.choice(WORDS[x].split(), 3, replace=False)]
        text = " ".join([*words, "hello", f"ticket{i}"])
        split = "train" if i < 0.7 * n else ("validation" if i < 0.85 * n else "test")
        rows.append({"id": f"i{i}", "split": split, "text": text})
        answers.append(label_set_json((planted or {}).get(i, chosen), labels))
    iteration = pd.DataFrame({"id": [r["id"] for r in rows], "label": answers})
    return vote_label_sets([iteration] * 3, pd.DataFrame(rows), labels, 0.5)


PLANTED = {4: ["praise"], 11: ["billing", "bug", "account"], 30: []}


def test_a_planted_wrong_set_is_flagged_and_leads_the_review():
    votes = scripted_votes(planted=PLANTED)
    # the planted sets differ from the texts' ones
    truth = scripted_votes()
    assert all(votes.loc[i, "label"] != truth.loc[i, "label"] for i in PLANTED)
    scores = score_items(votes, LABELS, features="tfidf", embedding_model=None, cv_folds=5, seed=REVIEW_CV["seed"])
    assert set(scores["id"]) == set(votes.loc[votes["split"] != "test", "id"])  # never the test split
    flagged = set(scores.loc[scores["label_issue"], "id"])
    assert {f"i{i}" for i in PLANTED} <= flagged and len(flagged) <= 6
    assert (scores["issue_method"] == "cv_ovr_logreg_tfidf").all()
    # the suggestion is the set the words say
    suggested = scores.set_index("id")["cl_suggested_label"]
    assert all(suggested[f"i{i}"] == truth.loc[i, "label"] for i in PLANTED)
    table = review_table(votes, LABELS, scores)
    # every vote is unanimous: only cleanlab can bring the planted items to the top
    assert set(table["id"].head(3)) == {f"i{i}" for i in PLANTED}
    assert table["label_issue"].head(len(flagged)).all() and not table["label_issue"].iloc[len(flagged) :].any()
    assert table["rank"].tolist() == list(range(1, len(table) + 1))
    quality = table.set_index("id")["label_quality"]
    assert quality[[f"i{i}" for i in PLANTED]].max() < quality.drop([f"i{i}" for i in PLANTED]).median()


def test_flagged_first_then_agreement_then_no_vote_then_least_agreed_label():
    votes = scripted_votes(n=20).iloc[:6].copy()
    votes["split"] = "train"
    votes["agreement"] = [1.0, 1 / 3, 1 / 3, 2 / 3, 1 / 3, 1.0]
    votes.loc[4, ["label", "vote_status"]] = [None, "all_failed"]
    votes.loc[4, "agreement"] = 0.0
    votes.loc[2, "agreement_bug"] = 1 / 3  # item 2's least agreed label is less agreed than item 1's
    votes.loc[1, [f"agreement_{x}" for x in LABELS]] = 2 / 3
    scores = pd.DataFrame({"id": votes["id"], "label_issue": [False] * 5 + [True], "label_quality": 0.5})
    order = review_table(votes, LABELS, scores)["id"].tolist()
    assert order == ["i5", "i4", "i2", "i1", "i3", "i0"]


def test_a_label_in_every_set_or_in_none_is_left_unchecked():
    votes = scripted_votes(planted=PLANTED)
    # nobody voted praise, everybody voted billing
    sets = [json.loads(v) for v in votes["label"]]
    votes["label"] = [label_set_json({*s, "billing"} - {"praise"}, LABELS) for s in sets]
    scores = score_items(votes, LABELS, features="tfidf", embedding_model=None, cv_folds=5, seed=REVIEW_CV["seed"])
    assert (scores["cl_unchecked_labels"] == "billing|praise").all()
    assert (scores["issue_method"] == "cv_ovr_logreg_tfidf").all()
    # the vote stands on the unchecked labels; the other planted errors are still found
    assert all('"billing"' in s and '"praise"' not in s for s in scores["cl_suggested_label"])
    assert {"i11", "i30"} <= set(scores.loc[scores["label_issue"], "id"])


def test_without_a_label_to_check_agreement_alone_orders_the_review():
    votes = scripted_votes(n=30)
    votes["label"] = "[]"  # the teacher never tags anything
    votes.loc[2, "agreement"] = 1 / 3
    scores = score_items(
        votes, LABELS, features="tfidf", embedding_model=None, cv_folds=REVIEW_CV["cv_folds"], seed=REVIEW_CV["seed"]
    )
    assert (scores["issue_method"] == "agreement_only").all() and not scores["label_issue"].any()
    assert scores["label_quality"].isna().all()
    assert review_table(votes, LABELS, scores)["id"].iloc[0] == "i2"
    few = scripted_votes(n=30)
    few.loc[few.index[3:], ["label", "vote_status"]] = [None, "all_failed"]
    assert (
        score_items(
            few, LABELS, features="tfidf", embedding_model=None, cv_folds=REVIEW_CV["cv_folds"], seed=REVIEW_CV["seed"]
        )["issue_method"]
        == "agreement_only"
    ).all()


def test_export_writes_the_cleanlab_columns_to_every_file(tmp_path):
    votes = scripted_votes(planted=PLANTED)
    votes.loc[7, ["label", "vote_status"]] = [None, "all_failed"]  # scored, not checked
    votes.to_parquet(tmp_path / "votes.parquet")
    outputs = {
        "csv": "r.csv",
        "xlsx": "r.xlsx",
        "argilla": "r.argilla.json",
        "label_studio": "r.ls.json",
        "label_studio_config": "r.xml",
    }
    outputs = {k: str(tmp_path / v) for k, v in outputs.items()}
    settings = {"features": "tfidf", "embedding_model": None, "cv_folds": 5, "seed": 42, "corrections": None}
    export_review(str(tmp_path / "votes.parquet"), {}, {}, LABELS, settings, "t", "p", outputs)
    table = pd.read_csv(outputs["csv"])
    for column in ("label_issue", "cl_issue", "label_quality", "cl_suggested_label", "issue_method"):
        assert column in table
    flagged = int(table["label_issue"].sum())
    assert {f"i{i}" for i in PLANTED} <= set(table.head(flagged)["id"]) and flagged <= 6
    unvoted = table.set_index("id").loc["i7"]
    assert np.isnan(unvoted["label_quality"]) and not unvoted["label_issue"]
    assert json.loads(unvoted["cl_suggested_label"]) == json.loads(scripted_votes().loc[7, "label"])
    assert pd.read_excel(outputs["xlsx"])["id"].tolist() == table["id"].tolist()
    records = json.loads(open(outputs["argilla"]).read())["records"]
    assert [r["metadata"]["label_issue"] for r in records] == ["true"] * flagged + ["false"] * (len(table) - flagged)
    tasks = json.loads(open(outputs["label_studio"]).read())
    assert [t["data"]["label_issue"] for t in tasks] == table["label_issue"].tolist()
