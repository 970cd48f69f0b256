"""Pick a student's training and validation labels from files, train it, write its metadata."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from synthdistill.training import train, write_metadata

log = logging.getLogger(__name__)
EXPERT = "expert"


def label_frames(paths: list[str], teacher: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) frames with text and label.

    For a teacher, both come from its votes: validation uses the synthetic labels too, so model
    selection never touches expert labels. For the expert baseline, the expert labels are used.
    """
    if teacher == EXPERT:
        train_items, validation_items = (pd.read_parquet(p) for p in paths)
        rename = {"expert_label": "label"}
        return train_items.rename(columns=rename), validation_items.rename(columns=rename)
    votes = pd.read_parquet(paths[0])
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
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    train_items, validation_items = label_frames(list(paths), teacher)
    if train_items.empty:
        raise ValueError(f"teacher {teacher} / prompt {prompt}: no labelled training items (every vote abstained)")
    log.info("training on %d items, validating on %d", len(train_items), len(validation_items))
    hyperparameters = {k: v for k, v in student.items() if k not in ("model", "trust_remote_code")}
    metadata = train(
        train_items,
        validation_items,
        labels,
        student["model"],
        hyperparameters,
        model_dir,
        trust_remote_code=student.get("trust_remote_code", False),
    )
    metadata.update({"teacher": teacher, "prompt": prompt})
    write_metadata(metadata, metadata_path)
    return metadata
