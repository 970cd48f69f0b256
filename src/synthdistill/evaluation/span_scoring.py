"""Evaluate a spans teacher's votes and a spans student on the same frozen expert test split."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.metrics.spans import test_span_metrics, write_json
from synthdistill.students.token_classification import SpanPredictor
from synthdistill.tasks.spans import to_json


def _expert_test(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    test = frame.loc[frame["split"] == "test"] if "split" in frame else frame
    test = test.loc[test["expert_label"].notna()]
    if test.empty:
        raise SynthDistillError(f"{where}: no test item has expert spans to score against")
    return test


def evaluate_teacher(votes_path: str, labels: list[str], output_path: str) -> dict[str, Any]:
    test = _expert_test(pd.read_parquet(votes_path), votes_path)
    metrics = test_span_metrics(test["expert_label"], test["label"], test["id"], labels)
    write_json(metrics, output_path)
    return metrics


def evaluate_student(
    model_dir: str, test_path: str, labels: list[str], max_length: int, metrics_path: str, predictions_path: str
) -> dict[str, Any]:
    test = _expert_test(pd.read_parquet(test_path), test_path)
    spans = SpanPredictor.load(model_dir, max_length).predict(test["text"].tolist())
    predictions = test[["id", "text", "expert_label"]].assign(label=[to_json(s) for s in spans])
    predictions.to_parquet(predictions_path, index=False)
    metrics = test_span_metrics(test["expert_label"], predictions["label"], test["id"], labels)
    write_json(metrics, metrics_path)
    return metrics
