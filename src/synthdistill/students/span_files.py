"""The spans student's training and validation spans, read from files: its train_student step."""

from __future__ import annotations

from functools import partial

import pandas as pd

from synthdistill.students.token_classification import train
from synthdistill.students.train_step import labelled_frames, train_student


def span_frames(
    paths: list[str], teacher: str, labels: list[str] | None = None, source: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) frames of text and label (span JSON): the teacher's reviewed spans (the
    votes with review.corrections applied) for both,
    so that choosing the epoch never touches expert spans; the expert baseline's own splits.
    (``labels`` and ``source`` are taken for train_student's reader signature: a span has no soft target.)"""
    train_items, validation_items = labelled_frames(paths, teacher, None, False)
    # An expert split keeps its texts without an expert answer; a vote file's are dropped already.
    return train_items.loc[train_items["label"].notna()], validation_items.loc[validation_items["label"].notna()]


# The train_student step of task spans: a spans student sets no label options and never took
# students.*.trust_remote_code.
train_from_files = partial(
    train_student,
    frames_of=span_frames,
    train=train,
    why="no training item has spans (every vote of the train split failed)",
    options=None,
    remote_code=False,
)
