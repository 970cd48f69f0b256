"""Read people's corrections and apply them to a teacher's voted labels, with an audit trail.

Accepted files (one corrections file applies to every teacher × prompt: a reviewed label is the
truth for that item whichever teacher labelled it):

- CSV or XLSX with columns ``id`` and ``label`` and optionally ``reviewer``; cells are text (``n/a``
  is a label, not a missing value), and the ``'`` our review spreadsheets put before formula-like
  values is removed, so ids and labels copied from them come back exactly;
- a Label Studio JSON export (tasks with ``data.id`` and ``annotations[].result[].value.choices``;
  the last annotation that was not cancelled wins, ``completed_by`` is the reviewer);
- an Argilla 2.x records export (JSON list, or ``{"records": [...]}``) with submitted responses to
  the ``label`` question, in the nested form ``responses: {"label": [{value, user_id, status}]}``
  or the flat one ``responses: [{question_name, value, user_id, status}]``.

Every row names its position (``row N``: the 1-based data row, or the task/record index in JSON)
so a bad id or label can be found in the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.errors import SynthDistillError
from synthdistill.labels.review import unescape_cell, write_csv

COLUMNS = ["row", "id", "label", "reviewer"]


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
    return pd.DataFrame(
        {
            "row": range(1, len(frame) + 1),
            "id": frame["id"].map(_cell),
            "label": frame["label"].map(_cell),
            "reviewer": frame["reviewer"].map(_cell) if "reviewer" in frame else None,
        }
    )


def label_studio_reviews(
    tasks: list[dict[str, Any]], answer: Callable[[list[dict[str, Any]]], Any]
) -> list[dict[str, Any]]:
    """``row, id, label, reviewer`` of each reviewed Label Studio task: the last annotation that was not
    cancelled wins, ``answer(its results)`` is the label, ``completed_by`` the reviewer."""
    rows = []
    for number, task in enumerate(tasks, start=1):
        annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        if not annotations:
            continue  # not reviewed yet
        annotation = annotations[-1]
        reviewer = annotation.get("completed_by")
        if isinstance(reviewer, dict):
            reviewer = reviewer.get("email") or reviewer.get("id")
        item_id = task.get("data", {}).get("id")
        rows.append(
            {
                "row": number,
                "id": None if item_id is None else str(item_id),
                "label": answer(annotation.get("result", [])),
                "reviewer": None if reviewer is None else str(reviewer),
            }
        )
    return rows


def _label_studio(tasks: list[dict[str, Any]], question: str, multiple: bool) -> list[dict[str, Any]]:
    def answer(results: list[dict[str, Any]]) -> Any:
        choices = [
            choice
            for result in results
            if result.get("type") == "choices" and result.get("from_name", question) == question
            for choice in result.get("value", {}).get("choices", [])
        ]
        if multiple:
            return choices
        return choices[0] if len(choices) == 1 else (None if not choices else "|".join(choices))

    return label_studio_reviews(tasks, answer)


def _argilla_responses(record: dict[str, Any], question: str) -> list[dict[str, Any]]:
    responses = record.get("responses") or {}
    if isinstance(responses, dict):
        return list(responses.get(question) or [])
    return [r for r in responses if r.get("question_name", question) == question]


def _argilla(records: list[dict[str, Any]], question: str) -> list[dict[str, Any]]:
    rows = []
    for number, record in enumerate(records, start=1):
        submitted = [r for r in _argilla_responses(record, question) if r.get("status", "submitted") == "submitted"]
        if not submitted:
            continue  # not reviewed, or only drafts / discarded
        response = submitted[-1]
        rows.append(
            {
                "row": number,
                "id": None if record.get("id") is None else str(record["id"]),
                "label": response.get("value"),
                "reviewer": None if response.get("user_id") is None else str(response["user_id"]),
            }
        )
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
        if any("annotations" in item or "data" in item for item in data):
            rows = _label_studio(data, question, multiple)
        else:
            rows = _argilla(data, question)
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
    whether it changed, the reviewer, the source file and its row.
    """
    reviewed = votes.copy()
    reviewed["voted_label"] = reviewed["label"]
    reviewed["corrected"] = False
    if "agreement" in reviewed:
        reviewed["voted_agreement"] = reviewed["agreement"]
    audit_columns = ["id", "split", "old_label", "new_label", "changed", "reviewer", "source", "row"]
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
    return reviewed, audit.sort_values("row").reset_index(drop=True)[audit_columns]


def import_review(
    votes_path: str, corrections_path: str | None, labels: list[str], labels_out: str, audit_out: str
) -> pd.DataFrame:
    """Write the reviewed labels the students train on, and the audit trail."""
    votes = pd.read_parquet(votes_path)
    corrections = read_corrections(corrections_path) if corrections_path else None
    reviewed, audit = apply_corrections(votes, corrections, labels, str(corrections_path))
    reviewed.to_parquet(labels_out, index=False)
    # People open the audit in spreadsheets too: ids and labels are escaped like the review CSV.
    write_csv(audit, audit_out)
    return audit
