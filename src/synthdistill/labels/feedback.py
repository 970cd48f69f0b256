"""Feedback from serving: texts the student deferred and the teacher's answers, back into training.

``synthdistill-serve`` appends one JSON object per deferred text to a JSON Lines file::

    {"text", "label" (the teacher's, null when it failed), "teacher", "prompt", "student",
     "student_label", "confidence", "time" (ISO 8601 UTC)}

``cascade.feedback`` names such files. On the next run, their rows for a teacher × prompt join that
teacher × prompt's train pool (:func:`merge_feedback`); rows that would leak the test split, repeat a
text, or carry no usable label are dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError

FIELDS = ("text", "label", "teacher", "prompt", "student", "student_label", "confidence", "time")
FEEDBACK_SPLIT = "train"
ID_PREFIX = "feedback-"


def feedback_record(
    text: str,
    label: str | None,
    *,
    teacher: str,
    prompt: str,
    student: str,
    student_label: str,
    confidence: float,
    time: datetime | None = None,
) -> dict[str, Any]:
    """One line of a feedback file."""
    moment = (time or datetime.now(UTC)).astimezone(UTC)
    return {
        "text": text,
        "label": label,
        "teacher": teacher,
        "prompt": prompt,
        "student": student,
        "student_label": student_label,
        "confidence": float(confidence),
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def iter_feedback(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-blank line; a line that is not a feedback object is an
    error naming the file and line (a half-written last line from a killed server is skipped)."""
    path = Path(path)
    if not path.exists():
        raise SynthDistillError(f"cascade.feedback: {path} does not exist")
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: the writer was killed mid-line
                return
            raise SynthDistillError(f"{path}: line {number} is not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise SynthDistillError(f"{path}: line {number} is not a JSON object")
        missing = [name for name in ("text", "label", "teacher", "prompt") if name not in record]
        if missing:
            raise SynthDistillError(f"{path}: line {number} has no {missing[0]!r}; a feedback line has {FIELDS}")
        if not isinstance(record["text"], str):
            raise SynthDistillError(f"{path}: line {number}: 'text' is not a string")
        yield number, record


def feedback_pairs(paths: Iterable[str | Path]) -> set[tuple[str, str]]:
    """Every (teacher, prompt) the files hold rows for: the label sources whose students retrain."""
    return {(str(r["teacher"]), str(r["prompt"])) for path in paths for _, r in iter_feedback(path)}


def feedback_frame(paths: Iterable[str | Path], teacher: str, prompt: str) -> pd.DataFrame:
    """The rows of ``teacher`` × ``prompt`` from every file, in file and line order, with their source."""
    rows = [
        {**{name: record.get(name) for name in FIELDS}, "source": f"{path}:{number}"}
        for path in paths
        for number, record in iter_feedback(path)
        if record["teacher"] == teacher and record["prompt"] == prompt
    ]
    return pd.DataFrame(rows, columns=[*FIELDS, "source"])


def feedback_id(text: str) -> str:
    """A stable id for a served text (the same text always gets the same id)."""
    return ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def merge_feedback(
    labels: pd.DataFrame,
    feedback: pd.DataFrame,
    test_texts: Iterable[str],
    label_set: list[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``labels`` (a teacher × prompt's reviewed labels) with the usable feedback rows appended to the
    train pool, and a summary counting every dropped row by reason.

    Dropped: texts of the frozen test split (training on them would leak into the evaluation), rows
    whose teacher label is null or outside the label set, texts already among the labelled items,
    and repeats within the feedback (the latest answer for a text is kept).
    """
    dropped: Counter[str] = Counter()
    test = set(test_texts)
    known = set(labels["text"])
    keep = []
    for row in feedback.itertuples(index=False):
        if row.text in test:
            dropped["test_split_text"] += 1
        elif row.label is None or pd.isna(row.label):
            dropped["teacher_label_null"] += 1
        elif row.label not in label_set:
            dropped["label_not_in_label_set"] += 1
        elif row.text in known:
            dropped["already_labelled"] += 1
        else:
            keep.append(row)
    by_text: dict[str, Any] = {}
    for row in keep:
        if row.text in by_text:
            dropped["duplicate_text"] += 1
        by_text[row.text] = row  # the latest answer wins
    added = pd.DataFrame(
        {
            "id": [feedback_id(text) for text in by_text],
            "split": FEEDBACK_SPLIT,
            "text": list(by_text),
            "label": [row.label for row in by_text.values()],
            "voted_label": [row.label for row in by_text.values()],
            "vote_status": "voted",
            "agreement": 1.0,
            "corrected": False,
            "feedback": True,
        }
    )
    merged = pd.concat([labels.assign(feedback=False), added], ignore_index=True)
    summary = {
        "feedback_rows": len(feedback),
        "added_to_train_pool": len(added),
        "dropped": dict(sorted(dropped.items())),
        "dropped_total": sum(dropped.values()),
        "train_pool_before": int(((labels["split"] == "train") & labels["label"].notna()).sum()),
        "train_pool_after": int(((merged["split"] == "train") & merged["label"].notna()).sum()),
    }
    return merged, summary


def write_merged_labels(
    labels_path: str,
    feedback_paths: list[str],
    test_path: str,
    teacher: str,
    prompt: str,
    label_set: list[str],
    labels_out: str,
    summary_out: str,
) -> dict[str, Any]:
    """The add_feedback rule: the reviewed labels plus usable feedback, and the summary of what was dropped."""
    labels = pd.read_parquet(labels_path)
    feedback = feedback_frame(feedback_paths, teacher, prompt)
    test_texts = pd.read_parquet(test_path, columns=["text"])["text"]
    merged, summary = merge_feedback(labels, feedback, test_texts, label_set)
    summary = {"teacher": teacher, "prompt": prompt, "files": list(feedback_paths), **summary}
    merged.to_parquet(labels_out, index=False)
    Path(summary_out).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
