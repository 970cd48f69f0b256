"""Read iteration artifacts, vote, and write the votes, the trainer-ready CSV and the stats."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from synthdistill.data import read_splits
from synthdistill.labels.vote import vote, vote_summary


def compute_seconds(frame: pd.DataFrame) -> tuple[float, str]:
    """The teacher's busy seconds behind every answer received, and where they come from.

    Each answer carries its share of the teacher's busy time, measured when it was paid for (a cache
    hit brings the stored share back), so the sum is the same on a rerun that is all cache hits.
    Answers stored before shares were recorded fall back to their latency, which equals the share
    when one request was in flight at a time (in-process teachers) and overstates it otherwise.
    """
    answered = frame.loc[frame["input_tokens"].notna() | frame["raw_output"].notna()]
    share = answered["compute_s"] if "compute_s" in answered else pd.Series(float("nan"), index=answered.index)
    missing = share.isna()
    seconds = float(share.fillna(answered["latency_s"]).fillna(0.0).sum())
    if not len(answered):
        source = "no answers"
    elif not missing.any():
        source = "busy-time shares measured when each answer was paid for"
    elif missing.all():
        source = "latencies (answers cached before busy-time shares were recorded)"
    else:
        source = f"busy-time shares; latencies for {int(missing.sum())} answers cached before shares were recorded"
    return seconds, source


def annotation_stats(iterations: list[pd.DataFrame]) -> dict[str, Any]:
    """LLM calls, failures, tokens and latency over all iterations of one teacher × prompt."""
    frame = pd.concat(iterations, ignore_index=True)
    fresh = frame.loc[~frame["cached"]]
    compute_s, compute_source = compute_seconds(frame)
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
        "compute_s": compute_s,
        "compute_source": compute_source,
    }


class Voted(NamedTuple):
    """What a kind's vote gives the vote job to write."""

    votes: pd.DataFrame
    # stats.json after the shared "annotation" entry: the vote's summary (and settings worth keeping).
    stats: dict[str, Any]
    # The trainer-ready CSV; None: voted_train's text,label rows.
    train: pd.DataFrame | None = None


# A kind's vote: (iterations, items, labels, config vote) -> what to write.
KindVote = Callable[[list[pd.DataFrame], pd.DataFrame, list[str], dict[str, Any]], Voted]


def vote_step(
    iteration_paths: list[str],
    split_paths: list[str],
    labels: list[str],
    settings: dict[str, Any],
    outputs: dict[str, str],
    *,
    kind_vote: KindVote,
) -> pd.DataFrame:
    """The vote step of every kind (tasks.base names its arguments), bound per kind with
    functools.partial: every kind reads its iterations and splits and writes its files the same way;
    only ``kind_vote`` differs, and its docstring says what the kind's vote does."""
    iterations = [pd.read_parquet(p) for p in iteration_paths]
    voted = kind_vote(iterations, read_splits(split_paths), labels, settings)
    write_vote_outputs(voted.votes, {"annotation": annotation_stats(iterations), **voted.stats}, outputs, voted.train)
    return voted.votes


def _single_label_vote(
    iterations: list[pd.DataFrame], items: pd.DataFrame, labels: list[str], settings: dict[str, Any]
) -> Voted:
    """The vote step of task single_label (``settings``: config vote, whose tie_policy it reads)."""
    votes = vote(iterations, items, labels, settings["tie_policy"])
    return Voted(votes, {"vote": vote_summary(votes)})


write_votes = partial(vote_step, kind_vote=_single_label_vote)


def voted_train(votes: pd.DataFrame) -> pd.DataFrame:
    """The train split's voted items as ``text, label``: the trainer-ready CSV any trainer reads."""
    return votes.loc[(votes["split"] == "train") & votes["label"].notna(), ["text", "label"]].reset_index(drop=True)


def write_vote_outputs(
    votes: pd.DataFrame, stats: dict[str, Any], outputs: dict[str, str], train: pd.DataFrame | None = None
) -> None:
    """The files of a vote job of any kind (a teacher's or an ensemble's): the votes, the trainer-ready
    CSV (``train``, else voted_train) and the stats."""
    votes.to_parquet(outputs["votes"], index=False)
    (voted_train(votes) if train is None else train).to_csv(outputs["train_csv"], index=False)
    Path(outputs["stats"]).write_text(json.dumps(stats, indent=2) + "\n")
