"""Load a labelled (or unlabelled) text dataset, clean it, and split it once for the whole run."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.schema import defaults
from synthdistill.tasks import get_task
from synthdistill.tasks.names import GOLD_DEV_SPLIT, SHOTS_SPLIT, SPLITS

log = logging.getLogger(__name__)

# Characters that are no text: spreadsheets refuse them (openpyxl's ILLEGAL_CHARACTERS_RE) and an
# LLM gains nothing from them. Tab, newline and carriage return stay.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _train_test_split(*arrays: Any, **options: Any) -> Any:
    # scikit-learn is imported here, not at the top: every vote, ensemble and prompt job reads the
    # splits through this module, and the import cost each of them a second.
    from sklearn.model_selection import train_test_split

    return train_test_split(*arrays, **options)


def read_table(path: str | Path, string_columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSONL file, chosen by its extension.

    ``string_columns`` of a CSV or TSV are read as text, so that an id such as ``007`` or ``17``
    keeps its source form instead of becoming a number (or ``17.0`` next to a blank cell).
    """
    path = Path(path)
    if not path.exists():
        raise SynthDistillError(f"dataset file {path} does not exist (config key dataset.path)")
    suffix = path.suffix.lower()
    as_text = dict.fromkeys(string_columns or [], str)
    readers = {
        ".csv": lambda: pd.read_csv(path, dtype=as_text, keep_default_na=False, na_values=[""]),
        ".tsv": lambda: pd.read_csv(path, sep="\t", dtype=as_text, keep_default_na=False, na_values=[""]),
        ".parquet": lambda: pd.read_parquet(path),
        ".jsonl": lambda: pd.read_json(path, lines=True, dtype=False),
    }
    if suffix not in readers:
        raise SynthDistillError(
            f"dataset file {path}: unsupported extension {path.suffix!r}; use one of {sorted(readers)}"
        )
    try:
        return readers[suffix]()
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


def text_columns(settings: dict[str, Any]) -> list[str]:
    """The column(s) a text is made of: ``text_columns`` joined, or the one ``text_column``."""
    return list(settings.get("text_columns") or [settings["text_column"]])


def load_dataset(settings: dict[str, Any], task: str) -> pd.DataFrame:
    """Load the raw table described by the ``dataset`` config section."""
    hub = settings.get("hub")
    if hub:
        frame, class_names = load_hub_dataset(hub["name"], hub.get("config"), hub.get("split", "train"))
        label_column = settings.get("label_column")
        if label_column in class_names and not settings.get("label_names"):
            settings = {**settings, "label_names": class_names[label_column]}
    else:
        texts = [] if settings.get("tokens_column") else text_columns(settings)
        string_columns = [c for c in (settings.get("id_column"), *texts) if c]
        frame = read_table(settings["path"], string_columns)
    return normalise(frame, settings, source=hub["name"] if hub else str(settings["path"]), task=task)


