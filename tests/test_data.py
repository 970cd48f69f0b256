import pandas as pd
import pytest

from synthdistill import SynthDistillError, data

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
    items, summary = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT, "single_label")
    assert len(items) == 30
    assert set(items.columns) >= {"id", "text", "expert_label", "split"}
    assert summary["rows_kept"] == 30


def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    path = tmp_path / "d.csv"
    make_frame(40).to_csv(path, index=False)
    items, summary = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT, "single_label")
    again, _ = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT, "single_label")
    pd.testing.assert_frame_equal(items, again)
    assert summary["per_split"] == {"train": 84, "validation": 12, "test": 24}
    for split_name, counts in summary["per_split_and_label"].items():
        assert len(set(counts.values())) == 1, f"{split_name} is not stratified: {counts}"
    assert items["id"].is_unique
    other, _ = data.prepare({**SETTINGS, "path": str(path)}, LABELS, {**SPLIT, "seed": 8}, "single_label")
    assert set(other.loc[other.split == "test", "id"]) != set(items.loc[items.split == "test", "id"])


def test_drops_empty_and_duplicate_texts_with_reasons(tmp_path):
    frame = make_frame(10)
    frame.loc[3, "sentence"] = "  "
    frame.loc[5, "sentence"] = frame.loc[4, "sentence"]
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    items, summary = data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT, "single_label")
    assert len(items) == 28
    assert summary["dropped_by_reason"] == {"empty text": 1, "duplicate text": 1}
    assert {r["row"] for r in summary["dropped_rows"]} == {4, 6}


def test_unknown_label_names_file_and_row(tmp_path):
    frame = make_frame(5)
    frame.loc[7, "sentiment"] = "bullish"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SynthDistillError, match=r"d\.csv: row 8: label 'bullish'"):
        data.prepare({**SETTINGS, "path": str(path)}, LABELS, SPLIT, "single_label")


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
        data.prepare({**settings, "path": str(path)}, LABELS, SPLIT, "single_label")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(SynthDistillError, match="does not exist"):
        data.prepare({**SETTINGS, "path": str(tmp_path / "nope.csv")}, LABELS, SPLIT, "single_label")
    empty = tmp_path / "empty.csv"
    empty.write_text("sentence,sentiment\n")
    with pytest.raises(SynthDistillError, match="empty.csv: the dataset has no rows"):
        data.prepare({**SETTINGS, "path": str(empty)}, LABELS, SPLIT, "single_label")


def test_integer_labels_map_to_configured_names(tmp_path):
    frame = make_frame(10)
    frame["sentiment"] = frame["sentiment"].map({label: i for i, label in enumerate(LABELS)})
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    items, _ = data.prepare({**SETTINGS, "path": str(path), "label_names": LABELS}, LABELS, SPLIT, "single_label")
    assert set(items["expert_label"]) == set(LABELS)
    assert (items.loc[items["text"].str.startswith("negative"), "expert_label"] == "negative").all()


def test_local_hub_dataset_uses_class_label_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=LABELS)})
    frame = make_frame(10)
    records = {"sentence": frame["sentence"].tolist(), "label": [LABELS.index(s) for s in frame["sentiment"]]}
    datasets.Dataset.from_dict(records, features=features).to_parquet(str(tmp_path / "train.parquet"))
    settings = {"hub": {"name": str(tmp_path), "split": "train"}, "text_column": "sentence", "label_column": "label"}
    items, _ = data.prepare(settings, LABELS, SPLIT, "single_label")
    assert len(items) == 30
    assert (items.loc[items["text"].str.startswith("neutral"), "expert_label"] == "neutral").all()


def test_dataset_without_labels_still_splits(tmp_path):
    path = tmp_path / "d.csv"
    make_frame(10)[["sentence"]].to_csv(path, index=False)
    items, summary = data.prepare(
        {"text_column": "sentence", "label_column": None, "path": str(path)}, LABELS, SPLIT, "single_label"
    )
    assert "expert_label" not in items
    assert not summary["has_expert_labels"]
    assert sum(summary["per_split"].values()) == 30


