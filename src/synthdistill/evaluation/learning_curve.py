"""Student quality against the number of synthetic training labels: is more annotation worth paying for?"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from synthdistill.evaluation.scoring import test_metrics
from synthdistill.schema import with_defaults
from synthdistill.students.files import LABEL_OPTIONS, label_frames
from synthdistill.students.inference import predict_frame
from synthdistill.students.train_step import label_settings
from synthdistill.students.training import hyperparameters_of, train

log = logging.getLogger(__name__)


def subsample(items: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A stratified, seeded subset of ``size`` items (all of them when there are not more)."""
    if size >= len(items):
        return items
    counts = items["label"].value_counts()
    # Stratifying needs every label twice and room for each label on both sides of the cut.
    fits = counts.min() >= 2 and min(size, len(items) - size) >= len(counts)
    stratify = items["label"] if fits else None
    subset, _ = train_test_split(items, train_size=size, random_state=seed, stratify=stratify)
    return subset


def learning_curve(
    label_paths: str | list[str],
    test_path: str,
    *,
    teacher: str,
    student: dict[str, Any],
    labels: list[str],
    sizes: list[int],
    threads: int = 1,
) -> pd.DataFrame:
    """Train one student per training-set size (plus all items) and score each on the test split.

    The validation split stays the same for every size, so only the amount of training labels
    changes between points.
    """
    import torch

    torch.set_num_threads(threads)
    options = label_settings(student, LABEL_OPTIONS)
    train_items, validation_items = label_frames(label_paths, teacher, **options, labels=labels)
    test = pd.read_parquet(test_path)
    settings = with_defaults(student, "students", "*")
    seed = int(settings["seed"])
    rows = []
    for size in sorted({s for s in sizes if s < len(train_items)} | {len(train_items)}):
        subset = subsample(train_items, size, seed)
        with tempfile.TemporaryDirectory() as folder:
            metadata = train(
                subset,
                validation_items,
                labels,
                student["model"],
                hyperparameters_of(student),
                folder,
                trust_remote_code=settings["trust_remote_code"],
            )
            predictions = predict_frame(folder, test, int(metadata["hyperparameters"]["max_length"]))
        metrics = test_metrics(test["expert_label"], predictions["label"], test["id"], labels)
        rows.append(
            {
                "train_labels": len(subset),
                "accuracy": metrics["accuracy"],
                "accuracy_low": metrics["intervals"]["accuracy"][0],
                "accuracy_high": metrics["intervals"]["accuracy"][1],
                "f1_macro": metrics["f1_macro"],
                "f1_macro_low": metrics["intervals"]["f1_macro"][0],
                "f1_macro_high": metrics["intervals"]["f1_macro"][1],
                "train_seconds": metadata["train_seconds"],
            }
        )
        log.info("learning curve point: %s", rows[-1])
    return pd.DataFrame(rows)


def plot(curve: pd.DataFrame, title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    axis.errorbar(
        curve["train_labels"],
        curve["f1_macro"],
        yerr=[curve["f1_macro"] - curve["f1_macro_low"], curve["f1_macro_high"] - curve["f1_macro"]],
        marker="o",
        capsize=4,
    )
    axis.set_xscale("log")
    axis.set_xlabel("synthetic training labels (count, log scale)")
    axis.set_ylabel("F1 macro on the expert test split")
    axis.set_ylim(0, 1)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_learning_curve(label_paths, test_path, csv_path: str, png_path: str, *, title: str, **kwargs) -> pd.DataFrame:
    curve = learning_curve(label_paths, test_path, **kwargs)
    curve.to_csv(csv_path, index=False)
    plot(curve, title, png_path)
    return curve