def _row_of(frame: pd.DataFrame, mask: pd.Series) -> int:
    """The 1-based source row of the first item the mask selects."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def source_ids(values: pd.Series, column: str, source: str) -> pd.Series:
    """Ids as strings in their source form: ``17`` stays ``17`` (not ``17.0`` because another cell
    is blank), ``007`` stays ``007``. A missing or duplicated id stops the run naming its rows."""
    missing = values.isna() | (values.astype("string").str.strip() == "")
    if missing.any():
        rows = (np.flatnonzero(missing.to_numpy()) + 1).tolist()
        raise SynthDistillError(
            f"{source}: row {rows[0]}: no id in column {column!r} (config key dataset.id_column; "
            f"{len(rows)} rows in all: {rows[:10]})"
        )
    if pd.api.types.is_float_dtype(values) and (values == values.round()).all():
        values = values.astype("Int64")  # a blank cell made the integer column float
    ids = values.map(str).str.strip()
    # Ids go back and forth through spreadsheets and review tools, which cannot hold these.
    controls = ids.str.contains(CONTROL_CHARACTERS)
    if controls.any():
        raise SynthDistillError(
            f"{source}: row {_row_of(values.to_frame(), controls)}: id {ids[controls].iloc[0]!r} in column "
            f"{column!r} holds control characters; ids are keys a reviewer types back, so fix them at the source"
        )
    duplicated = ids.duplicated(keep=False)
    if duplicated.any():
        first = ids[duplicated].iloc[0]
        rows = (np.flatnonzero((ids == first).to_numpy()) + 1).tolist()
        raise SynthDistillError(f"{source}: rows {rows}: id {first!r} appears more than once in column {column!r}")
    return ids


def source_texts(frame: pd.DataFrame, columns: list[str], separator: str, source: str) -> pd.Series:
    """The text of every row: a string column, or several joined with ``separator`` (empty parts
    skipped). A cell that holds a list, a number or anything else is an error naming the row,
    never its repr sent to the LLM."""
    for column in columns:
        values = frame[column]
        bad = values.map(lambda v: not (isinstance(v, str) or v is None or (isinstance(v, float) and np.isnan(v))))
        if bad.any():
            row = _row_of(frame, bad)
            kind = type(values[bad].iloc[0]).__name__
            raise SynthDistillError(
                f"{source}: row {row}: column {column!r} holds a {kind}, not a string "
                "(config key dataset.text_column / dataset.text_columns must name text columns)"
            )
    if len(columns) == 1:
        return frame[columns[0]].astype("string")
    parts = frame[columns].astype("string").apply(lambda column: column.str.strip())
    return parts.apply(lambda row: separator.join(p for p in row if isinstance(p, str) and p), axis=1).astype("string")


def expert_labels(labels: pd.Series, label_names: list[str] | dict | None, source: str) -> pd.Series:
    """Expert labels as names. ``label_names`` maps stored values to names: a list by index
    (0, 1, ...) or a mapping from value to name (``{1: World, 2: Sports}``)."""
    if not label_names:
        return labels.map(lambda v: v if isinstance(v, str) or pd.isna(v) else str(v))
    if isinstance(label_names, list):
        mapping = {str(i): name for i, name in enumerate(label_names)}
    else:
        mapping = {str(value): name for value, name in label_names.items()}

    def key(value: Any) -> Any:
        if pd.isna(value):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    keys = labels.map(key)
    unknown = keys.notna() & ~keys.isin(list(mapping))
    if unknown.any():
        raise SynthDistillError(
            f"{source}: row {_row_of(labels.to_frame(), unknown)}: label value {keys[unknown].iloc[0]!r} has no name "
            f"in dataset.label_names {label_names}"
        )
    return keys.map(mapping)


def normalise(frame: pd.DataFrame, settings: dict[str, Any], source: str, task: str) -> pd.DataFrame:
    """Rename the configured columns to ``id``, ``text`` and ``expert_label``; map stored labels to names."""
    label_column = settings.get("label_column")
    id_column = settings.get("id_column")
    tokens_form = get_task(task).supports("bio_tags") and bool(settings.get("tokens_column"))
    columns = (
        []
        if tokens_form
        else [("text_columns" if settings.get("text_columns") else "text_column", c) for c in text_columns(settings)]
    )
    for key, column in (*columns, ("label_column", label_column), ("id_column", id_column)):
        if column is not None and column not in frame.columns:
            raise SynthDistillError(
                f"{source}: column {column!r} (config key dataset.{key}) not found; columns are {list(frame.columns)}"
            )
    if frame.empty:
        raise SynthDistillError(f"{source}: the dataset has no rows")
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({"row": range(1, len(frame) + 1)})
    out["id"] = (
        source_ids(frame[id_column], id_column, source).to_numpy()
        if id_column
        else [f"item-{i:06d}" for i in out["row"]]
    )
    if tokens_form:
        # The tokens + BIO tags form: the text is the tokens joined by single spaces.
        from synthdistill.data.spans import bio_columns

        texts, answers = bio_columns(frame, settings, source)
        out["text"] = pd.array(texts, dtype="string")
        if answers is not None:
            out["expert_label"] = answers
    else:
        out["text"] = source_texts(frame, text_columns(settings), settings["text_separator"], source).to_numpy()
    if label_column and get_task(task).supports("label_names"):
        out["expert_label"] = expert_labels(frame[label_column], settings.get("label_names"), source).to_numpy()
    elif label_column:
        # Lists, dicts or JSON text as stored; clean() turns them into the task's canonical JSON.
        out["expert_label"] = frame[label_column].to_numpy()
    return out


def expert_single_labels(frame: pd.DataFrame, labels: list[str], settings: dict[str, Any], source: str) -> pd.Series:
    """single_label's expert answers: the label names, trimmed (missing where a row has none); a label
    outside ``labels`` stops naming its row."""
    label = frame["expert_label"].astype("string").str.strip()
    unknown = label.notna() & ~label.isin(labels)
    if unknown.any():
        row = frame.loc[unknown, "row"].iloc[0]
        raise SynthDistillError(
            f"{source}: row {row}: label {label[unknown].iloc[0]!r} is not in the configured labels {labels} "
            f"({int(unknown.sum())} rows in all); fix the data, the config key labels or dataset.label_names"
        )
    return label


def single_label_counts(frame: pd.DataFrame, splits: list[str]) -> dict[str, dict[str, int]]:
    """Texts per split and expert label (summary.json)."""
    table = pd.crosstab(frame["split"], frame["expert_label"])
    return {s: {k: int(v) for k, v in table.loc[s].items()} for s in splits if s in table.index}


def clean(
    frame: pd.DataFrame,
    labels: list[str],
    source: str,
    max_chars: int | None,
    over_max_chars: str,
    task: str,
    settings: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[int]]]:
    """Drop rows that cannot be used and say why; stop on a label outside the configured set.

    Control characters are removed from texts, and texts longer than ``max_chars`` are truncated
    or dropped (``over_max_chars``); the rows each change touched are returned by name.
    Duplicated texts are dropped (first one kept) because a copy in the train pool and another
    in the test split would leak the expert label into training.
    """
    frame = frame.copy()
    text = frame["text"].astype("string")
    has_control = text.str.contains(CONTROL_CHARACTERS, na=False)
    if get_task(task).supports("text_offsets"):
        # Span offsets count the characters of the text as stored: a control character becomes a
        # space and nothing is stripped, so that every expert span still covers its words.
        text = text.str.replace(CONTROL_CHARACTERS, " ", regex=True)
    else:
        text = text.str.replace(CONTROL_CHARACTERS, "", regex=True).str.strip()
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    reasons[text.isna() | (text.str.strip() == "")] = "empty text"
    too_long = (text.str.len() > max_chars).fillna(False) if max_chars else pd.Series(False, index=frame.index)
    if over_max_chars == "drop":
        reasons[reasons.isna() & too_long] = f"longer than dataset.max_chars={max_chars}"
    elif too_long.any():
        text[too_long] = text[too_long].str.slice(0, max_chars)
    frame["text"] = text
    if "expert_label" in frame:
        expert = get_task(task).step("expert_answers")
        frame["expert_label"] = expert(frame=frame, labels=labels, settings=settings, source=source)
        reasons[reasons.isna() & frame["expert_label"].isna()] = "missing label"
    duplicated = frame["text"].duplicated() & reasons.isna()
    reasons[duplicated] = "duplicate text"
    dropped = frame.loc[reasons.notna(), ["row", "id"]].assign(reason=reasons[reasons.notna()])
    kept = frame.loc[reasons.isna()].reset_index(drop=True)
    changed = {
        "control_characters_removed": frame.loc[has_control, "row"].astype(int).tolist(),
        "truncated_to_max_chars": (frame.loc[too_long, "row"].astype(int).tolist() if over_max_chars != "drop" else []),
    }
    if kept.empty:
        by_reason = dropped["reason"].value_counts().to_dict()
        raise SynthDistillError(
            f"{source}: no usable rows left: every row was dropped ({by_reason}); "
            f"rows {dropped['row'].astype(int).tolist()[:10]} ... are listed with their reason in the log"
        )
    return kept, dropped.reset_index(drop=True), changed


def split(
    frame: pd.DataFrame, test_size: float, validation_size: float, seed: int, stratified: bool = True
) -> pd.DataFrame:
    """Add a ``split`` column: stratified by the expert label when there is one, seeded."""
    stratify = _strata(frame, stratified)
    try:
        rest, test = _train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
        relative = validation_size / (1.0 - test_size)
        train, validation = _train_test_split(
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


def _strata(frame: pd.DataFrame, stratified: bool) -> pd.Series | None:
    """What a split of ``frame`` is stratified by: the expert label, when there is one and the task
    stratifies (``stratified``)."""
    return frame["expert_label"] if "expert_label" in frame and stratified else None


def _train_pool(frame: pd.DataFrame, no_labels: str) -> pd.DataFrame:
    """The train split's items, which an extra split is carved from; ``no_labels`` is the error when
    the dataset has no expert labels to carve it by."""
    if "expert_label" not in frame:
        raise SynthDistillError(no_labels)
    return frame.loc[frame["split"] == "train"]


def _moved(frame: pd.DataFrame, index: pd.Index, name: str) -> pd.DataFrame:
    """A copy of ``frame`` with the items at ``index`` moved into split ``name``."""
    frame = frame.copy()
    frame.loc[index, "split"] = name
    return frame


def carve_shots(frame: pd.DataFrame, per_label: int, seed: int) -> pd.DataFrame:
    """Move up to ``per_label`` train-pool items of each expert label into the ``shots`` split: the
    few-shot example pool, which is then neither annotated, trained on, validated on nor tested on."""
    if not per_label:
        return frame
    train = _train_pool(
        frame,
        "split.shots_per_label: the shots split is carved from expert-labelled data, but the dataset has no "
        "labels (dataset.label_column); give the examples as a file (prompts.<name>.examples.path) instead",
    )
    shuffled = train.sample(frac=1.0, random_state=seed)
    return _moved(frame, shuffled.groupby("expert_label", sort=False).head(per_label).index, SHOTS_SPLIT)


def carve_gold_dev(frame: pd.DataFrame, size: int | None, seed: int) -> pd.DataFrame:
    """Move ``size`` train-pool items (stratified by expert label, seeded) into the ``gold_dev``
    split: expert labels that rank the labellers (select_labeller). Taken from the train pool, so
    the test split and the validation split are exactly what they would be without it."""
    if not size:
        return frame
    train = _train_pool(
        frame,
        "split.gold_dev_size: the gold dev split needs expert labels, but the dataset has none (dataset.label_column)",
    )
    if size >= len(train):
        raise SynthDistillError(
            f"split.gold_dev_size={size}: the train pool has only {len(train)} items; leave most of them for training"
        )
    counts = train["expert_label"].value_counts()
    try:
        gold, _ = _train_test_split(
            train, train_size=size, random_state=seed, stratify=train["expert_label"] if counts.min() >= 2 else None
        )
    except ValueError as exc:
        raise SynthDistillError(f"split.gold_dev_size={size}: cannot draw it from the train pool: {exc}") from exc
    return _moved(frame, gold.index, GOLD_DEV_SPLIT)


def split_names(frame: pd.DataFrame) -> list[str]:
    """The run's splits, then any extra split (gold dev, ...) the frame has."""
    return [*SPLITS, *sorted(set(frame["split"]) - set(SPLITS))]