def write(frame: pd.DataFrame, path) -> str:
    {
        ".csv": lambda: frame.to_csv(path, index=False),
        ".parquet": lambda: frame.to_parquet(path),
        ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
    }[path.suffix]()
    return str(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_ids_keep_their_source_form_and_a_missing_id_names_its_row(tmp_path, suffix):
    frame = make_frame(10)
    frame["doc"] = range(1, 31)
    settings = {**SETTINGS, "id_column": "doc", "path": write(frame, tmp_path / f"d{suffix}")}
    items, _ = data.prepare(settings, LABELS, SPLIT, "single_label")
    assert set(items["id"]) == {str(i) for i in range(1, 31)}  # not '1.0' and not 1

    frame["doc"] = frame["doc"].astype(object)
    frame.loc[16, "doc"] = None
    settings["path"] = write(frame, tmp_path / f"blank{suffix}")
    with pytest.raises(SynthDistillError, match=r"row 17: no id in column 'doc'"):
        data.prepare(settings, LABELS, SPLIT, "single_label")


def test_ids_with_leading_zeros_and_duplicates_name_rows(tmp_path):
    frame = make_frame(10)
    frame["doc"] = [f"{i:03d}" for i in range(30)]
    settings = {**SETTINGS, "id_column": "doc", "path": write(frame, tmp_path / "d.csv")}
    items, _ = data.prepare(settings, LABELS, SPLIT, "single_label")
    assert "007" in set(items["id"])
    frame.loc[[4, 9], "doc"] = "dup"
    settings["path"] = write(frame, tmp_path / "dup.csv")
    with pytest.raises(SynthDistillError, match=r"rows \[5, 10\]: id 'dup' appears more than once"):
        data.prepare(settings, LABELS, SPLIT, "single_label")


def test_control_characters_are_removed_and_listed(tmp_path):
    frame = make_frame(10)
    frame.loc[2, "sentence"] = "Sales\x00 rose\x01 sharply\ttoday"
    frame.loc[5, "sentence"] = "\x1f\x07"
    items, summary = data.prepare(
        {**SETTINGS, "path": write(frame, tmp_path / "d.parquet")}, LABELS, SPLIT, "single_label"
    )
    assert "Sales rose sharply\ttoday" in set(items["text"])
    assert not items["text"].str.contains(data.CONTROL_CHARACTERS).any()
    assert summary["changed_rows"]["control_characters_removed"] == [3, 6]
    assert {"row": 6, "id": "item-000006", "reason": "empty text"} in summary["dropped_rows"]


def test_a_text_column_of_lists_stops_naming_the_row(tmp_path):
    frame = make_frame(10)
    frame["sentence"] = [[w] for w in frame["sentence"]]
    with pytest.raises(SynthDistillError, match=r"row 1: column 'sentence' holds a ndarray, not a string"):
        data.prepare({**SETTINGS, "path": write(frame, tmp_path / "d.parquet")}, LABELS, SPLIT, "single_label")


def test_labels_that_are_not_identifiers_and_na_like_strings_survive(tmp_path):
    labels = ["no opinion", "n/a", "R&D"]
    frame = pd.DataFrame({"sentence": [f"text {i}" for i in range(30)], "sentiment": labels * 10})
    items, _ = data.prepare({**SETTINGS, "path": write(frame, tmp_path / "d.csv")}, labels, SPLIT, "single_label")
    assert sorted(items["expert_label"].unique()) == sorted(labels)  # 'n/a' is a label, not a missing value


@pytest.mark.parametrize("policy", ["truncate", "drop"])
def test_max_chars_truncates_or_drops_and_says_so(tmp_path, policy, caplog):
    frame = make_frame(10)
    frame.loc[4, "sentence"] = "x" * 500
    settings = {**SETTINGS, "path": write(frame, tmp_path / "d.csv"), "max_chars": 100, "over_max_chars": policy}
    with caplog.at_level("WARNING"):
        items, summary = data.prepare(settings, LABELS, SPLIT, "single_label")
    assert items["text"].str.len().max() <= 100
    if policy == "truncate":
        assert len(items) == 30 and summary["changed_rows"]["truncated_to_max_chars"] == [5]
        assert "truncated to max chars in 1 rows: rows [5]" in caplog.text
    else:
        assert len(items) == 29 and summary["dropped_rows"][0]["row"] == 5
        assert "dropped 1 rows (longer than dataset.max_chars=100): rows [5]" in caplog.text


def test_dropped_rows_are_in_the_log(tmp_path, caplog):
    frame = make_frame(10)
    frame.loc[[3, 8], "sentiment"] = None
    with caplog.at_level("WARNING"):
        data.prepare({**SETTINGS, "path": write(frame, tmp_path / "d.csv")}, LABELS, SPLIT, "single_label")
    assert "dropped 2 rows (missing label): rows [4, 9]" in caplog.text


def test_text_columns_are_joined_and_label_names_map_values(tmp_path):
    frame = pd.DataFrame(
        {
            "title": [f"Title {i}" for i in range(30)],
            "description": [f"about {i}" if i != 3 else None for i in range(30)],
            "y": [1, 2, 3] * 10,
        }
    )
    settings = {
        "text_columns": ["title", "description"],
        "text_separator": " - ",
        "label_column": "y",
        "label_names": {1: "World", 2: "Sports", 3: "Sci/Tech"},
        "path": write(frame, tmp_path / "news.csv"),
    }
    items, _ = data.prepare(settings, ["World", "Sports", "Sci/Tech"], SPLIT, "single_label")
    by_row = items.set_index("row")
    assert by_row.loc[1, "text"] == "Title 0 - about 0"
    assert by_row.loc[4, "text"] == "Title 3"  # the empty part is skipped, not joined as 'nan'
    assert by_row.loc[3, "expert_label"] == "Sci/Tech"
    frame.loc[7, "y"] = 9
    settings["path"] = write(frame, tmp_path / "bad.csv")
    with pytest.raises(SynthDistillError, match=r"row 8: label value '9' has no name in dataset.label_names"):
        data.prepare(settings, ["World", "Sports", "Sci/Tech"], SPLIT, "single_label")
