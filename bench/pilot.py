"""The pilot (issue 28): does a pick on a small gold dev sample hold up on the frozen test split?

The embedded teacher (SmolLM2-135M, llama.cpp, in-process) answers every prompt candidate the pilot
builds from the default run's `scores` prompt (config/prompts/label.txt) and the channel template,
through the library's engine and response cache (labels/pilot.py, the same code as the pilot job).
The pilot scores them on a gold dev sample with successive halving and picks one; then, after the
fact, every candidate is scored on the test split, which chose nothing.

    python bench/pilot.py --data fpb   # FPB allagree, frozen reference split, 100 gold dev texts
    python bench/pilot.py --data demo  # the shipped demo data, the pipeline's own split

fpb: the test split is the reference one (stratified 80/20, seed 42; 453 texts); the gold dev sample
(``--gold``, stratified, seed 42) and the shots split (``--shots-per-label`` per label, the few-shot
pool) are carved from the other 1,811, whose rest is the pool. Goals: the pick's test accuracy within
0.02 of the best candidate's test accuracy; the pilot's dollars at most 15% of labelling the pool with
every candidate. demo: data/demo/financial_news_sentiment.csv split as the default run splits it
(data.prepare, config/config.yaml's split with gold_dev_size and shots_per_label added); goal: the pick at
or above the shipped default (the `scores` prompt: calibrated label scores, no examples) on test.

Candidate kinds default to label_scores, label_scores_calibrated and channel (× no, nearest-4 and
per-label examples): the sampled kinds (label, cot_json) cost self_consistency.iterations generations
per text, which scoring all of them on the whole test split would take hours of this machine's CPU;
``--kinds`` adds them. Costs are the in-process teacher's measured busy time × the default
costs.teacher_hardware (cpu_2vcpu_cloud).

Skips (exit 0) when ../shared/datasets/financial_phrasebank/ is absent (--data fpb).
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

import pandas as pd
import yaml
from sklearn.model_selection import train_test_split
from snakemake.utils import validate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cascade import FPB, LABELS, REPO, reference_split  # noqa: E402

from synthdistill import data  # noqa: E402
from synthdistill.annotation.cache import ResponseCache  # noqa: E402
from synthdistill.annotation.teachers import make_teacher  # noqa: E402
from synthdistill.labels.pilot import candidate_evaluator, run_pilot  # noqa: E402
from synthdistill.metrics.costs import annotations_usd, teacher_costing  # noqa: E402
from synthdistill.metrics.single_label import score  # noqa: E402
from synthdistill.schema import defaults  # noqa: E402
from synthdistill.settings import annotate_settings, pilot_candidates, teacher_settings  # noqa: E402

CONFIG = REPO / "config" / "config.yaml"
DEFAULT_PROMPT = "scores-calibrated-zero"  # the shipped default: config.yaml's `scores` prompt


def run_config(kinds: list[str], examples: list[str]) -> dict[str, Any]:
    config = yaml.safe_load(CONFIG.read_text())
    config["prompts"] = {"scores": config["prompts"]["scores"]}
    # Rewrites are not scored here: they exist only inside a pilot, and every candidate is scored on test.
    config["pilot"] = {**defaults("pilot"), "enabled": True, "kinds": kinds, "examples": examples, "rewrites": 0}
    config["split"]["shots_per_label"] = 1  # only read as "there is a shots split"
    validate(config, str(REPO / "schemas" / "config.schema.yaml"))  # fills in the schema's defaults
    return config


def fpb_splits(gold: int, shots_per_label: int) -> dict[str, pd.DataFrame]:
    train_part, test = reference_split()
    rest, gold_dev = train_test_split(train_part, test_size=gold, random_state=42, stratify=train_part["label"])
    shots = rest.groupby("label", group_keys=False).sample(n=shots_per_label, random_state=42)
    pool = rest.drop(shots.index)
    frames = {"gold_dev": gold_dev, "test": test, "shots": shots, "pool": pool}
    return {name: frame.rename(columns={"label": "expert_label"}).assign(split=name) for name, frame in frames.items()}


def demo_splits(config: dict[str, Any], gold: int, shots_per_label: int) -> dict[str, pd.DataFrame]:
    split = {**config["split"], "gold_dev_size": gold, "shots_per_label": shots_per_label}
    items, _ = data.prepare(config["dataset"], config["labels"], split, "single_label")
    return {
        name: items[items["split"] == name].reset_index(drop=True) for name in ("gold_dev", "test", "shots", "train")
    }


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["fpb", "demo"], default="fpb")
    parser.add_argument("--gold", type=int, help="gold dev texts (default: fpb 100, demo 60)")
    parser.add_argument("--shots-per-label", type=int, default=8)
    parser.add_argument("--kinds", nargs="+", default=["label_scores", "label_scores_calibrated", "channel"])
    parser.add_argument("--examples", nargs="+", default=["none", "nearest", "per_label"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "synthdistill-bench-pilot.sqlite"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.data == "fpb" and not FPB.exists():
        print(f"skipped: {FPB} not found")
        return None
    os.chdir(REPO)  # templates and the demo dataset are read relative to the workflow folder
    config = run_config(args.kinds, args.examples)
    gold = args.gold or (100 if args.data == "fpb" else 60)
    if args.data == "fpb":
        splits = fpb_splits(gold, args.shots_per_label)
    else:
        splits = demo_splits(config, gold, args.shots_per_label)
    pool_texts = len(splits["pool" if args.data == "fpb" else "train"])
    candidates = pilot_candidates(config, "smollm2")
    teacher = {**teacher_settings(config, "smollm2"), "n_threads": args.threads}
    costing = teacher_costing("smollm2", config["teachers"]["smollm2"], config["costs"].get("teacher_hardware"))
    with tempfile.TemporaryDirectory() as scratch:
        shots_path = str(Path(scratch) / "shots.parquet")
        splits["shots"][["id", "text", "expert_label"]].to_parquet(shots_path)  # as prepare_data writes it
        evaluate = candidate_evaluator(
            model=make_teacher(teacher, "smollm2"),
            cache=ResponseCache(args.cache),
            teacher=teacher,
            labels=LABELS,
            iterations=config["self_consistency"]["iterations"],
            engine=annotate_settings(config["annotate"], max_failure_share=1.0),
            shots_path=shots_path,
            tie_policy=config["vote"]["tie_policy"],
        )

        def usd(annotations: list[dict[str, Any]]) -> float | None:
            return annotations_usd(annotations, costing)

        started = time.perf_counter()
        table, choice = run_pilot(splits["gold_dev"], candidates, evaluate, LABELS, config["pilot"], usd)
        pilot_seconds = time.perf_counter() - started
        print(table.to_string(index=False), flush=True)
        on_test = {}
        for name, settings in candidates.items():
            begun = time.perf_counter()
            scored = evaluate(name, settings, splits["test"])
            figures = score(splits["test"].set_index("id")["expert_label"], scored.predicted, LABELS)
            on_test[name] = {
                "accuracy": round(figures["accuracy"], 4),
                "f1_macro": round(figures["f1_macro"], 4),
                "usd_per_text": usd([scored.annotation]) / len(splits["test"]),
                "seconds": round(time.perf_counter() - begun, 1),
            }
            print(name, on_test[name], flush=True)
    figures_out = summarise(args, choice, table, on_test, pool_texts, len(splits["test"]), pilot_seconds)
    out = args.out or REPO / "bench" / "results" / f"pilot_{args.data}.json"
    out.write_text(json.dumps(figures_out, indent=2) + "\n")
    print(json.dumps(figures_out["summary"], indent=2))
    return figures_out


def summarise(
    args: argparse.Namespace,
    choice: dict[str, Any],
    table: pd.DataFrame,
    on_test: dict[str, dict[str, Any]],
    pool_texts: int,
    test_texts: int,
    pilot_seconds: float,
) -> dict[str, Any]:
    pick = choice["candidate"]
    best = max(on_test, key=lambda name: (on_test[name]["accuracy"], on_test[name]["f1_macro"]))
    every_candidate_on_pool = pool_texts * sum(c["usd_per_text"] for c in on_test.values())
    summary: dict[str, Any] = {
        "pick": pick,
        "pick_gold_dev_f1_macro": round(choice["f1_macro"], 4),
        "pick_test": on_test[pick],
        "best_on_test": best,
        "best_test": on_test[best],
        "accuracy_gap_to_best": round(on_test[best]["accuracy"] - on_test[pick]["accuracy"], 4),
        "pilot_usd": choice["usd"],
        "every_candidate_on_the_pool_usd": every_candidate_on_pool,
        "pilot_share_of_that": round(choice["usd"] / every_candidate_on_pool, 4),
        "pilot_passed_require": choice["passed"],
    }
    if args.data == "fpb":
        summary["goals"] = {
            "pick_within_0.02_accuracy_of_best": summary["accuracy_gap_to_best"] <= 0.02,
            "pilot_at_most_15pct_of_every_candidate_on_the_pool": summary["pilot_share_of_that"] <= 0.15,
        }
    else:
        default = on_test[DEFAULT_PROMPT]
        summary["shipped_default"] = {"candidate": DEFAULT_PROMPT, **default}
        summary["goals"] = {
            "pick_at_or_above_shipped_default_f1_macro": on_test[pick]["f1_macro"] >= default["f1_macro"]
        }
    return {
        "what": f"the pilot on {args.data}: candidates scored on gold dev with successive halving, then all on test",
        "teacher": "SmolLM2-135M-Instruct Q4_1, llama.cpp in-process",
        "candidates": list(on_test),
        "gold_dev_texts": choice["gold_dev_texts"],
        "test_texts": test_texts,
        "pool_texts": pool_texts,
        "pilot": {k: v for k, v in choice.items() if k not in ("settings",)},
        "pilot_table": table.to_dict("records"),
        "pilot_seconds": round(pilot_seconds, 1),
        "on_test": on_test,
        "summary": summary,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
    }


if __name__ == "__main__":
    main()
