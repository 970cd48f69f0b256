"""Fine-tune a multi-label student (task multi_label): one sigmoid per label, binary cross-entropy.

It learns the voted label sets of the train split (or the expert sets, for the expert baseline). On
the validation split (the same kind of labels, never the expert test split) each epoch gets its
per-label thresholds tuned (a label with too few validation positives gets one global threshold), and
the best epoch by micro F1 is kept; its thresholds are saved in the model's config.json
(``label_thresholds``), where the predictors of students.inference read them. metadata.json also
holds which labels fell back to the global threshold and whether the validation answers collapsed
(metrics.collapse).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from synthdistill.metrics.collapse import label_set_collapse
from synthdistill.students.files import label_frames
from synthdistill.students.inference import TorchPredictor
from synthdistill.students.train_step import train_student
from synthdistill.students.training import fit_texts, load_classifier, save_model, start_training
from synthdistill.tasks.multi_label import indicator_matrix

log = logging.getLogger(__name__)

# Candidate thresholds; a tie keeps the one nearest 0.5, so a flat validation curve changes nothing.
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def _best_threshold(probs: np.ndarray, truth: np.ndarray) -> float:
    """The threshold of THRESHOLD_GRID with the best F1 over every item × label decision of (probs,
    truth) together (items × labels): one label's F1, or the micro F1 of several."""
    predicted = probs[..., None] >= THRESHOLD_GRID  # items × labels × thresholds
    positives = truth.astype(bool)[..., None]
    tp = (predicted & positives).sum(axis=(0, 1))
    fp = (predicted & ~positives).sum(axis=(0, 1))
    fn = (~predicted & positives).sum(axis=(0, 1))
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return float(THRESHOLD_GRID[np.lexsort((-np.abs(THRESHOLD_GRID - 0.5), f1))[-1]])


def too_few_positives(truth: np.ndarray, min_positives: int) -> np.ndarray:
    """The labels (a mask) with fewer than ``min_positives`` validation positives: they get the global threshold."""
    return np.asarray(truth).sum(axis=0) < min_positives


def global_threshold(probs: np.ndarray, truth: np.ndarray) -> float:
    """One threshold for every label, tuned on all labels together (micro F1)."""
    return _best_threshold(probs, truth)


def tune_thresholds(probs: np.ndarray, truth: np.ndarray, min_positives: int) -> np.ndarray:
    """Per label, the threshold of THRESHOLD_GRID with the best F1 on (probs, truth); a label with
    fewer than ``min_positives`` validation positives (students.*.min_threshold_positives) gets the
    global threshold instead, tuned on all labels together (micro F1). A label the split never has
    scores F1 0 everywhere, so on its own it would keep 0.5.

    Fall back rather than shrink toward the global threshold: with two positives a label's F1 curve
    is flat or a step wherever its two scores fall, and its best threshold (0.05: answer the label
    for every text, recall 1) is noise that any shrinkage weight still lets through in part, and that
    weight would be one more setting to tune on the same few items. The global threshold pools the
    positives of every label, so it is stable, and a fallen-back label is named in metadata.json.
    """
    thresholds = np.array([_best_threshold(probs[:, [j]], truth[:, [j]]) for j in range(probs.shape[1])])
    few = too_few_positives(truth, min_positives)
    if few.any():
        thresholds[few] = global_threshold(probs, truth)
    return thresholds.astype(np.float32)


def positive_weights(targets: np.ndarray, class_weights: str | None) -> np.ndarray:
    """balanced: each label's positive term weighted by its negatives over its positives (a rare label
    is not drowned out by the items without it); None: 1."""
    if class_weights != "balanced":
        return np.ones(targets.shape[1], dtype=np.float32)
    positives = targets.sum(axis=0)
    negatives = len(targets) - positives
    return np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0).astype(np.float32)


