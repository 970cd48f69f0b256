"""Read people's corrections and apply them to a teacher's voted labels, with an audit trail.

Accepted files (one corrections file applies to every teacher × prompt: a reviewed label is the
truth for that item whichever teacher labelled it):

- CSV or XLSX with columns ``id`` and ``label`` and optionally ``reviewer``; cells are text (``n/a``
  is a label, not a missing value), and the ``'`` our review spreadsheets put before formula-like
  values is removed, so ids and labels copied from them come back exactly;
- a Label Studio JSON export (tasks with ``data.id`` and ``annotations[].result[].value.choices``;
  the annotation marked ``ground_truth``, else the last that was not cancelled, wins, ``completed_by``
  is the reviewer);
- an Argilla 2.x records export (JSON list, or ``{"records": [...]}``) with submitted responses to
  the ``label`` question, in the nested form ``responses: {"label": [{value, user_id, status}]}``
  or the flat one ``responses: [{question_name, value, user_id, status}]``.

Every row names its position (``row N``: the 1-based data row, or the task/record index in JSON)
so a bad id or label, or a task or record that is not what the tool writes, can be found in the file.
When several reviewers answered one item, one answer is applied (see above; in Argilla the last
submitted response) and the audit keeps every answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.labels.review import unescape_cell, write_csv

log = logging.getLogger(__name__)

# answers: every reviewer's answer for the row's item ({reviewer, label} each), kept for the audit.
COLUMNS = ["row", "id", "label", "reviewer", "answers"]


def _cell(value: Any) -> str | None:
    """A corrections cell as text: None when empty, else stripped and with the formula escaping of
    our review CSV/XLSX undone (an id ``'-17`` copied from them is the item ``-17``)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return unescape_cell(text) if text else None


def _table(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("id", "label") if c not in frame.columns]
    if missing:
        raise SynthDistillError(f"{source}: missing column(s) {missing}; a corrections file needs id and label")
    table = pd.DataFrame(
        {
            "row": range(1, len(frame) + 1),
            "id": frame["id"].map(_cell),
            "label": frame["label"].map(_cell),
            "reviewer": frame["reviewer"].map(_cell) if "reviewer" in frame else None,
        }
    )
    return with_answers(table)


def with_answers(corrections: pd.DataFrame) -> pd.DataFrame:
    """The corrections with an ``answers`` column: a row of a table is one reviewer's one answer."""
    if "answers" in corrections:
        return corrections
    answers = [
        [{"reviewer": reviewer, "label": label}]
        for reviewer, label in zip(corrections["reviewer"], corrections["label"], strict=True)
    ]
    return corrections.assign(answers=pd.Series(answers, index=corrections.index, dtype=object))


def is_label_studio(items: list[Any]) -> bool:
    """Whether a JSON export holds Label Studio tasks (else Argilla records)."""
    return any(isinstance(item, dict) and ("annotations" in item or "data" in item) for item in items)


def export_where(source: str, number: int, item: Any) -> str:
    """``file: row N (id X)`` for the N-th task or record of a review export, for messages: our item
    id where it can be read (``data.id`` of a Label Studio task, ``id`` of an Argilla record)."""
    item_id = None
    if isinstance(item, dict) and ("data" in item or "annotations" in item):
        # A Label Studio task: its top-level id is Label Studio's own, not the item's.
        data = item.get("data")
        item_id = data.get("id") if isinstance(data, dict) else None
    elif isinstance(item, dict):
        item_id = item.get("id")
    return f"{source}: row {number}" + ("" if item_id is None else f" (id {item_id})")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _describe(value: Any) -> str:
    """A JSON value's type and a short view of it, for messages."""
    if value is None:
        return "null"
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 60 else shown[:57] + '...'}"


def object_list(value: Any, what: str, where: str) -> list[dict[str, Any]]:
    """``value`` when it is a list of JSON objects; otherwise stop naming the file, row and field,
    so that a broken export (``annotations: null``, a number where a task should be) never reaches
    the reader as a raw TypeError."""
    if not isinstance(value, list):
        raise SynthDistillError(f"{where}: {what} is {_kind(value)}, not a list of objects")
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise SynthDistillError(f"{where}: {what} entry {number} is {_describe(item)}, not an object")
    return value


def label_studio_value(result: dict[str, Any], key: str, where: str) -> list[Any]:
    """The list ``value[key]`` of a Label Studio result (its choices or span labels), checked."""
    value = result.get("value", {})
    if not isinstance(value, dict):
        raise SynthDistillError(f"{where}: a {result.get('type')} result's value is {_kind(value)}, not an object")
    items = value.get(key, [])
    if not isinstance(items, list):
        raise SynthDistillError(f"{where}: a {result.get('type')} result's value.{key} is {_kind(items)}, not a list")
    return items


