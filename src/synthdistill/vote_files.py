"""Read iteration artifacts, vote, and write the votes, the trainer-ready CSV and the stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.data import read_splits
from synthdistill.report import annotation_stats
from synthdistill.voting import vote, vote_summary


def write_votes(
    iteration_paths: list[str], split_paths: list[str], labels: list[str], tie_policy: str, outputs
) -> pd.DataFrame:
    iterations = [pd.read_parquet(p) for p in iteration_paths]
    votes = vote(iterations, read_splits(split_paths), labels, tie_policy)
    write_vote_outputs(votes, annotation_stats(iterations), outputs)
    return votes


def write_vote_outputs(votes: pd.DataFrame, annotation: dict[str, Any], outputs) -> None:
    """The files of a vote job (a teacher's or an ensemble's): votes, trainer-ready CSV and stats."""
    votes.to_parquet(outputs.votes, index=False)
    train = votes.loc[(votes["split"] == "train") & votes["label"].notna(), ["text", "label"]]
    train.to_csv(outputs.train_csv, index=False)
    stats = {"annotation": annotation, "vote": vote_summary(votes)}
    Path(outputs.stats).write_text(json.dumps(stats, indent=2) + "\n")