def _validator(
    tokenizer: Any,
    max_length: int,
    val_texts: list[str],
    val_truth: np.ndarray,
    labels: list[str],
    min_positives: int,
) -> Callable[[Any], tuple[float, dict[str, Any], Any]]:
    """fit()'s validation: micro F1 at thresholds tuned on the validation split, and what the
    collapse check and the threshold floor need from the epoch."""

    def validate(model: Any) -> tuple[float, dict[str, Any], Any]:
        probs = TorchPredictor.from_model(model, tokenizer, max_length).predict_proba(val_texts)
        thresholds = tune_thresholds(probs, val_truth, min_positives)
        predicted = probs >= thresholds
        f1 = float(f1_score(val_truth, predicted, average="micro", zero_division=0))
        at_half = float(f1_score(val_truth, probs >= 0.5, average="micro", zero_division=0))
        # What the student answers on validation at these thresholds: the report flags a collapse.
        collapse = label_set_collapse(val_truth, predicted, labels)
        details = {
            "validation_f1_micro": f1,
            "validation_f1_micro_at_0.5": at_half,
            "validation_collapsed": collapse["collapsed"] if collapse else None,
        }
        return (
            f1,
            details,
            {"thresholds": thresholds, "global": global_threshold(probs, val_truth), "collapse": collapse},
        )

    return validate


def train_multi_label(
    train_items: pd.DataFrame,
    validation_items: pd.DataFrame,
    labels: list[str],
    model_ref: str,
    hyperparameters: dict[str, Any],
    output_dir: str | Path,
    *,
    trust_remote_code: bool,
) -> dict[str, Any]:
    """Train on ``train_items`` (text, label set), keep the best epoch on ``validation_items`` by
    micro F1 at its tuned thresholds, save the model with them."""
    import torch

    hp, device = start_training(hyperparameters)
    label2id = {label: i for i, label in enumerate(labels)}
    tokenizer, model = load_classifier(
        model_ref, labels, label2id, device, trust_remote_code, problem_type="multi_label_classification"
    )

    texts = train_items["text"].tolist()
    target_array = indicator_matrix(train_items["label"], labels).astype("float32")
    pos_weight = torch.tensor(positive_weights(target_array, hp.get("class_weights"))).to(device)
    max_length = int(hp["max_length"])
    val_texts = validation_items["text"].tolist()
    val_truth = indicator_matrix(validation_items["label"], labels)

    def per_item_loss(logits: Any, targets: Any) -> Any:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=pos_weight, reduction="none"
        ).mean(dim=1)

    min_positives = int(hp["min_threshold_positives"])
    validate = _validator(tokenizer, max_length, val_texts, val_truth, labels, min_positives)
    fitted = fit_texts(model, tokenizer, train_items, target_array, per_item_loss, hp, validate if val_texts else None)
    best = fitted.best_extra or {"thresholds": np.full(len(labels), 0.5), "global": None, "collapse": None}
    best_thresholds = best["thresholds"]
    few = too_few_positives(val_truth, min_positives) if val_texts else np.zeros(len(labels), dtype=bool)
    model.config.label_thresholds = {
        label: round(float(t), 4) for label, t in zip(labels, best_thresholds, strict=True)
    }
    save_model(model, tokenizer, output_dir)
    history, best_epoch, train_seconds = fitted.history, fitted.best_epoch, fitted.seconds
    return {
        "task": "multi_label",
        "base_model": model_ref,
        "labels": labels,
        "hyperparameters": hp,
        "label_thresholds": model.config.label_thresholds,
        # Labels with fewer validation positives than the floor answer at the global threshold.
        "threshold_floor": {
            "min_positives": min_positives,
            "validation_positives": dict(zip(labels, val_truth.sum(axis=0).astype(int).tolist(), strict=True)),
            "global_threshold": best["global"],
            "fell_back": [label for label, low in zip(labels, few, strict=True) if low],
        },
        # The best epoch's validation answers (never the test split); None without a validation split.
        "validation_collapse": best["collapse"],
        "positive_weights": dict(zip(labels, pos_weight.tolist(), strict=True)),
        "train_examples": len(texts),
        "validation_examples": len(val_texts),
        "best_epoch": best_epoch,
        "history": history,
        "train_seconds": train_seconds,
        "train_examples_per_second": len(texts) * len(history) / train_seconds if train_seconds else None,
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
    }


# The train_student step of task multi_label: its students set no soft targets.
train_from_files = partial(
    train_student,
    # Hard targets: the soft ones (students.*.targets) are distributions over one answer.
    frames_of=partial(label_frames, targets="hard"),
    train=train_multi_label,
    why="no labelled training items (no iteration answered, or students.*.min_agreement dropped them all)",
    options=("min_agreement", "agreement_weighting"),
    remote_code=True,
)