def _label_studio_reviewer(annotation: dict[str, Any]) -> str | None:
    reviewer = annotation.get("completed_by")
    if isinstance(reviewer, dict):
        reviewer = reviewer.get("email") or reviewer.get("id")
    return None if reviewer is None else str(reviewer)


def _review_row(
    number: int, item_id: Any, reviewers: list[str | None], labels: list[Any], winner: int
) -> dict[str, Any]:
    """A corrections row of an export: the winning answer, and every reviewer's for the audit."""
    answers = [{"reviewer": reviewer, "label": label} for reviewer, label in zip(reviewers, labels, strict=True)]
    item = None if item_id is None else str(item_id)
    return {"row": number, "id": item, "label": labels[winner], "reviewer": reviewers[winner], "answers": answers}


def label_studio_reviews(
    tasks: list[Any], answer: Callable[[list[dict[str, Any]], str], Any], source: str
) -> list[dict[str, Any]]:
    """``row, id, label, reviewer, answers`` of each reviewed Label Studio task.

    ``answer(results, where)`` is the label one annotation gives. When several people annotated a
    task, the annotation marked as ground truth in Label Studio wins (the last one so marked), else
    the last annotation that was not cancelled, in the export's order; ``answers`` keeps every
    reviewer's answer for the audit. A task or annotation that is not what Label Studio writes
    stops naming the file and the task."""
    rows = []
    for number, task in enumerate(tasks, start=1):
        where = export_where(source, number, task)
        if not isinstance(task, dict):
            raise SynthDistillError(f"{where}: the task is {_describe(task)}, not an object")
        data = task.get("data", {})
        if not isinstance(data, dict):
            raise SynthDistillError(f"{where}: the task's data is {_kind(data)}, not an object")
        annotations = [
            a for a in object_list(task.get("annotations", []), "annotations", where) if not a.get("was_cancelled")
        ]
        if not annotations:
            continue  # not reviewed yet
        labels = [answer(object_list(a.get("result", []), "result", where), where) for a in annotations]
        reviewers = [_label_studio_reviewer(a) for a in annotations]
        marked = [i for i, a in enumerate(annotations) if a.get("ground_truth")]
        winner = marked[-1] if marked else len(annotations) - 1
        rows.append(_review_row(number, data.get("id"), reviewers, labels, winner))
    return rows


def _label_studio(tasks: list[Any], question: str, multiple: bool, source: str) -> list[dict[str, Any]]:
    def answer(results: list[dict[str, Any]], where: str) -> Any:
        choices = [
            choice
            for result in results
            if result.get("type") == "choices" and result.get("from_name", question) == question
            for choice in label_studio_value(result, "choices", where)
        ]
        if multiple:
            return choices
        return choices[0] if len(choices) == 1 else (None if not choices else "|".join(choices))

    return label_studio_reviews(tasks, answer, source)


def _argilla_responses(record: dict[str, Any], question: str, where: str) -> list[dict[str, Any]]:
    # Argilla writes no responses as {} (or null); a question's responses are a list of objects.
    responses = record.get("responses") or {}
    if isinstance(responses, dict):
        return object_list(responses.get(question) or [], f"responses.{question}", where)
    return [r for r in object_list(responses, "responses", where) if r.get("question_name", question) == question]


def argilla_reviews(records: list[Any], question: str, source: str) -> list[dict[str, Any]]:
    """``row, id, label, reviewer, answers`` of each Argilla record with a submitted response to
    ``question``: the last submitted response wins (Argilla's export has no order but the list's and
    no ground-truth mark), ``answers`` keeps every submitted one for the audit. A record or response
    that is not what Argilla writes stops naming the file and the record."""
    rows = []
    for number, record in enumerate(records, start=1):
        where = export_where(source, number, record)
        if not isinstance(record, dict):
            raise SynthDistillError(f"{where}: the record is {_describe(record)}, not an object")
        submitted = [
            r for r in _argilla_responses(record, question, where) if r.get("status", "submitted") == "submitted"
        ]
        if not submitted:
            continue  # not reviewed, or only drafts / discarded
        reviewers = [None if r.get("user_id") is None else str(r["user_id"]) for r in submitted]
        labels = [r.get("value") for r in submitted]
        rows.append(_review_row(number, record.get("id"), reviewers, labels, -1))
    return rows


