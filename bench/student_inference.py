"""Student inference on a 2-core CPU: the naive Hugging Face loop against the fast path.

Texts: the FPB allagree sentences repeated to 100,000. Student: MiniLM trained on FPB's expert
labels by bench/student_quality.py (run it with --save-model bench/models/minilm_fpb first).

- naive: transformers model in fp32, batches of 8 in input order, tokenized per batch.
- fast: the ONNX int8 export read by `synthdistill.students.predict.predict_file` end to end, from a
  Parquet file of texts to a Parquet file of labels and probabilities (length-sorted batches,
  tokenization overlapped with inference).

Accuracy of both is measured on the FPB test split (stratified 80/20, seed 42). Prints the
figures and writes them to bench/results/student_inference.json.

    python bench/student_inference.py [--texts 100000] [--model bench/models/minilm_fpb]
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
import torch
from sklearn.model_selection import train_test_split
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from synthdistill.schema import defaults
from synthdistill.students.inference import OnnxPredictor, export_onnx
from synthdistill.students.predict import predict_file

ROOT = Path(__file__).resolve().parents[1]
FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"


def naive_loop(model_dir: str, texts: list[str], max_length: int, batch_size: int = 8) -> np.ndarray:
    """What a first implementation does: fp32, fixed small batches in input order."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            predictions.append(model(**batch).logits.argmax(-1).numpy())
    return np.concatenate(predictions)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--model", default=str(ROOT / "bench" / "models" / "minilm_fpb"))
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "student_inference.json"))
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)

    frame = pd.read_csv(FPB)
    _, test = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["label"])
    texts = list(np.resize(frame["text"].to_numpy(), args.texts))

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        start = time.perf_counter()
        export_onnx(args.model, folder / "onnx")
        export_seconds = time.perf_counter() - start

        start = time.perf_counter()
        naive = naive_loop(args.model, texts, args.max_length)
        naive_seconds = time.perf_counter() - start
        print(f"naive loop: {len(texts) / naive_seconds:.1f} texts/s")

        pd.DataFrame({"text": texts}).to_parquet(folder / "texts.parquet")
        start = time.perf_counter()
        predict_file(
            folder / "onnx",
            folder / "texts.parquet",
            folder / "labels.parquet",
            **{key: defaults("predict")[key] for key in ("text_column", "id_column", "backend", "batch_size")},
            max_length=args.max_length,
        )
        fast_seconds = time.perf_counter() - start
        fast = pd.read_parquet(folder / "labels.parquet")
        print(f"fast path: {len(texts) / fast_seconds:.1f} texts/s")

        labels = OnnxPredictor(folder / "onnx", args.max_length).labels
        test_texts, truth = test["text"].tolist(), test["label"].to_numpy()
        torch_test = np.array(labels)[naive_loop(args.model, test_texts, args.max_length)]
        onnx_test = np.array(labels)[
            OnnxPredictor(folder / "onnx", args.max_length).predict_proba(test_texts).argmax(1)
        ]

    accuracy_torch, accuracy_onnx = float((torch_test == truth).mean()), float((onnx_test == truth).mean())
    figures = {
        "what": "MiniLM-L6 student, FPB allagree sentences repeated, CPU only",
        "machine": f"{platform.machine()}, {threads} cores, no GPU",
        "texts": len(texts),
        "max_length": args.max_length,
        "naive": {
            "method": "transformers fp32, batch 8, input order",
            "seconds": round(naive_seconds, 1),
            "texts_per_second": round(len(texts) / naive_seconds, 1),
        },
        "fast": {
            "method": "ONNX int8 (onnxruntime dynamic quantization), length-sorted batches of 32, streamed "
            "Parquet to Parquet",
            "seconds": round(fast_seconds, 1),
            "texts_per_second": round(len(texts) / fast_seconds, 1),
        },
        "speedup": round(naive_seconds / fast_seconds, 2),
        "export_seconds": round(export_seconds, 1),
        "same_label_share_on_all_texts": round(float((np.array(labels)[naive] == fast["label"].to_numpy()).mean()), 4),
        "test_items": len(test),
        "accuracy_torch": round(accuracy_torch, 4),
        "accuracy_onnx_int8": round(accuracy_onnx, 4),
        "accuracy_difference_points": round(100 * (accuracy_onnx - accuracy_torch), 2),
    }
    print(json.dumps(figures, indent=2))
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
