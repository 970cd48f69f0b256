"""Ensemble teacher: several teacher × prompt label sets combined into one, used like any teacher.

``majority`` pools every self-consistency iteration of every member as one vote and takes the
majority (the same vote, tie policy and schema as a single teacher). ``crowdlab`` treats each
iteration of each member as an annotator and takes cleanlab's CROWDLAB consensus, which weights
annotators by their estimated quality and a cross-validated classifier's probabilities; it also
resolves the majority's ties. The result is written as ``results/votes/<name>/<method>.parquet``
with the vote columns, so evaluation, review and students treat it as a teacher.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.data import read_splits
from synthdistill.labels.review import (
    annotator_labels,
    crowdlab,
    item_probs,
    read_iterations,
    text_features,
    voted_targets,
)
from synthdistill.labels.vote import VOTED, vote, vote_summary
from synthdistill.labels.vote_files import write_vote_outputs
from synthdistill.metrics.costs import teacher_totals

log = logging.getLogger(__name__)
METHODS = ("majority", "crowdlab")


def combined_annotation_stats(member_stats: list[dict[str, Any]], costings: list[dict[str, Any]]) -> dict[str, Any]:
    """The members' calls, failures, tokens and busy time added up; dollars, kWh and CO2 are each
    member's own (tokens × price or time × hardware, costs.teacher_costing) added up, and unknown
    when any member's is."""
    keys: tuple[str, ...] = ("iterations", "answers", "requests_made", "cache_hits", "request_errors", "parse_failures")
    keys += ("input_tokens", "output_tokens")
    annotation: dict[str, Any] = {k: sum(s["annotation"][k] for s in member_stats) for k in keys}
    # Members run independently, so an ensemble label waits for its slowest member.
    annotation["latency_p50_s"] = max((s["annotation"]["latency_p50_s"] or 0.0) for s in member_stats)
    annotation["latency_p95_s"] = max((s["annotation"].get("latency_p95_s") or 0.0) for s in member_stats)
    if all(s["annotation"].get("compute_s") is not None for s in member_stats):
        annotation["compute_s"] = sum(s["annotation"]["compute_s"] for s in member_stats)
    totals = [teacher_totals(s["annotation"], c) for s, c in zip(member_stats, costings, strict=True)]
    for key, method in (("usd", "cost_method"), ("kwh", "energy_method"), ("kg_co2", "co2_method")):
        values = [t[key] for t in totals]
        annotation["cost_usd" if key == "usd" else key] = None if None in values else sum(values)
        annotation[method] = "members added up: " + "; ".join(
            f"{c.get('member', c.get('teacher'))}: {t[method]}" for c, t in zip(costings, totals, strict=True)
        )
    return annotation


def equal_member_weights(iterations: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every member votes with the same weight: a member annotated fewer times (a label_scores prompt
    is asked once, its scores do not vary) has its answers counted as often as the member with the
    most iterations, as if it had been asked that many times."""
    members: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    for name, frame in iterations.items():
        members.setdefault(name.rsplit("/iter", 1)[0], []).append((name, frame))
    most = max(len(frames) for frames in members.values())
    out = {}
    for frames in members.values():
        for copy in range(most):
            name, frame = frames[copy % len(frames)]
            out[name if copy < len(frames) else f"{name} (counted again, {copy + 1} of {most})"] = frame
    return out


def ensemble_votes(
    iterations: dict[str, pd.DataFrame],
    items: pd.DataFrame,
    labels: list[str],
    method: str,
    tie_policy: str,
    settings: dict[str, Any],
) -> pd.DataFrame:
    """One labelled row per item in the vote schema, from the members' iterations."""
    if method not in METHODS:
        raise SynthDistillError(f"ensembles.*.method: {method!r} is not one of {METHODS}")
    votes = vote(list(iterations.values()), items, labels, tie_policy)
    votes["method"] = "majority"
    if method == "majority":
        return votes
    labelled, targets = voted_targets(votes["label"], labels)
    if len(np.unique(targets)) < 2:
        log.warning("crowdlab: the majority labels have fewer than two classes; keeping the majority vote")
        return votes
    features = text_features(votes["text"].tolist(), settings["features"], settings["embedding_model"])
    all_probs = item_probs(features, labelled, targets, len(labels), settings["cv_folds"], settings["seed"])
    consensus = crowdlab(annotator_labels(iterations, votes["id"].tolist()), all_probs, labels)
    if consensus is None:
        log.warning("crowdlab could not run; keeping the majority vote")
        return votes
    found = consensus["consensus_label"].notna().to_numpy()
    votes.loc[found, "label"] = consensus.loc[found, "consensus_label"].to_numpy()
    votes.loc[found & ~labelled, "vote_status"] = VOTED
    votes["consensus_quality"] = consensus["consensus_quality"].to_numpy()
    votes["method"] = "crowdlab"
    return votes


def write_ensemble(
    iteration_paths: dict[str, str],
    split_paths: list[str],
    member_stats_paths: list[str],
    costings: list[dict[str, Any]],
    labels: list[str],
    method: str,
    tie_policy: str,
    settings: dict[str, Any],
    outputs: dict[str, str],
) -> pd.DataFrame:
    """The ensemble's votes, trainer CSV and stats, like a single teacher's vote job writes them."""
    iterations = equal_member_weights(read_iterations(iteration_paths))
    votes = ensemble_votes(iterations, read_splits(split_paths), labels, method, tie_policy, settings)
    member_stats = [json.loads(Path(p).read_text()) for p in member_stats_paths]
    stats = {"annotation": combined_annotation_stats(member_stats, costings), "vote": vote_summary(votes)}
    write_vote_outputs(votes, stats, outputs)
    return votes
