"""Pick a spans student's training and validation spans from files, train it, write its metadata."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthdistill.students.token_classification import train
from synthdistill.students.train_step import labelled_frames, train_on_frames
from synthdistill.students.training import write_metadata


def span_frames(paths: list[str], teacher: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) frames of text and label (span JSON): the teacher's reviewed spans (the
    votes with review.corrections applied) for both,
    so that choosing the epoch never touches expert spans; the expert baseline's own splits."""
    train_items, validation_items = labelled_frames(paths, teacher, None, False)
    # An expert split keeps its texts without an expert answer; a vote file's are dropped already.
    return train_items.loc[train_items["label"].notna()], validation_items.loc[validation_items["label"].notna()]


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
    why = "no training item has spans (every vote of the train split failed)"
    metadata = train_on_frames(
        train, span_frames(paths, teacher), labels, student, model_dir, threads, teacher, prompt, why
    )
    write_metadata(metadata, metadata_path)
    return metadata
