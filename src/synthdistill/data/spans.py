"""Expert spans of a ``spans`` dataset: a column of ``{start, end, label}`` lists (Parquet, JSONL, or
JSON text in a CSV cell), or the ``tokens`` + BIO ``tags`` form. Either way they end as the canonical
JSON of synthdistill.tasks.spans, checked against the text they point into."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.tasks.spans import Span, from_json, overlapping, to_json


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _as_list(value: Any, where: str) -> list[Any]:
    """A cell's spans as a Python list: JSON text, a list, or the array Parquet reads a list into."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SynthDistillError(
                f"{where}: the spans are not valid JSON ({exc.msg} at character {exc.pos})"
            ) from exc
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list):
        raise SynthDistillError(f"{where}: spans must be a list of {{start, end, label}}, not a {type(value).__name__}")
    return value


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def row_spans(value: Any, text: str, labels: list[str], where: str) -> list[Span]:
    """One row's expert spans, checked: integer offsets inside the text, a known label, no overlap."""
    spans = []
    for number, item in enumerate(_as_list(value, where), start=1):
        if not isinstance(item, dict) or not {"start", "end", "label"} <= set(item):
            raise SynthDistillError(f"{where}: span {number} must be an object with start, end and label, not {item!r}")
        start, end, label = _integer(item["start"]), _integer(item["end"]), item["label"]
        if start is None or end is None:
            raise SynthDistillError(
                f"{where}: span {number} has non-integer offsets {item['start']!r}, {item['end']!r}"
            )
        if not 0 <= start < end:
            raise SynthDistillError(f"{where}: span {number} [{start}, {end}) is empty or negative (end is exclusive)")
        if end > len(text):
            raise SynthDistillError(
                f"{where}: span {number} [{start}, {end}) ends past the text ({len(text)} characters; "
                "dataset.max_chars may have cut it)"
            )
        if label not in labels:
            raise SynthDistillError(
                f"{where}: span {number} has label {label!r}, not one of the configured labels {labels}"
            )
        spans.append(Span(start, end, label))
    clash = overlapping(spans)
    if clash:
        first, second = clash
        raise SynthDistillError(
            f"{where}: spans {text[first.start : first.end]!r} [{first.start}, {first.end}) {first.label} and "
            f"{text[second.start : second.end]!r} [{second.start}, {second.end}) {second.label} overlap; "
            "expert spans must not share characters"
        )
    return spans


def expert_spans(frame: pd.DataFrame, labels: list[str], settings: dict[str, Any], source: str) -> pd.Series:
    """The canonical JSON of every row's expert spans (None where the row has none); bad spans stop
    naming the row."""
    answers: list[str | None] = []
    for row, text, value in zip(frame["row"], frame["text"], frame["expert_label"], strict=True):
        if _missing(value) or pd.isna(text):
            answers.append(None)
            continue
        answers.append(to_json(row_spans(value, str(text), labels, f"{source}: row {row}")))
    return pd.Series(answers, index=frame.index, dtype=object)


def bio_spans(tokens: list[str], tags: list[str], where: str) -> list[Span]:
    """Character spans of BIO tags over the text ``" ".join(tokens)``. An ``I-`` tag after ``O`` or after
    another type starts an entity, as conlleval reads it."""
    if len(tokens) != len(tags):
        raise SynthDistillError(f"{where}: {len(tokens)} tokens but {len(tags)} tags")
    tagged, position = [], 0
    for token, tag in zip(tokens, tags, strict=True):
        tag = str(tag)
        prefix, _, label = tag.partition("-")
        if tag != "O" and (prefix not in ("B", "I") or not label):
            raise SynthDistillError(f"{where}: tag {tag!r} of token {token!r} is not O, B-TYPE or I-TYPE")
        tagged.append((position, position + len(token), tag))
        position += len(token) + 1
    return tagged_spans(tagged)


def tagged_spans(tagged: Iterable[tuple[int, int, str]]) -> list[Span]:
    """Character spans of (start, end, BIO tag) pieces in text order: a ``B-`` piece starts a span and
    the ``I-`` pieces of its type that follow extend it; an ``I-`` after ``O`` or after another type
    starts one, as conlleval reads it (the expert's word tags and a student's subword tags alike)."""
    spans: list[Span] = []
    current: list[Any] | None = None  # [start, end, label] of the open entity
    for start, end, tag in tagged:
        if tag == "O":
            current = None
            continue
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current[2] == label:
            current[1] = end
            spans[-1] = Span(current[0], end, label)
            continue
        current = [start, end, label]
        spans.append(Span(start, end, label))
    return spans


def bio_columns(
    frame: pd.DataFrame, settings: dict[str, Any], source: str
) -> tuple[list[str], list[str | None] | None]:
    """The texts (tokens joined by single spaces) and, with tags_column, the expert spans as JSON."""
    tokens_column, tags_column = settings["tokens_column"], settings.get("tags_column")
    if settings.get("label_column") and tags_column:
        raise SynthDistillError(
            "dataset.label_column and dataset.tags_column both give expert spans; set only one of them"
        )
    for key, column in (("tokens_column", tokens_column), ("tags_column", tags_column)):
        if column is not None and column not in frame.columns:
            raise SynthDistillError(
                f"{source}: column {column!r} (config key dataset.{key}) not found; columns are {list(frame.columns)}"
            )
    texts: list[str] = []
    answers: list[str | None] = []
    for index in range(len(frame)):
        where = f"{source}: row {index + 1}"
        tokens = _as_list(frame[tokens_column].iloc[index], where)
        if not all(isinstance(token, str) for token in tokens):
            raise SynthDistillError(f"{where}: column {tokens_column!r} must hold lists of strings")
        texts.append(" ".join(tokens))
        if tags_column:
            tags = frame[tags_column].iloc[index]
            answers.append(None if _missing(tags) else to_json(bio_spans(tokens, _as_list(tags, where), where)))
    return texts, answers if tags_column else None


def spans_per_label(frame: pd.DataFrame, splits: list[str]) -> dict[str, dict[str, int]]:
    """Expert spans per split and type (summary.json): a JSON answer per text is no label to count."""
    out: dict[str, dict[str, int]] = {}
    for split in splits:
        labels = [s.label for answer in frame.loc[frame["split"] == split, "expert_label"] for s in from_json(answer)]
        out[split] = {label: labels.count(label) for label in sorted(set(labels))}
    return out
