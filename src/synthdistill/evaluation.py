"""Evaluate teachers and students on the same frozen expert test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.metrics import score
from synthdistill.training import predict_frame


def _write(metrics: dict[str, Any], path: str) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2) + "\n")


def evaluate_teacher(votes_path: str, labels: list[str], output_path: str) -> dict[str, Any]:
    votes = pd.read_parquet(votes_path)
    test = votes.loc[votes["split"] == "test"]
    metrics = {**score(test["expert_label"], test["label"], labels), "test_ids": sorted(test["id"])}
    _write(metrics, output_path)
    return metrics


def evaluate_student(
    model_dir: str, test_path: str, labels: list[str], max_length: int, metrics_path: str, predictions_path: str
) -> dict[str, Any]:
    test = pd.read_parquet(test_path)
    predictions = predict_frame(model_dir, test, max_length)
    predictions.to_parquet(predictions_path, index=False)
    metrics = {**score(test["expert_label"], predictions["label"], labels), "test_ids": sorted(test["id"])}
    _write(metrics, metrics_path)
    return metrics
