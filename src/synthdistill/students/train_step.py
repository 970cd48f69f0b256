"""What the train_student step of every task kind shares: the train and validation frames read from
the label files, the check that something is left to learn, and the call of the kind's trainer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.schema import with_defaults
from synthdistill.students.training import hyperparameters_of
from synthdistill.tasks.names import EXPERT

log = logging.getLogger(__name__)

Frames = tuple[pd.DataFrame, pd.DataFrame]


def labelled_frames(
    paths: str | Path | Sequence[str | Path], teacher: str, min_agreement: float | None, agreement_weighting: bool
) -> Frames:
    """(train, validation) frames with text and label: the labelled items of a teacher's vote file (or
    of import_review's reviewed labels, which name their answer label too), or the expert baseline's
    train and validation files. The agreement options act on the teacher's training items only."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if teacher == EXPERT:
        train_items, validation_items = (pd.read_parquet(p).rename(columns={"expert_label": "label"}) for p in paths)
        return train_items, validation_items
    votes = pd.read_parquet(paths[0])
    labelled = votes.loc[votes["label"].notna()]
    train_items = labelled.loc[labelled["split"] == "train"]
    if min_agreement is not None:
        train_items = train_items.loc[train_items["agreement"] >= min_agreement]
    if agreement_weighting:
        train_items = train_items.assign(weight=train_items["agreement"])
    return train_items, labelled.loc[labelled["split"] == "validation"]


def label_options(student: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The student settings among ``keys`` that it sets (the ones choosing its training labels)."""
    return {k: student[k] for k in keys if student.get(k) is not None}


def label_settings(student: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Every setting among ``keys`` that label_frames and label_set_frames take: the student's, else the
    schema's default (students.*)."""
    settings = with_defaults(student, "students", "*")
    return {k: settings[k] for k in keys}


def reviewed_corrections(train_items: pd.DataFrame, validation_items: pd.DataFrame) -> dict[str, Any]:
    """How many items a person corrected, per split, when the labels are reviewed ones (their
    ``corrected`` column, results/review/...labels.parquet); nothing otherwise."""
    if "corrected" not in train_items:
        return {}
    return {
        "reviewed_corrections": {
            "train": int(train_items["corrected"].sum()),
            "validation": int(validation_items["corrected"].sum()),
        }
    }


def train_on_frames(
    train: Callable[..., dict[str, Any]],
    frames: Frames,
    labels: list[str],
    student: dict[str, Any],
    model_dir: str,
    threads: int,
    teacher: str,
    prompt: str,
    why: str,
    **train_options: Any,
) -> dict[str, Any]:
    """The kind's ``train`` on the frames (with ``threads`` torch threads); its metadata, which names
    the labeller (``teacher``, ``prompt``). With no training item, the error says ``why`` none is left."""
    import torch

    torch.set_num_threads(threads)
    train_items, validation_items = frames
    if train_items.empty:
        raise SynthDistillError(f"teacher {teacher} / prompt {prompt}: {why}")
    log.info("training on %d items, validating on %d", len(train_items), len(validation_items))
    metadata = train(
        train_items, validation_items, labels, student["model"], hyperparameters_of(student), model_dir, **train_options
    )
    metadata.update({"teacher": teacher, "prompt": prompt})
    return metadata