def summarise(frame: pd.DataFrame, dropped: pd.DataFrame, changed: dict[str, list[int]], task: str) -> dict[str, Any]:
    """Counts per split and label (multi_label: texts per label; spans: expert spans per split and
    type), every dropped row with its reason, and the rows whose text was changed."""
    names = split_names(frame)
    counts: dict[str, Any] = {name: int((frame["split"] == name).sum()) for name in names}
    per_label = get_task(task).step("label_counts")(frame=frame, splits=names) if "expert_label" in frame else {}
    return {
        "rows_kept": len(frame),
        "rows_dropped": len(dropped),
        "has_expert_labels": "expert_label" in frame,
        "per_split": counts,
        "per_split_and_label": per_label,
        "dropped_by_reason": {k: int(v) for k, v in dropped["reason"].value_counts().items()},
        "dropped_rows": dropped.to_dict(orient="records"),
        "changed_rows": changed,
    }


def log_changes(dropped: pd.DataFrame, changed: dict[str, list[int]], source: str) -> None:
    """Say in the log what summary.json lists, so a dropped or changed row is not only in a file."""
    for reason, rows in dropped.groupby("reason")["row"]:
        shown = rows.astype(int).tolist()
        log.warning("%s: dropped %d rows (%s): rows %s%s", source, len(shown), reason, shown[:20], _more(shown))
    for change, rows in changed.items():
        if rows:
            log.warning(
                "%s: %s in %d rows: rows %s%s", source, change.replace("_", " "), len(rows), rows[:20], _more(rows)
            )


