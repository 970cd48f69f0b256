"""Label sets (task multi_label): one text's answer is any subset of the configured labels.

Every artifact stores a set as its canonical JSON (``synthdistill.tasks``): a JSON list in the order
of config ``labels``, so that two equal sets are the same string (``["billing", "bug"]``; ``[]`` is
the empty set). Data, parsing, vote, students and evaluation all write and read it through here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np


def label_set_json(chosen: Iterable[str], labels: list[str]) -> str:
    """The canonical JSON of a set of labels (each must be one of ``labels``)."""
    members = set(chosen)
    return json.dumps([label for label in labels if label in members], ensure_ascii=False)


def read_label_set(value: str) -> list[str]:
    """The labels of a canonical JSON label set."""
    return list(json.loads(value))


def indicator_matrix(values: Iterable[str], labels: list[str]) -> np.ndarray:
    """One 0/1 row per label set (canonical JSON), one column per label in config order."""
    index = {label: i for i, label in enumerate(labels)}
    rows = list(values)
    matrix = np.zeros((len(rows), len(labels)), dtype=np.int8)
    for row, value in enumerate(rows):
        for label in read_label_set(value):
            matrix[row, index[label]] = 1
    return matrix


def label_sets_of(matrix: np.ndarray, labels: list[str]) -> list[str]:
    """The canonical JSON of each 0/1 row of ``matrix`` (the inverse of indicator_matrix)."""
    return [label_set_json([labels[i] for i in np.flatnonzero(row)], labels) for row in np.asarray(matrix)]
