"""The train_student step every task kind shares: the train and validation frames read from the label
files, the check that something is left to learn, the call of the kind's trainer, its metadata."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.schema import with_defaults
from synthdistill.students.training import hyperparameters_of, write_metadata
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
    """Every setting among ``keys`` that label_frames takes: the student's, else the schema's default
    (students.*)."""
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


def train_student(
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
    frames_of: Callable[..., Frames],
    train: Callable[..., dict[str, Any]],
    why: str,
    options: Sequence[str] | None,
    remote_code: bool,
) -> dict[str, Any]:
    """The train_student step of every kind, bound per kind with functools.partial (students.files,
    students.multi_label_training, students.span_files): one student on one label source.

    ``frames_of(paths, teacher, **settings, labels=, source=)`` reads the (train, validation) frames,
    ``settings`` being the student's settings among ``options``, else the schema's (those choosing its
    labels; None: the kind has none, and its metadata names none); ``train`` is the kind's trainer, run with ``threads``
    torch threads (``remote_code``: it takes students.*.trust_remote_code). With no training item the
    error says ``why`` none is left. ``name`` names the student in errors; the metadata names the
    labeller (``teacher``, ``prompt``) and is written to ``metadata_path``.
    """
    import torch

    source = f"students.{name}.targets (labeller {teacher}/{prompt})"
    frames = frames_of(paths, teacher, **label_settings(student, options or ()), labels=labels, source=source)
    train_items, validation_items = frames
    torch.set_num_threads(threads)
    if train_items.empty:
        raise SynthDistillError(f"teacher {teacher} / prompt {prompt}: {why}")
    log.info("training on %d items, validating on %d", len(train_items), len(validation_items))
    trust = {"trust_remote_code": with_defaults(student, "students", "*")["trust_remote_code"]} if remote_code else {}
    hyperparameters = hyperparameters_of(student)
    metadata = train(train_items, validation_items, labels, student["model"], hyperparameters, model_dir, **trust)
    metadata.update({"teacher": teacher, "prompt": prompt})
    if options is not None:
        metadata["label_options"] = label_options(student, options)
        if "labeller" in train_items:  # students_learn_from: best (results/labels/best.parquet)
            metadata["labeller"] = str(train_items["labeller"].iloc[0])
        metadata.update(reviewed_corrections(train_items, validation_items))
        if "feedback" in train_items:  # served feedback added (results/feedback/...labels.parquet)
            metadata["feedback_examples"] = int(train_items["feedback"].sum())
    write_metadata(metadata, metadata_path)
    return metadata
