"""People's corrections to multi_label votes, applied with the single-label readers, checks and audit
(labels.corrections): only what a label cell means differs.

A corrected label is a whole set: in CSV/XLSX the labels joined by ``dataset.label_delimiter``
(``billing|bug``) or a JSON list (``["billing", "bug"]``, as the review files show the voted set); an
empty cell is the empty set ("none of the labels"). From Label Studio, the multiple choices of the
last annotation (none chosen: the empty set); from Argilla, the submitted ``multi_label_selection``
value of the ``labels`` question (its ``(none)`` option is the empty set: Argilla takes no empty
answer to a multi-label question). An unknown label stops the import naming the row, and nothing is
applied.

The reviewed file keeps the vote's columns; ``label`` is the set students learn (the correction, or
the voted set), ``voted_label`` the teacher's, ``corrected`` marks what a person set.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.labels.corrections import apply_corrections, import_review_step, read_corrections, with_answers
from synthdistill.tasks.multi_label import label_set_json

# The question and control name of our multi_label review exports (labels.multi_label_review).
QUESTION = "labels"
# The option of the Argilla question that answers "none of the labels": Argilla refuses an empty
# multi_label_selection value, in a response as in a suggestion.
NO_LABEL = "(none)"


def cell_members(value: Any, delimiter: str) -> list[str]:
    """The labels a corrections cell names; ValueError says why a cell names none."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [part.strip() for part in text.split(delimiter)] if text else []
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"label cell {text!r} is not a valid JSON list ({exc.msg})") from exc
    if not isinstance(value, list | tuple) or not all(isinstance(member, str) for member in value):
        raise ValueError(f"label cell {value!r} is not a list of label names")
    members = [member.strip() for member in value]
    if NO_LABEL in members:
        if len(members) > 1:
            raise ValueError(f"label cell {value!r} chooses {NO_LABEL!r} (no label) together with labels")
        return []
    return members


def label_set_problem(value: Any, labels: list[str], delimiter: str) -> str | None:
    """What is wrong with a corrected set (None: nothing)."""
    try:
        members = cell_members(value, delimiter)
    except ValueError as exc:
        return str(exc)
    unknown = [member for member in members if member not in labels]
    if unknown:
        blank = " (an empty label between two delimiters)" if "" in unknown else ""
        return f"label {unknown[0]!r}{blank} is not one of {labels}"
    return None


def _canonical(value: Any, labels: list[str], delimiter: str) -> Any:
    """The canonical JSON of a valid set, so that equal sets written differently are one correction;
    a bad cell stays as written (as text) for the check to name."""
    if label_set_problem(value, labels, delimiter) is None:
        return label_set_json(cell_members(value, delimiter), labels)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def apply_label_set_corrections(
    votes: pd.DataFrame, corrections: pd.DataFrame | None, labels: list[str], delimiter: str, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reviewed sets, audit trail), as labels.corrections.apply_corrections on the voted sets."""
    if corrections is not None:
        corrections = with_answers(corrections)
        every = [
            [{**a, "label": _canonical(a["label"], labels, delimiter)} for a in row] for row in corrections["answers"]
        ]
        corrections = corrections.assign(
            label=[_canonical(v, labels, delimiter) for v in corrections["label"]],
            answers=pd.Series(every, index=corrections.index, dtype=object),
        )
    return apply_corrections(
        votes, corrections, labels, source, label_problem=lambda value: label_set_problem(value, labels, delimiter)
    )


def _label_set_import(
    votes: pd.DataFrame, corrections_path: str | None, labels: list[str], settings: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The import_review step of task multi_label: the reviewed sets students train on, and the audit.
    ``settings``: label_delimiter, how a reviewer's answer separates labels."""
    corrections = read_corrections(corrections_path, QUESTION, multiple=True) if corrections_path else None
    return apply_label_set_corrections(votes, corrections, labels, settings["label_delimiter"], str(corrections_path))


import_review = partial(import_review_step, kind_import=_label_set_import)
