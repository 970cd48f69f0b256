"""Review files of a multi_label vote: the train and validation items, for people to correct; as CSV
and XLSX (formula-escaped, labels.review), Argilla 2.x records with a ``multi_label_selection``
question, and Label Studio tasks with multiple ``Choices``. The teacher's voted set is the suggestion
(prediction) everywhere; an item without a vote has none.

The order: items cleanlab's multi-label label-issue detection flags first, then by whole-set
agreement, then by the least agreed label, then by cleanlab's label quality. The detection runs on
out-of-fold probabilities of one-vs-rest logistic regressions (one per label, on the features the
single-label review uses: MiniLM sentence embeddings or TF-IDF) fitted on the voted sets. CROWDLAB,
the single-label review's second signal, is multiclass only and does not run here.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.labels.multi_label_corrections import NO_LABEL, QUESTION
from synthdistill.labels.review import (
    cleanlab_flags,
    export_review_step,
    scoring_settings,
    text_features,
    unscored_items,
)
from synthdistill.labels.review_records import ReviewExport, ReviewJob, choices_config, scored_record, scored_task
from synthdistill.tasks.multi_label import indicator_matrix, label_sets_of, read_label_set
from synthdistill.tasks.names import REVIEW_SPLITS

log = logging.getLogger(__name__)

# cleanlab wants probabilities strictly inside (0, 1).
_EPS = 1e-4


def one_vs_rest_probs(features, labelled: np.ndarray, targets: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each label's probability for every item, from one logistic regression per label: out-of-fold
    for the labelled items (each scored by models that never saw its set), from models fitted on all
    labelled items for the others. A label one fold's training part has only as 0 (or only as 1)
    gets that constant there: no model to fit, and no evidence against that fold's items."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    def fit_predict(train_rows: np.ndarray, train_targets: np.ndarray, predict_rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(predict_rows), train_targets.shape[1]))
        for j in range(train_targets.shape[1]):
            column = train_targets[:, j]
            if column.min() == column.max():
                out[:, j] = float(column[0])
                continue
            model = LogisticRegression(max_iter=2000, C=4.0).fit(features[train_rows], column)
            out[:, j] = model.predict_proba(features[predict_rows])[:, 1]
        return out

    rows, other = np.flatnonzero(labelled), np.flatnonzero(~labelled)
    probs = np.zeros((len(labelled), targets.shape[1]))
    # Plain shuffled folds: a label set has no class to stratify on.
    splitter = KFold(n_splits=max(2, min(folds, len(rows))), shuffle=True, random_state=seed)
    for train_index, test_index in splitter.split(rows):
        probs[rows[test_index]] = fit_predict(rows[train_index], targets[train_index], rows[test_index])
    if len(other):
        probs[other] = fit_predict(rows, targets, other)
    return np.clip(probs, _EPS, 1 - _EPS)


def score_items(
    votes: pd.DataFrame,
    labels: list[str],
    *,
    features: str,
    embedding_model: str | None,
    cv_folds: int,
    seed: int,
) -> pd.DataFrame:
    """cleanlab's multi-label scores for the reviewable items (train and validation) of one vote.

    One row per item: ``label_quality`` (cleanlab's multi-label quality of the voted set: per-label
    self-confidence, pooled with emphasis on the worst label), ``cl_issue`` (find_label_issues: some
    label of the set looks wrong), ``cl_suggested_label`` (the set of labels with out-of-fold
    probability >= 0.5), ``label_issue`` (the flag the review order uses) and ``issue_method``.

    A label that every voted set has, or none has, gives no model to fit: it is left out of the
    check (named in the log and in ``cl_unchecked_labels``) and the vote on it stands. Without a label left
    to check, or with fewer than four voted items, only agreement orders the file
    (``agreement_only``).
    """
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    items, out = unscored_items(votes)
    out["label_issue"] = False
    out["cl_unchecked_labels"] = "|".join(labels)
    labelled = items["label"].notna().to_numpy()
    targets = indicator_matrix(items.loc[labelled, "label"], labels)
    positives = targets.sum(axis=0)
    checked = np.flatnonzero((positives > 0) & (positives < len(targets)))
    if len(checked) == 0 or labelled.sum() < 4:
        log.warning(
            "no label both chosen and left out by the voted sets, or fewer than four voted items: "
            "no label-issue model; agreement alone orders the review"
        )
        out["issue_method"] = "agreement_only"
        return out
    unchecked = [labels[j] for j in range(len(labels)) if j not in set(checked)]
    if unchecked:
        log.warning("labels in every voted set or in none, not checked by cleanlab: %s", ", ".join(unchecked))
    matrix = text_features(items["text"].tolist(), features, embedding_model)
    probs = one_vs_rest_probs(matrix, labelled, targets[:, checked], cv_folds, seed)
    given = [list(np.flatnonzero(row)) for row in targets[:, checked]]
    cleanlab_flags(out, labelled, (find_label_issues, get_label_quality_scores), given, probs[labelled])
    out["label_issue"] = out["cl_issue"].astype(bool)
    # The suggestion keeps the vote on the unchecked labels: only the checked ones had a model.
    suggested = np.zeros((len(items), len(labels)), dtype=np.int8)
    suggested[labelled] = targets
    suggested[:, checked] = probs >= 0.5
    out["cl_suggested_label"] = label_sets_of(suggested, labels)
    out["cl_unchecked_labels"] = "|".join(unchecked)
    out["issue_method"] = f"cv_ovr_logreg_{features}"
    return out


def review_table(votes: pd.DataFrame, labels: list[str], scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The review rows: items cleanlab flags first, then by whole-set agreement, items without a vote
    before voted ones, then by the least agreed label (a split decision on one label is what a
    person should settle), then by cleanlab's label quality (an unscored item counts as 0)."""
    items = votes.loc[votes["split"].isin(REVIEW_SPLITS)].copy()
    if scores is None:
        scores = pd.DataFrame({"id": items["id"], "label_issue": False, "issue_method": "agreement_only"})
    items = items.merge(scores, on="id", how="left")
    agreement_columns = [f"agreement_{x}" for x in labels]
    items["least_label_agreement"] = items[agreement_columns].min(axis=1)
    items["uncertain_labels"] = [
        "|".join(x for x in labels if row[f"agreement_{x}"] < 1.0) for row in items.to_dict("records")
    ]
    items = items.assign(
        _flag=~items["label_issue"].astype(bool),
        _vote=items["label"].notna(),
        _quality=items.get("label_quality", pd.Series(np.nan, index=items.index)).fillna(0.0),
    )
    items = items.sort_values(["_flag", "agreement", "_vote", "least_label_agreement", "_quality", "id"], kind="stable")
    columns = ["id", "split", "text", "label", "vote_status", "agreement", "uncertain_labels"]
    cleanlab_columns = [
        c
        for c in (
            "label_issue",
            "cl_issue",
            "label_quality",
            "cl_suggested_label",
            "cl_unchecked_labels",
            "issue_method",
        )
        if c in items
    ]
    # label_scores prompts leave each label's probability in the votes: the reviewer sees how sure the teacher was.
    probs = [f"prob_{x}" for x in labels if f"prob_{x}" in items]
    shares = [f"share_{x}" for x in labels]
    table = items[columns + cleanlab_columns + shares + probs + ["n_failed"]].reset_index(drop=True)
    table = table.rename(columns={"label": "voted_label"})  # the review file names the teacher's set, as single_label's
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def _voted(row: dict[str, Any]) -> list[str] | None:
    return read_label_set(row["voted_label"]) if isinstance(row["voted_label"], str) else None