def _more(rows: list[int]) -> str:
    return f" and {len(rows) - 20} more (all in summary.json)" if len(rows) > 20 else ""


def prepare(
    settings: dict[str, Any], labels: list[str], split_settings: dict[str, Any], task: str
) -> tuple[pd.DataFrame, dict]:
    """Load, clean and split the dataset: the single source of every split in the run. Splits are
    stratified by the expert label where the task supports it (a JSON answer is no stratum)."""
    settings = {**defaults("dataset"), **settings}  # an explicit null (max_chars: no cap) stays null
    source = settings["hub"]["name"] if settings.get("hub") else str(settings["path"])
    raw = load_dataset(settings, task)
    kept, dropped, changed = clean(
        raw, labels, source, settings["max_chars"], settings["over_max_chars"], task=task, settings=settings
    )
    log_changes(dropped, changed, source)
    max_items, seed = settings.get("max_items"), split_settings["seed"]
    stratified = get_task(task).supports("stratified_split")
    if max_items and len(kept) > max_items:
        kept, _ = _train_test_split(kept, train_size=max_items, random_state=seed, stratify=_strata(kept, stratified))
    items = split(kept, split_settings["test_size"], split_settings["validation_size"], seed, stratified=stratified)
    items = carve_gold_dev(items, split_settings.get("gold_dev_size"), seed)
    items = carve_shots(items, int(split_settings.get("shots_per_label") or 0), seed)
    return items, summarise(items, dropped, changed, task)


def write_splits(items: pd.DataFrame, summary: dict, outputs: Any, summary_path: str) -> None:
    """Write one Parquet file per split ``outputs`` names (train, validation, test, and gold_dev
    when configured) and the JSON summary."""
    for name in [n for n in split_names(items) if n in outputs.keys()]:
        items.loc[items["split"] == name].reset_index(drop=True).to_parquet(outputs[name], index=False)
    Path(summary_path).write_text(json.dumps(summary, indent=2, default=str) + "\n")


def read_splits(paths: list[str]) -> pd.DataFrame:
    """Concatenate split files back into one frame (with its ``split`` column)."""
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
