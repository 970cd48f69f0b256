"""Rank the labellers (teacher × prompt, ensembles) on the gold dev split and pick the best.

The ranking reads expert labels from the gold dev split file only, and each labeller's labels for
those ids; nothing of the test split enters it, so the frozen test split scores the chosen labeller
and its students without having chosen them. Labellers are ranked by F1 macro (the students'
epoch-selection metric), then accuracy, then their order in the config; an abstention counts as
wrong, as on the test split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.metrics.single_label import score
from synthdistill.metrics.stats import bootstrap_intervals, compare, with_intervals
from synthdistill.tasks.names import GOLD_DEV_SPLIT

RANKING_COLUMNS = [
    "rank",
    "labeller",
    "n",
    "f1_macro",
    "f1_macro_low",
    "f1_macro_high",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "coverage",
    "chosen",
]


def gold_dev_labels(votes: pd.DataFrame, gold_ids: pd.Index, source: str) -> pd.Series:
    """A labeller's labels for the gold dev ids (None where it abstained)."""
    labelled = votes.loc[votes["id"].isin(gold_ids)].set_index("id")["label"]
    missing = gold_ids.difference(labelled.index)
    if len(missing):
        raise SynthDistillError(
            f"{source}: {len(missing)} gold dev items were not annotated (e.g. id {missing[0]!r}); "
            "rerun so that every labeller annotates the gold_dev split"
        )
    return labelled.reindex(gold_ids)


def rank_labellers(votes: dict[str, pd.DataFrame], gold_dev: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """One row per labeller (``name -> votes frame``, in config order) with gold dev scores and
    95% bootstrap intervals, best first; ``chosen`` marks the first."""
    if gold_dev.empty:
        raise SynthDistillError("the gold dev split is empty: set split.gold_dev_size")
    gold = gold_dev.set_index("id")["expert_label"]
    rows = []
    for order, (name, frame) in enumerate(votes.items()):
        predicted = gold_dev_labels(frame, gold.index, name)
        metrics = score(gold, predicted, labels)
        intervals = bootstrap_intervals(gold, predicted, labels)
        rows.append(
            {
                "labeller": name,
                "order": order,
                "n": len(gold),
                **with_intervals(metrics, intervals, ("f1_macro", "accuracy")),
                "coverage": float(predicted.notna().mean()),
            }
        )
    ranking = pd.DataFrame(rows).sort_values(["f1_macro", "accuracy", "order"], ascending=[False, False, True])
    ranking = ranking.reset_index(drop=True).drop(columns="order")
    ranking["rank"] = range(1, len(ranking) + 1)
    ranking["chosen"] = ranking["rank"] == 1
    return ranking[RANKING_COLUMNS]


def choice(ranking: pd.DataFrame, votes: dict[str, pd.DataFrame], gold_dev: pd.DataFrame, labels: list[str]) -> dict:
    """What best.json says: the chosen labeller, its gold dev scores and how sure the choice is
    (a paired test against the runner-up on the same gold dev items)."""
    best = ranking.iloc[0]
    out: dict[str, Any] = {
        "labeller": best["labeller"],
        "ranked_on": f"{GOLD_DEV_SPLIT} split, {int(best['n'])} expert-labelled items; by F1 macro, then accuracy",
        "f1_macro": float(best["f1_macro"]),
        "f1_macro_interval": [float(best["f1_macro_low"]), float(best["f1_macro_high"])],
        "accuracy": float(best["accuracy"]),
        "accuracy_interval": [float(best["accuracy_low"]), float(best["accuracy_high"])],
        "labellers_ranked": len(ranking),
    }
    if len(ranking) > 1:
        runner_up = ranking.iloc[1]["labeller"]
        gold = gold_dev.set_index("id")["expert_label"]
        result = compare(
            gold,
            gold_dev_labels(votes[best["labeller"]], gold.index, best["labeller"]),
            gold_dev_labels(votes[runner_up], gold.index, runner_up),
            labels,
        )
        out["versus_runner_up"] = {
            "runner_up": runner_up,
            "mcnemar_p": result["mcnemar"]["p_value"],
            "f1_macro_difference_interval": result["paired_bootstrap"]["f1_macro_difference_interval"],
        }
    return out


def select_labeller(
    vote_paths: dict[str, str],
    label_paths: dict[str, str],
    gold_dev_path: str,
    labels: list[str],
    outputs: dict[str, str],
) -> dict[str, Any]:
    """Write the ranking (CSV), the choice (JSON) and the chosen labeller's reviewed labels, which
    students_learn_from: best trains on: a copy at a fixed path, so the DAG does not depend on the
    choice, with a ``labeller`` column naming it."""
    votes = {name: pd.read_parquet(path) for name, path in vote_paths.items()}
    gold_dev = pd.read_parquet(gold_dev_path)
    ranking = rank_labellers(votes, gold_dev, labels)
    chosen = choice(ranking, votes, gold_dev, labels)
    ranking.to_csv(outputs["ranking"], index=False)
    Path(outputs["choice"]).write_text(json.dumps(chosen, indent=2) + "\n")
    chosen_labels = pd.read_parquet(label_paths[chosen["labeller"]])
    chosen_labels.assign(labeller=chosen["labeller"]).to_parquet(outputs["labels"], index=False)
    return chosen
