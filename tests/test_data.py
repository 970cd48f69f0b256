import pandas as pd
import pytest

from synthdistill import data
from synthdistill.errors import SynthDistillError

from .conftest import LABELS


def make_frame(n_per_label: int = 20) -> pd.DataFrame:
    rows = [
        {"sentence": f"{label} news number {i}", "sentiment": label} for label in LABELS for i in range(n_per_label)
    ]
    return pd.DataFrame(rows)


SETTINGS = {"text_column": "sentence", "label_column": "sentiment"}
SPLIT = {"test_size": 0.2, "validation_size": 0.1, "seed": 7}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_reads_every_supported_format(tmp_path, suffix):
    frame = make_frame(10)
    path = tmp_path / f"data{suffix}"
    {
        ".csv": lambda: frame.to_csv(path, index=False),
        ".tsv": lambda: frame.to_csv(path, sep="\t", index=False),
        ".parquet": lambda: frame.to_parquet(path),
        ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
    }[suffix]()
    items, summary = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT)
    assert len(items) == 30
    assert set(items.columns) >= {"id", "text", "expert_label", "split"}
    assert summary["rows_kept"] == 30


def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    path = tmp_path / "d.csv"
    make_frame(40).to_csv(path, index=False)
    items, summary = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT)
    again, _ = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT)
    pd.testing.assert_frame_equal(items, again)
    assert summary["per_split"] == {"train": 84, "validation": 12, "test": 24}
    for split_name, counts in summary["per_split_and_label"].items():
        assert len(set(counts.values())) == 1, f"{split_name} is not stratified: {counts}"
    assert items["id"].is_unique
    other, _ = data.prepare({**SETTINGS, "path": str(path)}, LABELS, {**SPLIT, "seed": 8})
    assert set(other.loc[other.split == "test", "id"]) != set(items.loc[items.split == "test", "id"])


def test_drops_empty_and_duplicate_texts_with_reasons(tmp_path):
    frame = make_frame(10)
    frame.loc[3, "sentence"] = "  "
    frame.loc[5, "sentence"] = frame.loc[4, "sentence"]
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    items, summary = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT)
    assert len(items) == 28
    assert summary["dropped_by_reason"] == {"empty text": 1, "duplicate text": 1}
    assert {r["row"] for r in summary["dropped_rows"]} == {4, 6}


def test_unknown_label_names_file_and_row(tmp_path):
    frame = make_frame(5)
    frame.loc[7, "sentiment"] = "bullish"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SynthDistillError, match=r"d\.csv: row 8: label 'bullish'"):
        data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"text_column": "body", "label_column": "sentiment"}, r"column 'body' \(config key dataset.text_column\)"),
        ({"text_column": "sentence", "label_column": "y"}, r"column 'y' \(config key dataset.label_column\)"),
    ],
)
def test_missing_column_is_named(tmp_path, settings, message):
    path = tmp_path / "d.csv"
    make_frame(5).to_csv(path, index=False)
    with pytest.raises(SynthDistillError, match=message):
        data.prepare({**settings, "path": str(path)}, LABELS, SPLIT)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(SynthDistillError, match="does not exist"):
        data.prepare({**SETTINGS, "path": str(tmp_path / "nope.csv")}, LABELS, SPLIT)
    empty = tmp_path / "empty.csv"
    empty.write_text("sentence,sentiment\n")
    with pytest.raises(SynthDistillError, match="empty.csv: the dataset has no rows"):
        data.prepare({**SETTINGS, "path": str(empty)}, LABELS, SPLIT)


def test_integer_labels_map_to_configured_names(tmp_path):
    frame = make_frame(10)
    frame["sentiment"] = frame["sentiment"].map({label: i for i, label in enumerate(LABELS)})
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    items, _ = data.prepare({**SETTINGS, "path": str(path), "label_names": LABELS}, LABELS, SPLIT)
    assert set(items["expert_label"]) == set(LABELS)
    assert (items.loc[items["text"].str.startswith("negative"), "expert_label"] == "negative").all()


def test_local_hub_dataset_uses_class_label_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=LABELS)})
    frame = make_frame(10)
    records = {"sentence": frame["sentence"].tolist(), "label": [LABELS.index(s) for s in frame["sentiment"]]}
    datasets.Dataset.from_dict(records, features=features).to_parquet(str(tmp_path / "train.parquet"))
    settings = {"hub": {"name": str(tmp_path), "split": "train"}, "text_column": "sentence", "label_column": "label"}
    items, _ = data.prepare(settings, LABELS, SPLIT)
    assert len(items) == 30
    assert (items.loc[items["text"].str.startswith("neutral"), "expert_label"] == "neutral").all()


def test_dataset_without_labels_still_splits(tmp_path):
    path = tmp_path / "d.csv"
    make_frame(10)[["sentence"]].to_csv(path, index=False)
    items, summary = data.prepare({"text_column": "sentence", "label_column": None, "path": str(path)}, LABELS, SPLIT)
    assert "expert_label" not in items
    assert not summary["has_expert_labels"]
    assert sum(summary["per_split"].values()) == 30
