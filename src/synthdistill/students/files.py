"""Pick a student's training and validation labels from files, train it, write its metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.schema import with_defaults
from synthdistill.students.targets import with_targets
from synthdistill.students.train_step import (
    label_options,
    label_settings,
    labelled_frames,
    reviewed_corrections,
    train_on_frames,
)
from synthdistill.students.training import train, write_metadata

# Student settings that choose the training labels rather than configure the trainer.
LABEL_OPTIONS = ("min_agreement", "agreement_weighting", "targets")


def label_frames(
    paths: str | Path | Sequence[str | Path],
    teacher: str,
    *,
    min_agreement: float | None,
    agreement_weighting: bool,
    targets: str,
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
    train_items, validation_items = labelled_frames(paths, teacher, min_agreement, agreement_weighting)
    if targets != "hard":
        if labels is None:
            raise ValueError("label_frames: soft targets need the label set")
        train_items = with_targets(train_items, labels, targets, source or f"labeller {teacher}")
    return train_items, validation_items


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
    options = label_options(student, LABEL_OPTIONS)
    source = f"students.{name}.targets (labeller {teacher}/{prompt})"
    frames = label_frames(paths, teacher, **label_settings(student, LABEL_OPTIONS), labels=labels, source=source)
    why = "no labelled training items (every vote abstained, or students.*.min_agreement dropped them all)"
    trust = with_defaults(student, "students", "*")["trust_remote_code"]
    metadata = train_on_frames(
        train, frames, labels, student, model_dir, threads, teacher, prompt, why, trust_remote_code=trust
    )
    train_items, validation_items = frames
    metadata["label_options"] = options
    if "labeller" in train_items:  # students_learn_from: best (results/labels/best.parquet)
        metadata["labeller"] = str(train_items["labeller"].iloc[0])
    metadata.update(reviewed_corrections(train_items, validation_items))
    if "feedback" in train_items:  # served feedback added (results/feedback/...labels.parquet)
        metadata["feedback_examples"] = int(train_items["feedback"].sum())
    write_metadata(metadata, metadata_path)
    return metadata