def _xlsx_text(value: Any) -> str:
    # A spreadsheet stores a typed id 17 as the number 17.0; the id is "17".
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx_as_text(path: Path) -> pd.DataFrame:
    """The first sheet with every cell as the text it holds. A formula is read as its text, never
    evaluated: a label ``=0`` saved by a script has no computed value to read, and a computed value is
    not what a reviewer typed as a label (an unknown label then stops naming the row)."""
    from openpyxl import load_workbook

    sheet = load_workbook(path, read_only=True, data_only=False).worksheets[0]
    rows = [[_xlsx_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    if not rows:
        return pd.DataFrame(columns=["id", "label"])
    header, body = rows[0], [row for row in rows[1:] if any(cell != "" for cell in row)]
    return pd.DataFrame(body, columns=header, dtype=str)


def read_corrections(path: str | Path, question: str = "label", multiple: bool = False) -> pd.DataFrame:
    """``row, id, label, reviewer`` from any accepted corrections file. ``multiple`` (task
    multi_label): a Label Studio annotation's label is the list of its choices (none: the empty set)."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise SynthDistillError(f"review.corrections: file {source} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        # keep_default_na=False: labels such as "n/a", "NA" or "null" are labels, not missing values.
        sep = "\t" if suffix == ".tsv" else ","
        return _table(pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False), source)
    if suffix in (".xlsx", ".xlsm"):
        return _table(_read_xlsx_as_text(path), source)
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SynthDistillError(f"{source}: not valid JSON ({exc})") from exc
        if isinstance(data, dict) and "records" in data:
            data = data["records"]
        if not isinstance(data, list):
            raise SynthDistillError(f"{source}: expected a list of Label Studio tasks or Argilla records")
        if is_label_studio(data):
            rows = _label_studio(data, question, multiple, source)
        else:
            rows = argilla_reviews(data, question, source)
        return pd.DataFrame(rows, columns=COLUMNS)
    raise SynthDistillError(f"{source}: unsupported corrections format {suffix!r}; use .csv, .tsv, .xlsx or .json")


def check_corrections(
    corrections: pd.DataFrame,
    known_ids: set[str],
    labels: list[str],
    source: str,
    label_problem: Callable[[Any], str | None] | None = None,
) -> None:
    """Stop on the first row with an unknown or missing id or label, naming the row; nothing is applied.
    ``label_problem`` says what is wrong with a label (None: nothing); by default, that it is not one
    of ``labels`` (task multi_label passes its label-set check)."""
    if label_problem is None:
        label_problem = lambda label: None if label in labels else f"label {label!r} is not one of {labels}"  # noqa: E731
    problems = []
    for row in corrections.to_dict("records"):
        number, item_id, label = row["row"], row["id"], row["label"]
        if item_id is None or (not isinstance(item_id, str) and pd.isna(item_id)) or item_id == "":
            problems.append(f"row {number}: no id")
        elif item_id not in known_ids:
            problems.append(f"row {number}: unknown id {item_id!r} (not in the train or validation split)")
        elif (problem := label_problem(label)) is not None:
            problems.append(f"row {number}: id {item_id!r}: {problem}")
    duplicated = corrections["id"].duplicated(keep=False)
    for item_id in corrections.loc[duplicated, "id"].unique():
        rows = corrections.loc[corrections["id"] == item_id, "row"].tolist()
        distinct = corrections.loc[corrections["id"] == item_id, "label"].nunique()
        if distinct > 1:
            problems.append(f"rows {rows}: id {item_id!r} is corrected to different labels")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... ({len(problems)} problems)" if len(problems) > 10 else "")
        raise SynthDistillError(f"{source}: {shown}. No correction was applied.")


def apply_corrections(
    votes: pd.DataFrame,
    corrections: pd.DataFrame | None,
    labels: list[str],
    source: str = "corrections",
    label_problem: Callable[[Any], str | None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reviewed labels, audit trail).

    The reviewed labels are the votes with ``voted_label`` (the teacher's), ``label`` (the corrected
    one where a person said so) and ``corrected``; test items are never corrected, since the test
    split is scored against expert labels. The audit lists every applied row: id, old and new label,
    whether it changed, the reviewer, the source file and its row, and every reviewer's answer for
    the item (``answers``, JSON) with ``reviewers_disagree`` where they differ.
    """
    reviewed = votes.copy()
    reviewed["voted_label"] = reviewed["label"]
    reviewed["corrected"] = False
    if "agreement" in reviewed:
        reviewed["voted_agreement"] = reviewed["agreement"]
    audit_columns = [
        "id", "split", "old_label", "new_label", "changed", "reviewer", "source", "row", "answers", "reviewers_disagree"
    ]  # fmt: skip
    if corrections is None or corrections.empty:
        return reviewed, pd.DataFrame(columns=audit_columns)
    reviewable = set(reviewed.loc[reviewed["split"].isin(("train", "validation")), "id"].astype(str))
    check_corrections(corrections, reviewable, labels, source, label_problem)
    last = corrections.drop_duplicates("id", keep="last").set_index("id")
    position = reviewed["id"].astype(str)
    hit = position.isin(last.index)
    reviewed.loc[hit, "label"] = position[hit].map(last["label"])
    reviewed.loc[hit, "corrected"] = True
    if "vote_status" in reviewed:
        reviewed.loc[hit, "vote_status"] = "reviewed"
    if "agreement" in reviewed:
        # A label a person checked is certain: students.*.min_agreement must not drop it.
        reviewed.loc[hit, "agreement"] = 1.0
    audit = pd.DataFrame(
        {
            "id": position[hit].to_numpy(),
            "split": reviewed.loc[hit, "split"].to_numpy(),
            "old_label": reviewed.loc[hit, "voted_label"].to_numpy(),
            "new_label": reviewed.loc[hit, "label"].to_numpy(),
        }
    )
    audit["changed"] = audit["old_label"].ne(audit["new_label"])
    audit["reviewer"] = audit["id"].map(last["reviewer"])
    audit["source"] = source
    audit["row"] = audit["id"].map(last["row"]).astype(int)
    answers = answers_by_id(corrections)
    audit["answers"] = [json.dumps(answers[i], ensure_ascii=False, default=str) for i in audit["id"]]
    audit["reviewers_disagree"] = [disagree(answers[i]) for i in audit["id"]]
    _warn_disagreements(audit, source)
    return reviewed, audit.sort_values("row").reset_index(drop=True)[audit_columns]


def answers_by_id(corrections: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Every reviewer's answer for each corrected id, in the file's order (from all its rows)."""
    answers: dict[str, list[dict[str, Any]]] = {}
    for item_id, row_answers in zip(corrections["id"], with_answers(corrections)["answers"], strict=True):
        answers.setdefault(item_id, []).extend(row_answers)
    return answers


def disagree(answers: list[dict[str, Any]]) -> bool:
    """Whether the answers hold more than one label (labels compared as JSON: sets are lists)."""
    return len({json.dumps(a["label"], sort_keys=True, default=str) for a in answers}) > 1


def _warn_disagreements(audit: pd.DataFrame, source: str) -> None:
    # Not an error: a disagreement is resolved by a documented rule, but it should not pass unseen.
    split = audit.loc[audit["reviewers_disagree"]]
    if len(split):
        shown = ", ".join(f"row {r} (id {i})" for r, i in zip(split["row"][:5], split["id"][:5], strict=True))
        log.warning(
            "%s: reviewers gave different answers for %d item(s): %s%s; the ground-truth or last answer "
            "was applied, every answer is in the audit (answers, reviewers_disagree)",
            source,
            len(split),
            shown,
            ", ..." if len(split) > 5 else "",
        )


# A kind's import: (votes, corrections path or None, labels, settings) -> (reviewed labels, audit).
KindImport = Callable[[pd.DataFrame, str | None, list[str], dict[str, Any]], tuple[pd.DataFrame, pd.DataFrame]]


def import_review_step(
    votes_path: str,
    corrections_path: str | None,
    labels: list[str],
    labels_out: str,
    audit_out: str,
    settings: dict[str, Any],
    *,
    kind_import: KindImport,
) -> pd.DataFrame:
    """The import_review step of every kind (tasks.base names its arguments), bound per kind with
    functools.partial: every kind reads the votes and writes the reviewed labels and the audit the same
    way; only ``kind_import`` differs, and its docstring says what the kind's import does."""
    reviewed, audit = kind_import(pd.read_parquet(votes_path), corrections_path, labels, settings)
    reviewed.to_parquet(labels_out, index=False)
    # People open the audit in spreadsheets too: ids and labels are escaped like the review CSV.
    write_csv(audit, audit_out)
    return audit


def _single_label_import(
    votes: pd.DataFrame, corrections_path: str | None, labels: list[str], settings: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The import_review step of task single_label: the reviewed labels the students train on, and the
    audit trail (``settings`` holds nothing single_label needs)."""
    corrections = read_corrections(corrections_path) if corrections_path else None
    return apply_corrections(votes, corrections, labels, str(corrections_path))


import_review = partial(import_review_step, kind_import=_single_label_import)
