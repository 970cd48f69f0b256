"""Read iteration artifacts, vote, and write the votes, the trainer-ready CSV and the stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.data import read_splits
from synthdistill.labels.vote import vote, vote_summary


def annotation_stats(iterations: list[pd.DataFrame]) -> dict[str, Any]:
    """LLM calls, failures, tokens and latency over all iterations of one teacher × prompt."""
    frame = pd.concat(iterations, ignore_index=True)
    fresh = frame.loc[~frame["cached"]]
    return {
        "iterations": len(iterations),
        "answers": len(frame),
        "requests_made": len(fresh),
        "cache_hits": int(frame["cached"].sum()),
        "request_errors": int((frame["parse_status"] == "request_error").sum()),
        "parse_failures": int(frame["parse_status"].isin(["not_a_label", "invalid_json", "empty"]).sum()),
        "parse_status": {k: int(v) for k, v in frame["parse_status"].value_counts().items()},
        "input_tokens": int(frame["input_tokens"].fillna(0).sum()),
        "output_tokens": int(frame["output_tokens"].fillna(0).sum()),
        "latency_p50_s": float(frame["latency_s"].quantile(0.5)) if len(frame) else None,
        "latency_p95_s": float(frame["latency_s"].quantile(0.95)) if len(frame) else None,
    }


def write_votes(
    iteration_paths: list[str], split_paths: list[str], labels: list[str], tie_policy: str, outputs: dict[str, str]
) -> pd.DataFrame:
    iterations = [pd.read_parquet(p) for p in iteration_paths]
    votes = vote(iterations, read_splits(split_paths), labels, tie_policy)
    write_vote_outputs(votes, annotation_stats(iterations), outputs)
    return votes


def write_vote_outputs(votes: pd.DataFrame, annotation: dict[str, Any], outputs: dict[str, str]) -> None:
    """The files of a vote job (a teacher's or an ensemble's): votes, trainer-ready CSV and stats."""
    votes.to_parquet(outputs["votes"], index=False)
    train = votes.loc[(votes["split"] == "train") & votes["label"].notna(), ["text", "label"]]
    train.to_csv(outputs["train_csv"], index=False)
    stats = {"annotation": annotation, "vote": vote_summary(votes)}
    Path(outputs["stats"]).write_text(json.dumps(stats, indent=2) + "\n")
