"""Entity-level scores for task spans: a predicted span counts only when its start, end and label
all equal an expert span's (strict boundaries, as seqeval's default), micro over all types and per
type, with percentile bootstrap intervals over texts (metrics.stats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.metrics.stats import LEVEL, RESAMPLES, _interval, bootstrap_draw
from synthdistill.tasks.spans import Span, from_json

TP, FP, FN = 0, 1, 2


def counts(expert: list[list[Span]], predicted: list[list[Span]], labels: list[str]) -> np.ndarray:
    """(texts, labels, 3) true positives, false positives and false negatives. A text without an
    answer (every teacher iteration failed) predicts no span: its expert spans are all missed."""
    out = np.zeros((len(expert), len(labels), 3), dtype=np.int64)
    index = {label: i for i, label in enumerate(labels)}
    for row, (gold, guess) in enumerate(zip(expert, predicted, strict=True)):
        gold_set, guess_set = set(gold), set(guess)
        for span in gold_set & guess_set:
            out[row, index[span.label], TP] += 1
        for span in guess_set - gold_set:
            out[row, index[span.label], FP] += 1
        for span in gold_set - guess_set:
            out[row, index[span.label], FN] += 1
    return out


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 (0 where undefined, as seqeval's zero_division=0)."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    return precision, recall, f1


def entity_scores(expert: list[list[Span]], predicted: list[list[Span]], labels: list[str]) -> dict[str, Any]:
    """Micro precision/recall/F1 over every span, and the same per label with its support."""
    table = counts(expert, predicted, labels).sum(axis=0)
    precision, recall, f1 = _prf(*table.sum(axis=0))
    per_p, per_r, per_f = _prf(table[:, TP], table[:, FP], table[:, FN])
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "expert_spans": int(table[:, [TP, FN]].sum()),
        "predicted_spans": int(table[:, [TP, FP]].sum()),
        "per_label": {
            label: {
                "precision": float(per_p[i]),
                "recall": float(per_r[i]),
                "f1": float(per_f[i]),
                "support": int(table[i, TP] + table[i, FN]),
            }
            for i, label in enumerate(labels)
        },
    }


def bootstrap_entity_intervals(
    expert: list[list[Span]],
    predicted: list[list[Span]],
    labels: list[str],
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of micro P/R/F1 and of each label's F1, resampling texts."""
    per_text = counts(expert, predicted, labels)
    index, method = bootstrap_draw(len(per_text), resamples, level, seed, "texts")
    sums = per_text[index].sum(axis=1)  # (resamples, labels, 3)
    precision, recall, f1 = _prf(*(sums.sum(axis=1)[:, k] for k in (TP, FP, FN)))
    _, _, label_f1 = _prf(sums[:, :, TP], sums[:, :, FP], sums[:, :, FN])
    return {
        **method,
        "precision": _interval(precision, level),
        "recall": _interval(recall, level),
        "f1": _interval(f1, level),
        "per_label_f1": {label: _interval(label_f1[:, i], level) for i, label in enumerate(labels)},
    }


def test_span_metrics(expert: pd.Series, predicted: pd.Series, ids: pd.Series, labels: list[str]) -> dict[str, Any]:
    """Scores, intervals, coverage (texts with an answer) and the test ids of one model on the test split."""
    gold = [from_json(a) for a in expert]
    guess = [from_json(a) for a in predicted]
    return {
        **entity_scores(gold, guess, labels),
        "items": len(gold),
        "answered": int(predicted.map(lambda a: isinstance(a, str)).sum()),
        "intervals": bootstrap_entity_intervals(gold, guess, labels),
        "test_ids": sorted(ids),
    }


def write_json(metrics: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2) + "\n")
