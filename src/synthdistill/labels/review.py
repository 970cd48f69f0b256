"""Label-issue detection and the review files people correct.

Two cleanlab signals rank a teacher's voted labels for review:

- ``find_label_issues`` on cross-validated probabilities of a cheap classifier (logistic regression
  on mean-pooled MiniLM sentence embeddings, or on TF-IDF) trained on the voted labels: an item
  whose label the classifier, having never seen it, finds implausible is flagged.
- CROWDLAB (``get_label_quality_multiannotator``): every self-consistency iteration of every
  teacher × prompt is one annotator; the consensus it finds, weighted by each annotator's
  estimated quality and the classifier, is compared with the vote. A disagreement is flagged.

The review file lists flagged items first, then by vote agreement (low first), then by the
cleanlab label quality of the voted label (low first).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.data.model_refs import resolve_model_ref
from synthdistill.data.text_batches import LengthSortedBatches
from synthdistill.labels.review_records import ReviewExport, ReviewJob, choices_config, scored_record, scored_task
from synthdistill.schema import defaults
from synthdistill.tasks.names import REVIEW_SPLITS

log = logging.getLogger(__name__)


def embed_texts(texts: list[str], model_ref: str, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """Mean-pooled, L2-normalised token embeddings (the sentence-transformers recipe for MiniLM)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_ref(model_ref)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, use_safetensors=True).eval()
    batching = LengthSortedBatches(tokenizer, max_length, batch_size)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for index, input_ids, mask in batching.batches(batching.encode(texts)):
            attention = torch.from_numpy(mask)
            hidden = model(input_ids=torch.from_numpy(input_ids), attention_mask=attention).last_hidden_state
            weights = attention.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            out[index] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def text_features(texts: list[str], features: str, embedding_model: str | None):
    """The classifier's input: sentence embeddings or a TF-IDF matrix."""
    if features == "embeddings":
        return embed_texts(texts, embedding_model or defaults("review")["embedding_model"])
    if features == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        try:
            return TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit_transform(texts)
        except ValueError:  # no word of two or more letters in any text (numbers, symbols, one-letter words)
            log.warning("review.features tfidf: no words in the texts; using character n-grams instead")
            return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True).fit_transform(texts)
    raise SynthDistillError(f"review.features: {features!r} is not one of ['embeddings', 'tfidf']")


def _full_probs(model, probs: np.ndarray, n_labels: int) -> np.ndarray:
    """Spread predict_proba columns (only the classes seen in training) over all labels."""
    full = np.zeros((probs.shape[0], n_labels))
    full[:, model.classes_] = probs
    return full


