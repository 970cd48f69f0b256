"""Expert label sets of a multi_label dataset, read into their canonical JSON (synthdistill.tasks.multi_label).

A label cell holds a list (Parquet, JSONL), a delimited string (CSV, TSV: ``billing|bug`` with
``dataset.label_delimiter``) or the text of a JSON list (``["billing", "bug"]``, in any format). An
empty list, or an empty CSV cell, is the empty set: a valid answer ("none of the labels"). A null in
Parquet or JSONL is a row without an expert answer (dropped like a missing label). A label outside
the configured set, or a cell that is none of these, stops the run naming the row.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.tasks.multi_label import label_set_json, read_label_set

# Formats whose cells are text: there an empty cell is the empty set, not a missing answer.
_TEXT_FORMATS = (".csv", ".tsv")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _members(value: Any, delimiter: str, empty_cell_is_empty_set: bool, where: str) -> list[str] | None:
    """The labels a cell names (None: no expert answer)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if _is_missing(value):
        return [] if empty_cell_is_empty_set else None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise SynthDistillError(f"{where}: label cell {value!r} is not a valid JSON list ({exc.msg})") from exc
        else:
            return [part.strip() for part in stripped.split(delimiter)] if stripped else []
    if not isinstance(value, list | tuple):
        raise SynthDistillError(
            f"{where}: label cell {value!r} is not a list of labels (Parquet/JSONL: a list; CSV: labels separated "
            f"by {delimiter!r})"
        )
    members = []
    for member in value:
        if not isinstance(member, str):
            raise SynthDistillError(f"{where}: label cell {value!r} holds {member!r}, which is not a label name")
        members.append(member.strip())
    return members


def expert_label_sets(frame: pd.DataFrame, labels: list[str], settings: dict[str, Any], source: str) -> pd.Series:
    """The canonical JSON label set of each row of ``frame["expert_label"]`` (None: no expert answer),
    members split at ``settings["label_delimiter"]`` where stored as text.

    Labels are matched exactly (after trimming spaces); a repeated label counts once.
    """
    delimiter = settings["label_delimiter"]
    empty_cell_is_empty_set = source.lower().endswith(_TEXT_FORMATS)
    known = set(labels)
    out: list[str | None] = []
    for row, value in zip(frame["row"], frame["expert_label"], strict=True):
        where = f"{source}: row {row}"
        members = _members(value, delimiter, empty_cell_is_empty_set, where)
        if members is None:
            out.append(None)
            continue
        unknown = [m for m in members if m not in known]
        if unknown:
            blank = " (an empty label between two delimiters)" if "" in unknown else ""
            raise SynthDistillError(
                f"{where}: label {unknown[0]!r}{blank} is not in the configured labels {labels}; fix the data, "
                "the config key labels or dataset.label_delimiter"
            )
        out.append(label_set_json(members, labels))
    return pd.Series(out, index=frame.index, dtype=object)


def label_sets_per_label(frame: pd.DataFrame, splits: list[str]) -> dict[str, dict[str, int]]:
    """Texts carrying each expert label per split (summary.json), and how many carry none: a set is
    no label to cross-tabulate."""
    out: dict[str, dict[str, int]] = {}
    for split in splits:
        sets = [read_label_set(answer) for answer in frame.loc[frame["split"] == split, "expert_label"].dropna()]
        members = [label for chosen in sets for label in chosen]
        out[split] = {label: members.count(label) for label in sorted(set(members))}
        out[split]["(no label)"] = sum(1 for chosen in sets if not chosen)
    return out
