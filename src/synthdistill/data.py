"""Load a labelled (or unlabelled) text dataset, clean it, and split it once for the whole run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from synthdistill.errors import SynthDistillError

SPLITS = ("train", "validation", "test")
READERS = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".parquet": lambda p: pd.read_parquet(p),
    ".jsonl": lambda p: pd.read_json(p, lines=True),
}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSONL file, chosen by its extension."""
    path = Path(path)
    if not path.exists():
        raise SynthDistillError(f"dataset file {path} does not exist (config key dataset.path)")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SynthDistillError(
            f"dataset file {path}: unsupported extension {path.suffix!r}; use one of {sorted(READERS)}"
        )
    try:
        return reader(path)
    except Exception as exc:  # pandas raises many types; the user needs the file name
        raise SynthDistillError(f"dataset file {path} could not be read: {exc}") from exc


def load_hub_dataset(name: str, config: str | None, split: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Load a Hugging Face dataset (hub id or local path) and the class names of its label features."""
    import datasets

    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:
        raise SynthDistillError(
            f"dataset.hub: could not load {name!r} (config {config!r}, split {split!r}): {exc}"
        ) from exc
    class_names = {
        column: list(feature.names)
        for column, feature in ds.features.items()
        if isinstance(feature, datasets.ClassLabel)
    }
    return ds.to_pandas(), class_names


def load_dataset(settings: dict[str, Any]) -> pd.DataFrame:
    """Load the raw table described by the ``dataset`` config section."""
    hub = settings.get("hub")
    if hub:
        frame, class_names = load_hub_dataset(hub["name"], hub.get("config"), hub.get("split", "train"))
        label_column = settings.get("label_column")
        if label_column in class_names and not settings.get("label_names"):
            settings = {**settings, "label_names": class_names[label_column]}
    else:
        frame = read_table(settings["path"])
    return normalise(frame, settings, source=hub["name"] if hub else str(settings["path"]))


def normalise(frame: pd.DataFrame, settings: dict[str, Any], source: str) -> pd.DataFrame:
    """Rename the configured columns to ``id``, ``text`` and ``expert_label``; map integer labels to names."""
    text_column = settings["text_column"]
    label_column = settings.get("label_column")
    id_column = settings.get("id_column")
    for key, column in (("text_column", text_column), ("label_column", label_column), ("id_column", id_column)):
        if column is not None and column not in frame.columns:
            raise SynthDistillError(
                f"{source}: column {column!r} (config key dataset.{key}) not found; columns are {list(frame.columns)}"
            )
    if frame.empty:
        raise SynthDistillError(f"{source}: the dataset has no rows")
    out = pd.DataFrame({"row": range(1, len(frame) + 1)})
    out["id"] = frame[id_column].astype(str).to_numpy() if id_column else [f"item-{i:06d}" for i in out["row"]]
    out["text"] = frame[text_column].to_numpy()
    if label_column:
        labels = frame[label_column]
        label_names = settings.get("label_names")
        if label_names and pd.api.types.is_integer_dtype(labels):
            bad = labels[(labels < 0) | (labels >= len(label_names))]
            if len(bad):
                row = int(bad.index[0]) + 1
                raise SynthDistillError(
                    f"{source}: row {row}: integer label {bad.iloc[0]} has no name in dataset.label_names {label_names}"
                )
            labels = labels.map(lambda i: label_names[int(i)])
        out["expert_label"] = labels.to_numpy()
    if out["id"].duplicated().any():
        dup = out.loc[out["id"].duplicated(), "id"].iloc[0]
        raise SynthDistillError(f"{source}: id {dup!r} appears more than once in column {id_column!r}")
    return out


def clean(frame: pd.DataFrame, labels: list[str], source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows that cannot be used and say why; stop on a label outside the configured set.

    Duplicated texts are dropped (first one kept) because a copy in the train pool and another
    in the test split would leak the expert label into training.
    """
    frame = frame.copy()
    text = frame["text"].astype("string").str.strip()
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    reasons[text.isna() | (text == "")] = "empty text"
    frame["text"] = text
    if "expert_label" in frame:
        label = frame["expert_label"].astype("string").str.strip()
        reasons[reasons.isna() & label.isna()] = "missing label"
        unknown = label.notna() & ~label.isin(labels)
        if unknown.any():
            row = frame.loc[unknown, "row"].iloc[0]
            raise SynthDistillError(
                f"{source}: row {row}: label {label[unknown].iloc[0]!r} is not in the configured labels {labels} "
                f"({int(unknown.sum())} rows in all); fix the data or the config key labels"
            )
        frame["expert_label"] = label
    duplicated = frame["text"].duplicated() & reasons.isna()
    reasons[duplicated] = "duplicate text"
    dropped = frame.loc[reasons.notna(), ["row", "id"]].assign(reason=reasons[reasons.notna()])
    kept = frame.loc[reasons.isna()].reset_index(drop=True)
    if kept.empty:
        raise SynthDistillError(f"{source}: no usable rows left after dropping {len(dropped)} rows")
    return kept, dropped.reset_index(drop=True)


def split(frame: pd.DataFrame, test_size: float, validation_size: float, seed: int) -> pd.DataFrame:
    """Add a ``split`` column: stratified by the expert label when there is one, seeded."""
    stratify = frame["expert_label"] if "expert_label" in frame else None
    try:
        rest, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
        relative = validation_size / (1.0 - test_size)
        train, validation = train_test_split(
            rest,
            test_size=relative,
            random_state=seed,
            stratify=rest["expert_label"] if stratify is not None else None,
        )
    except ValueError as exc:
        raise SynthDistillError(
            f"cannot split {len(frame)} rows with split.test_size={test_size} and "
            f"split.validation_size={validation_size}: {exc}"
        ) from exc
    parts = [part.assign(split=name) for name, part in zip(SPLITS, (train, validation, test), strict=True)]
    return pd.concat(parts).sort_values("row").reset_index(drop=True)


def summarise(frame: pd.DataFrame, dropped: pd.DataFrame) -> dict[str, Any]:
    """Counts per split and label, and every dropped row with its reason."""
    counts: dict[str, Any] = {name: int((frame["split"] == name).sum()) for name in SPLITS}
    per_label = {}
    if "expert_label" in frame:
        table = pd.crosstab(frame["split"], frame["expert_label"])
        per_label = {s: {k: int(v) for k, v in table.loc[s].items()} for s in SPLITS if s in table.index}
    return {
        "rows_kept": len(frame),
        "rows_dropped": len(dropped),
        "has_expert_labels": "expert_label" in frame,
        "per_split": counts,
        "per_split_and_label": per_label,
        "dropped_by_reason": {k: int(v) for k, v in dropped["reason"].value_counts().items()},
        "dropped_rows": dropped.to_dict(orient="records"),
    }


def prepare(settings: dict[str, Any], labels: list[str], split_settings: dict[str, Any]) -> tuple[pd.DataFrame, dict]:
    """Load, clean and split the dataset: the single source of every split in the run."""
    source = settings["hub"]["name"] if settings.get("hub") else str(settings["path"])
    raw = load_dataset(settings)
    kept, dropped = clean(raw, labels, source)
    max_items = settings.get("max_items")
    if max_items and len(kept) > max_items:
        stratify = kept["expert_label"] if "expert_label" in kept else None
        kept, _ = train_test_split(kept, train_size=max_items, random_state=split_settings["seed"], stratify=stratify)
    items = split(kept, split_settings["test_size"], split_settings["validation_size"], split_settings["seed"])
    return items, summarise(items, dropped)


def write_splits(items: pd.DataFrame, summary: dict, outputs: dict[str, str], summary_path: str) -> None:
    """Write one Parquet file per split and the JSON summary."""
    for name in SPLITS:
        items.loc[items["split"] == name].reset_index(drop=True).to_parquet(outputs[name], index=False)
    Path(summary_path).write_text(json.dumps(summary, indent=2, default=str) + "\n")


def read_splits(paths: list[str]) -> pd.DataFrame:
    """Concatenate split files back into one frame (with its ``split`` column)."""
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