def voted_targets(voted: pd.Series, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the items with a label, those items' label indices)."""
    labelled = voted.notna().to_numpy()
    index = {label: i for i, label in enumerate(labels)}
    return labelled, voted.loc[labelled].map(index).to_numpy()


def item_probs(features, labelled: np.ndarray, targets: np.ndarray, n_labels: int, folds: int, seed: int) -> np.ndarray:
    """Class probabilities for every item: out-of-fold for the labelled ones (each scored by a model
    that never saw its label), from a model fitted on all labelled items for the others.

    Folds are stratified when every class has enough items, plain shuffled K-fold otherwise; a class
    missing from a fold's training part gets probability 0 there.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold

    rows, other = np.flatnonzero(labelled), np.flatnonzero(~labelled)
    labelled_features = features[rows]
    counts = np.bincount(targets, minlength=n_labels)
    present = counts[counts > 0]
    n_splits = max(2, min(folds, len(targets)))
    if present.min() >= n_splits:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    probs = np.zeros((len(labelled), n_labels))
    for train_index, test_index in splitter.split(np.zeros(len(targets)), targets):
        fold_targets = targets[train_index]
        if len(np.unique(fold_targets)) < 2:
            probs[rows[test_index], fold_targets[0]] = 1.0
            continue
        model = LogisticRegression(max_iter=2000, C=4.0).fit(labelled_features[train_index], fold_targets)
        probs[rows[test_index]] = _full_probs(model, model.predict_proba(labelled_features[test_index]), n_labels)
    if len(other):
        model = LogisticRegression(max_iter=2000, C=4.0).fit(labelled_features, targets)
        probs[other] = _full_probs(model, model.predict_proba(features[other]), n_labels)
    # cleanlab wants strictly positive rows that sum to 1.
    return (probs + 1e-4) / (probs + 1e-4).sum(axis=1, keepdims=True)


def annotator_labels(iterations: dict[str, pd.DataFrame], ids: list[str]) -> pd.DataFrame:
    """One column per annotator (``teacher/prompt/iterN``), one row per id, the label or NaN."""
    columns = {name: frame.set_index("id")["label"].reindex(ids) for name, frame in iterations.items()}
    return pd.DataFrame(columns, index=ids)


def scoring_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The keywords score_items takes from the review block (single_label's and multi_label's alike)."""
    return {key: settings[key] for key in ("features", "embedding_model", "cv_folds", "seed")}


def unscored_items(votes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reviewable items (train and validation) and their score columns before any model ran."""
    items = votes.loc[votes["split"].isin(REVIEW_SPLITS)].reset_index(drop=True)
    out = items[["id"]].copy()
    out["label_quality"] = np.nan
    out["cl_issue"] = False
    out["cl_suggested_label"] = None
    return items, out


def cleanlab_flags(
    out: pd.DataFrame, labelled: np.ndarray, cleanlab: tuple[Callable, Callable], given: Any, probs: np.ndarray
) -> None:
    """Fill ``cl_issue`` and ``label_quality`` of the labelled rows with cleanlab's
    (find_label_issues, get_label_quality_scores) pair: the multiclass or the multi-label one."""
    find_label_issues, get_label_quality_scores = cleanlab
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        issues = find_label_issues(given, probs, filter_by="prune_by_noise_rate")
        quality = get_label_quality_scores(given, probs, method="self_confidence")
    out.loc[labelled, "label_quality"] = quality
    out.loc[labelled, "cl_issue"] = issues


def score_items(
    votes: pd.DataFrame,
    annotators: pd.DataFrame,
    labels: list[str],
    *,
    features: str,
    embedding_model: str | None,
    cv_folds: int,
    seed: int,
) -> pd.DataFrame:
    """cleanlab scores for the reviewable items (train and validation splits) of one vote file.

    Returns one row per item: ``label_quality`` (self-confidence of the voted label under the
    cross-validated classifier), ``cl_issue`` (find_label_issues), ``cl_suggested_label``,
    ``consensus_label`` / ``consensus_quality`` (CROWDLAB), ``label_issue`` (either flags) and
    ``issue_method`` (what could run: with fewer than two distinct voted labels there is no
    classifier to fit and only agreement orders the file).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    items, out = unscored_items(votes)
    out["consensus_label"] = None
    out["consensus_quality"] = np.nan
    labelled, targets = voted_targets(items["label"], labels)
    if len(np.unique(targets)) < 2 or labelled.sum() < 4:
        log.warning("fewer than two distinct voted labels or four labelled items: no label-issue model")
        out["issue_method"] = "agreement_only"
        out["label_issue"] = False
        return out
    matrix = text_features(items["text"].tolist(), features, embedding_model)
    all_probs = item_probs(matrix, labelled, targets, len(labels), cv_folds, seed)
    cleanlab_flags(out, labelled, (find_label_issues, get_label_quality_scores), targets, all_probs[labelled])
    out["cl_suggested_label"] = [labels[i] for i in all_probs.argmax(axis=1)]
    out["issue_method"] = f"cv_logreg_{features}"
    consensus = crowdlab(annotators.reindex(items["id"]), all_probs, labels)
    if consensus is not None:
        out["consensus_label"] = consensus["consensus_label"].to_numpy()
        out["consensus_quality"] = consensus["consensus_quality"].to_numpy()
        out["issue_method"] += "+crowdlab"
    disagrees = out["consensus_label"].notna() & (out["consensus_label"] != items["label"])
    out["label_issue"] = out["cl_issue"].astype(bool) | disagrees.to_numpy()
    return out


def crowdlab(annotators: pd.DataFrame, probs: np.ndarray, labels: list[str]) -> pd.DataFrame | None:
    """CROWDLAB consensus label and its quality per row (None where it cannot run).

    Rows nobody labelled get no consensus; annotators who labelled nothing are dropped.
    """
    from cleanlab.multiannotator import get_label_quality_multiannotator

    index = {label: i for i, label in enumerate(labels)}
    coded = annotators.apply(lambda column: column.map(index)).astype(float)
    coded = coded.loc[:, coded.notna().any()]
    answered = coded.notna().any(axis=1).to_numpy()
    out = pd.DataFrame({"consensus_label": [None] * len(coded), "consensus_quality": np.nan})
    if coded.shape[1] < 2 or answered.sum() < 2:
        log.info("CROWDLAB needs at least two annotators and two answered items; skipped")
        return None
    sub = coded.loc[answered].reset_index(drop=True)
    # cleanlab wants every class among the annotations; fall back when a class never appears.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = get_label_quality_multiannotator(sub, probs[answered], verbose=False)
    except (ValueError, AssertionError) as exc:
        log.warning("CROWDLAB skipped: %s", exc)
        return None
    quality = result["label_quality"]
    out.loc[answered, "consensus_label"] = [labels[int(i)] for i in quality["consensus_label"]]
    out.loc[answered, "consensus_quality"] = quality["consensus_quality_score"].to_numpy()
    return out


def order_for_review(frame: pd.DataFrame) -> pd.DataFrame:
    """Flagged items first, then low agreement, then low label quality; unscored items count as 0."""
    keys = frame.assign(
        _flag=~frame["label_issue"].astype(bool),
        _quality=frame["label_quality"].fillna(0.0),
    )
    ordered = keys.sort_values(["_flag", "agreement", "_quality", "id"], kind="stable")
    return ordered.drop(columns=["_flag", "_quality"]).reset_index(drop=True)


def reasons_by_id(iterations: dict[str, pd.DataFrame]) -> pd.Series:
    """The CoT reasons of every iteration, joined with the label each one chose."""
    parts = []
    for frame in iterations.values():
        if "reason" not in frame:
            continue
        have = frame.loc[frame["reason"].notna(), ["id", "label", "reason"]]
        parts.append(have.assign(line=have["label"].fillna("(no label)") + ": " + have["reason"].astype(str)))
    if not parts:
        return pd.Series(dtype=object)  # label prompts give no reasons
    joined = pd.concat(parts).groupby("id")["line"].agg(lambda lines: "\n".join(lines))
    return joined


def review_table(
    votes: pd.DataFrame, scores: pd.DataFrame, own_iterations: dict[str, pd.DataFrame], labels: list[str]
) -> pd.DataFrame:
    """The review file's rows, in review order."""
    items = votes.loc[votes["split"].isin(REVIEW_SPLITS)]
    columns = ["id", "split", "text", "label", "vote_status", "agreement", *[f"votes_{x}" for x in labels]]
    table = items[columns + ["n_failed"]].rename(columns={"label": "voted_label"})
    table = table.merge(scores, on="id", how="left")
    table["reasons"] = table["id"].map(reasons_by_id(own_iterations)).astype(object).fillna("")
    table = order_for_review(table)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def argilla_records(table: pd.DataFrame, labels: list[str], agent: str) -> dict[str, Any]:
    """Argilla 2.x: dataset settings (text and reasons fields, a ``label`` LabelQuestion) and records
    with the teacher's vote as a suggestion, in the dict form of ``rg.Record``."""
    records = []
    # Dict rows, not itertuples: a label such as "no opinion" or "R&D" is no attribute name.
    for row in table.to_dict("records"):
        voted = row["voted_label"]
        suggestion = {"label": {"value": voted, "score": float(row["agreement"]), "agent": agent}}
        fields = {"text": row["text"], "reasons": row["reasons"] or "(no reasons)"}
        votes = {f"votes_{x}": int(row[f"votes_{x}"]) for x in labels}
        records.append(scored_record(row, fields, votes, suggestion if isinstance(voted, str) else {}))
    settings = {
        "fields": [{"name": "text", "type": "text"}, {"name": "reasons", "type": "text", "use_markdown": True}],
        "questions": [{"name": "label", "type": "label_selection", "labels": labels, "required": True}],
        "metadata": [{"name": "split", "type": "terms"}, {"name": "agreement", "type": "float"}],
    }
    return {"settings": settings, "records": records}


def label_studio_tasks(table: pd.DataFrame, labels: list[str], model_version: str) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``data`` with the text and vote, ``predictions`` with the teacher's label."""
    tasks = []
    for row in table.to_dict("records"):
        voted = row["voted_label"]
        shown = {"reasons": row["reasons"], "voted_label": voted if isinstance(voted, str) else ""}
        votes = {f"votes_{x}": int(row[f"votes_{x}"]) for x in labels}
        choices = [voted] if isinstance(voted, str) else None
        tasks.append(scored_task(row, shown, "label", choices, model_version, votes))
    return tasks


def label_studio_config(labels: list[str]) -> str:
    """The labelling config: one choice, with the teacher's vote and reasons shown."""
    return choices_config(labels, "Teacher: $voted_label (agreement $agreement)", "label", "single", reasons=True)


# OWASP CSV injection: a cell starting with one of these is run as a formula by spreadsheet apps.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    """Prefix a formula-like string with ``'`` so spreadsheets show it as text (OWASP).

    A string that already starts with ``'`` gets one more, so ``unescape_cell`` can invert the
    escaping exactly whatever the original value was.
    """
    if isinstance(value, str) and value.startswith((*FORMULA_TRIGGERS, "'")):
        return "'" + value
    return value


def unescape_cell(value: Any) -> Any:
    """Undo ``escape_cell``: drop the one quote it added, and nothing else."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith((*FORMULA_TRIGGERS, "'")):
        return value[1:]
    return value


def spreadsheet_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every string cell escaped against formula injection."""
    return table.map(escape_cell)


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """A CSV for spreadsheet apps: string cells escaped, and RFC 4180 line ends (CRLF), with which
    Python's csv writer quotes a lone carriage return inside a text instead of splitting the row."""
    spreadsheet_frame(table).to_csv(path, index=False, lineterminator="\r\n")


def write_xlsx(table: pd.DataFrame, path: str, sheet: str = "review") -> None:
    """An XLSX of the table with string cells only as text: formula-like strings escaped, and the
    control characters XLSX cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE) removed. A cell that
    still cannot be written fails naming its row's id."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value: Any) -> Any:
        if isinstance(value, str):
            return escape_cell(ILLEGAL_CHARACTERS_RE.sub("", value))
        missing = value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
        return None if missing else value

    book = Workbook()
    worksheet = book.active
    worksheet.title = sheet
    worksheet.append([cell(str(c)) for c in table.columns])
    for row in table.to_dict("records"):
        try:
            worksheet.append([cell(v) for v in row.values()])
        except (ValueError, TypeError) as exc:
            raise SynthDistillError(f"{path}: cannot write the row of id {row.get('id')!r}: {exc}") from exc
    book.save(path)


def write_review_files(table: pd.DataFrame, labels: list[str], source: str, outputs: dict[str, str]) -> None:
    """CSV, XLSX, Argilla records JSON, Label Studio tasks JSON and labelling config."""
    write_review_export(review_export(table, labels, source), outputs)


def review_export(table: pd.DataFrame, labels: list[str], source: str) -> ReviewExport:
    """The review files of task single_label, from its review table."""
    return ReviewExport(
        argilla_records(table, labels, source),
        label_studio_tasks(table, labels, source),
        label_studio_config(labels),
        table,
    )


def write_review_export(export: ReviewExport, outputs: dict[str, str]) -> None:
    """Write a kind's review files. The CSV and XLSX escape formula-like strings (they are opened in
    spreadsheet apps); the JSON files keep every value exact (tools parse them, nobody evaluates them).
    """
    if export.table is not None:
        write_csv(export.table, outputs["csv"])
        write_xlsx(export.table, outputs["xlsx"])
    for name, content in (("argilla", export.argilla), ("label_studio", export.label_studio)):
        Path(outputs[name]).write_text(json.dumps(content, indent=1, ensure_ascii=export.ensure_ascii) + "\n")
    Path(outputs["label_studio_config"]).write_text(export.label_studio_config)


# A kind's export: (votes, the step's other arguments) -> its review files.
KindExport = Callable[[pd.DataFrame, ReviewJob], ReviewExport]


def export_review_step(
    votes_path: str,
    iteration_paths: dict[str, str],
    annotator_paths: dict[str, str],
    labels: list[str],
    settings: dict[str, Any],
    teacher: str,
    prompt: str,
    outputs: dict[str, str],
    *,
    kind_export: KindExport,
    kind_log: logging.Logger,
) -> pd.DataFrame | None:
    """The export_review step of every kind (tasks.base names its arguments), bound per kind with
    functools.partial: every kind reads its votes and writes its review files the same way; only
    ``kind_export`` differs, and its docstring says what the kind's export does. A kind with a review
    table logs its counts to ``kind_log`` (the kind module's logger, as the run's logs name it)."""
    job = ReviewJob(iteration_paths, annotator_paths, labels, settings, teacher, prompt)
    export = kind_export(pd.read_parquet(votes_path), job)
    write_review_export(export, outputs)
    if export.table is not None:
        table = export.table
        flagged = int(table["label_issue"].sum())
        method = table["issue_method"].iloc[0] if len(table) else "-"
        kind_log.info(
            "%s: %d items for review, %d flagged (%s)%s", job.source, len(table), flagged, method, export.note
        )
    return export.table


def read_iterations(paths: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Annotator name (``teacher/prompt/iterN``, given by the rule) -> its iteration frame."""
    return {name: pd.read_parquet(path) for name, path in paths.items()}


def _single_label_export(votes: pd.DataFrame, job: ReviewJob) -> ReviewExport:
    """The export_review step of task single_label: score one teacher × prompt's votes (its own
    iterations, and every annotator's for CROWDLAB) and write its review files."""
    annotators = read_iterations(job.annotator_paths)
    ids = votes.loc[votes["split"].isin(REVIEW_SPLITS), "id"].tolist()
    scores = score_items(votes, annotator_labels(annotators, ids), job.labels, **scoring_settings(job.settings))
    table = review_table(votes, scores, read_iterations(job.iteration_paths), job.labels)
    return review_export(table, job.labels, job.source)


export_review = partial(export_review_step, kind_export=_single_label_export, kind_log=log)
