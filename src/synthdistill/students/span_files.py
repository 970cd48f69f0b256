"""Pick a spans student's training and validation spans from files, train it, write its metadata."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from synthdistill.errors import SynthDistillError
from synthdistill.students.token_classification import train
from synthdistill.students.training import NOT_HYPERPARAMETERS, write_metadata
from synthdistill.tasks.names import EXPERT

log = logging.getLogger(__name__)


def span_frames(paths: list[str], teacher: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) frames of text and label (span JSON): the teacher's reviewed spans (the
    votes with review.corrections applied) for both,
    so that choosing the epoch never touches expert spans; the expert baseline's own splits."""
    if teacher == EXPERT:
        train_items, validation_items = (pd.read_parquet(p).rename(columns={"expert_label": "label"}) for p in paths)
        return train_items.loc[train_items["label"].notna()], validation_items.loc[validation_items["label"].notna()]
    votes = pd.read_parquet(paths[0])  # a vote file, or import_review's reviewed spans: both name them label
    labelled = votes.loc[votes["label"].notna()]
    return labelled.loc[labelled["split"] == "train"], labelled.loc[labelled["split"] == "validation"]


def train_from_files(
    paths: list[str],
    *,
    teacher: str,
    prompt: str,
    student: dict[str, Any],
    labels: list[str],
    model_dir: str,
    metadata_path: str,
    threads: int = 1,
    name: str | None = None,
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    train_items, validation_items = span_frames(paths, teacher)
    if train_items.empty:
        raise SynthDistillError(
            f"teacher {teacher} / prompt {prompt}: no training item has spans (every vote of the train split failed)"
        )
    log.info("training on %d items, validating on %d", len(train_items), len(validation_items))
    hyperparameters = {k: v for k, v in student.items() if k not in NOT_HYPERPARAMETERS}
    metadata = train(train_items, validation_items, labels, student["model"], hyperparameters, model_dir)
    metadata.update({"teacher": teacher, "prompt": prompt})
    write_metadata(metadata, metadata_path)
    return metadata
