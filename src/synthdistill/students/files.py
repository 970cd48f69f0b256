"""Pick a student's training and validation labels from files, train it, write its metadata."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pandas as pd

from synthdistill.students.targets import with_targets
from synthdistill.students.train_step import labelled_frames, train_student
from synthdistill.students.training import train

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


# The train_student step of task single_label.
train_from_files = partial(
    train_student,
    frames_of=label_frames,
    train=train,
    why="no labelled training items (every vote abstained, or students.*.min_agreement dropped them all)",
    options=LABEL_OPTIONS,
    remote_code=True,
)