def argilla_records(table: pd.DataFrame, labels: list[str], agent: str) -> dict[str, Any]:
    """Argilla 2.x settings and records with the voted set as suggestion, in the dict form of ``rg.Record``.

    The ``labels`` MultiLabelQuestion is required (a dataset without a required question cannot be
    published) and has a ``(none)`` option for the empty set, since Argilla refuses an empty
    multi-label value; a suggestion scores each suggested label by its vote share.
    """
    if NO_LABEL in labels:
        raise SynthDistillError(f"labels: {NO_LABEL!r} is the Argilla review's answer for no label; rename that label")
    records = []
    for row in table.to_dict("records"):
        voted = _voted(row)
        suggestion = {}
        if voted is not None:
            value = voted or [NO_LABEL]
            scores = [float(row[f"share_{x}"]) for x in voted] if voted else [float(row["agreement"])]
            suggestion = {QUESTION: {"value": value, "score": scores, "agent": agent}}
        shares = {f"share_{x}": None if pd.isna(row[f"share_{x}"]) else float(row[f"share_{x}"]) for x in labels}
        records.append(scored_record(row, {"text": row["text"]}, shares, suggestion))
    settings = {
        "fields": [{"name": "text", "type": "text", "required": True}],
        "questions": [
            {"name": QUESTION, "type": "multi_label_selection", "labels": [*labels, NO_LABEL], "required": True}
        ],
        "metadata": [
            {"name": "split", "type": "terms"},
            {"name": "agreement", "type": "float"},
            {"name": "rank", "type": "integer"},
            {"name": "label_issue", "type": "terms"},
            {"name": "label_quality", "type": "float"},
            *({"name": f"share_{x}", "type": "float"} for x in labels),
        ],
    }
    return {"settings": settings, "records": records}


def label_studio_tasks(table: pd.DataFrame, labels: list[str], model_version: str) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``data`` with the text and vote, ``predictions`` with the voted set
    as the choices of a multiple-choice control."""
    tasks = []
    for row in table.to_dict("records"):
        voted = _voted(row)
        shown = ", ".join(voted) if voted else ("(none)" if voted is not None else "(no vote)")
        tasks.append(scored_task(row, {"voted_labels": shown}, "labels", voted, model_version))
    return tasks


def label_studio_config(labels: list[str]) -> str:
    """The labelling config: multiple choices, with the teacher's voted set shown."""
    return choices_config(labels, "Teacher: $voted_labels (agreement $agreement)", "labels", "multiple")


def _label_set_export(votes: pd.DataFrame, job: ReviewJob) -> ReviewExport:
    """The export_review step of task multi_label: cleanlab scores, then the CSV, XLSX, Argilla and
    Label Studio files. ``settings``: the review block (features, embedding_model, cv_folds, seed).
    The scores come from the voted sets alone: the iteration files are not read."""
    scores = score_items(votes, job.labels, **scoring_settings(job.settings))
    table = review_table(votes, job.labels, scores)
    return ReviewExport(
        argilla_records(table, job.labels, job.source),
        label_studio_tasks(table, job.labels, job.source),
        label_studio_config(job.labels),
        table,
        note=f", {int((table['agreement'] < 1).sum())} without full agreement",
    )


export_review = partial(export_review_step, kind_export=_label_set_export, kind_log=log)
