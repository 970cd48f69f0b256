"""Pick a student's training and validation labels from files, train it, write its metadata."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.errors import SynthDistillError
from synthdistill.students.targets import with_targets
from synthdistill.students.training import NOT_HYPERPARAMETERS, train, write_metadata
from synthdistill.tasks.names import EXPERT

log = logging.getLogger(__name__)


# Student settings that choose the training labels rather than configure the trainer.
LABEL_OPTIONS = ("min_agreement", "agreement_weighting", "targets")


def label_frames(
    paths: str | Path | Sequence[str | Path],
    teacher: str,
    min_agreement: float | None = None,
    agreement_weighting: bool = False,
    targets: str = "hard",
    labels: list[str] | None = None,
    source: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) frames with text and label (and a weight column when weighting), from a
    teacher's one reviewed-labels file or the expert baseline's train and validation files.

    For a teacher, both come from its votes: validation uses the synthetic labels too, so model
    selection never touches expert labels. For the expert baseline, the expert labels are used
    and the agreement options do not apply. ``min_agreement`` drops training items whose vote
    agreement is below it; ``agreement_weighting`` weights each training item by its agreement.
    Validation keeps every labelled item, so epochs are chosen on the same kind of labels the
    student will see in use. ``targets`` other than ``hard`` (votes, scores; they need ``labels``)
    add the training items' target distributions (students.targets); expert labels are always hard.
    ``source`` names the student and labeller in errors.
    """
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if teacher == EXPERT:
        train_items, validation_items = (pd.read_parquet(p) for p in paths)
        rename = {"expert_label": "label"}
        return train_items.rename(columns=rename), validation_items.rename(columns=rename)
    votes = pd.read_parquet(paths[0])
    labelled = votes.loc[votes["label"].notna()]
    train_items = labelled.loc[labelled["split"] == "train"]
    if min_agreement is not None:
        train_items = train_items.loc[train_items["agreement"] >= min_agreement]
    if agreement_weighting:
        train_items = train_items.assign(weight=train_items["agreement"])
    if targets != "hard":
        if labels is None:
            raise ValueError("label_frames: soft targets need the label set")
        train_items = with_targets(train_items, labels, targets, source or f"labeller {teacher}")
    return train_items, labelled.loc[labelled["split"] == "validation"]


def train_from_files(
    paths: str | list[str],
    *,
    teacher: str,
    prompt: str,
    student: dict[str, Any],
    labels: list[str],
    model_dir: str,
    metadata_path: str,
    threads: int = 1,
    name: str = "student",
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    options = {k: student[k] for k in LABEL_OPTIONS if student.get(k) is not None}
    source = f"students.{name}.targets (labeller {teacher}/{prompt})"
    train_items, validation_items = label_frames(paths, teacher, **options, labels=labels, source=source)
    if train_items.empty:
        raise SynthDistillError(
            f"teacher {teacher} / prompt {prompt}: no labelled training items"
            " (every vote abstained, or students.*.min_agreement dropped them all)"
        )
    log.info("training on %d items, validating on %d", len(train_items), len(validation_items))
    hyperparameters = {k: v for k, v in student.items() if k not in NOT_HYPERPARAMETERS}
    metadata = train(
        train_items,
        validation_items,
        labels,
        student["model"],
        hyperparameters,
        model_dir,
        trust_remote_code=student.get("trust_remote_code", False),
    )
    metadata.update({"teacher": teacher, "prompt": prompt, "label_options": options})
    if "labeller" in train_items:  # students_learn_from: best (results/labels/best.parquet)
        metadata["labeller"] = str(train_items["labeller"].iloc[0])
    if "corrected" in train_items:  # reviewed labels (results/review/...labels.parquet)
        metadata["reviewed_corrections"] = {
            "train": int(train_items["corrected"].sum()),
            "validation": int(validation_items["corrected"].sum()),
        }
    if "feedback" in train_items:  # served feedback added (results/feedback/...labels.parquet)
        metadata["feedback_examples"] = int(train_items["feedback"].sum())
    write_metadata(metadata, metadata_path)
    return metadata
