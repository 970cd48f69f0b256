"""Multi-label label scores from the embedded teacher: SmolLM2 asked one yes/no question per label.

The support-tickets demo's test split (the split config/examples/multi_label.yaml makes: test 0.25,
validation 0.15, seed 42) is labelled by the embedded SmolLM2-135M through the pipeline's own prompt
files and annotation engine, three ways: the example's ``yes_no`` label_scores prompt (one scoring
request per label, P(yes)/(P(yes)+P(no)) >= 0.5) without and with contextual calibration (the same
cached requests plus the content-free text's), and the example's sampled ``labels_json`` prompt (one
iteration, constrained decoding) as the baseline measured in the same run. Scored against the expert
sets with the pipeline's metrics (micro F1 with a bootstrap interval). Also reported: what a
threshold tuned on the test split itself would reach (an upper bound, not a usable setting), and
the requests and seconds per text, and each label's ROC AUC of the probabilities (does the ranking
carry signal whatever the threshold).

SmolLM2-135M is a weak annotator: these figures check that the per-label scores carry signal, not
that they make a good teacher.

    python bench/multi_label_scores.py [--items N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

from synthdistill import data
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompt_files import build_prompt_frame
from synthdistill.annotation.teachers import make_teacher
from synthdistill.evaluation.multi_label_metrics import bootstrap_label_set_intervals, score_label_sets
from synthdistill.settings import annotate_settings, prompt_settings, teacher_settings
from synthdistill.tasks.multi_label import indicator_matrix, label_sets_of

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "examples" / "multi_label.yaml").read_text())
LABELS = CONFIG["labels"]


def scored(test: pd.DataFrame, predicted: pd.Series) -> dict:
    expert = test["expert_label"].reset_index(drop=True)
    guess = predicted.reset_index(drop=True)
    metrics = score_label_sets(expert, guess, LABELS)
    interval = bootstrap_label_set_intervals(expert, guess, LABELS)["f1_micro"]
    keep = ("f1_micro", "f1_macro", "precision_micro", "recall_micro", "subset_accuracy", "hamming_loss", "coverage")
    return {**{k: round(metrics[k], 4) for k in keep}, "f1_micro_interval": [round(x, 4) for x in interval]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=None, help="the first N test texts only")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "multi_label_scores.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    os.chdir(ROOT)  # the config's relative paths
    dataset = {**CONFIG["dataset"], "path": str(ROOT / CONFIG["dataset"]["path"])}
    items, _ = data.prepare(dataset, LABELS, CONFIG["split"], "multi_label")
    test = items.loc[items["split"] == "test"].reset_index(drop=True)
    if args.items:
        test = test.head(args.items)
    teacher_config = {**teacher_settings(CONFIG, "smollm2"), "n_threads": 2}
    teacher = make_teacher(teacher_config, "smollm2")
    results, timing = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        cache = ResponseCache(Path(scratch) / "cache.sqlite")
        runs = {
            "yes_no": {**CONFIG, "prompts": {"p": {**CONFIG["prompts"]["yes_no"], "calibrate": False}}},
            "yes_no_calibrated": {**CONFIG, "prompts": {"p": {**CONFIG["prompts"]["yes_no"], "calibrate": True}}},
            "labels_json": {**CONFIG, "prompts": {"p": CONFIG["prompts"]["labels_json"]}},
        }
        for name, config in runs.items():
            prompt = prompt_settings(config, "p")
            frame = build_prompt_frame(test, prompt["template"], teacher_config, prompt, LABELS)
            before, start = len(cache), time.perf_counter()
            out = annotate(
                frame,
                teacher,
                cache,
                kind=prompt["kind"],
                labels=LABELS,
                generation={**teacher_config, **prompt},
                iteration=0,
                **annotate_settings(max_failure_share=1.0),
            )
            seconds = time.perf_counter() - start
            timing[name] = {
                "new_requests": len(cache) - before,
                "seconds": round(seconds, 1),
                "seconds_per_text": round(seconds / len(test), 2),
            }
            results[name] = scored(test, out["label"])
            probs = [f"prob_{x}" for x in LABELS]
            if set(probs) <= set(out.columns):
                matrix = out[probs].to_numpy()
                results[name]["mean_probability"] = round(float(matrix.mean()), 4)
                # Does the ranking carry signal, whatever the threshold? Per-label ROC AUC (0.5: none).
                truth = indicator_matrix(test["expert_label"], LABELS)
                aucs = {x: round(float(roc_auc_score(truth[:, j], matrix[:, j])), 4) for j, x in enumerate(LABELS)}
                results[name]["roc_auc_per_label"] = aucs
                results[name]["roc_auc_macro"] = round(float(np.mean(list(aucs.values()))), 4)
                # An upper bound: the one threshold that is best on the test split itself.
                grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
                f1 = {t: scored(test, pd.Series(label_sets_of(matrix >= t, LABELS)))["f1_micro"] for t in grid}
                best = max(f1, key=f1.get)
                results[name]["test_tuned_threshold"] = {"threshold": float(best), "f1_micro": f1[best]}
    prevalence = pd.Series(label_sets_of(np.ones((len(test), len(LABELS)), dtype=int), LABELS))
    results["every_label_baseline"] = scored(test, prevalence)
    report = {
        "dataset": "data/demo/support_tickets.csv (fictional), test split of config/examples/multi_label.yaml",
        "test_items": len(test),
        "teacher": "SmolLM2-135M-Instruct Q4_1 (llama_cpp, 2 threads)",
        "prompts": {"yes_no": CONFIG["prompts"]["yes_no"]["template"], "labels_json": "config/prompts/labels_json.txt"},
        "results": results,
        "timing": timing,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
