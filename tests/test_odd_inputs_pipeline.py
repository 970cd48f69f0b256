"""Issue 17 regressions through real Snakemake runs with the embedded llama.cpp teacher: label names
that are not identifiers, numeric ids, control characters and formula payloads in texts go from
prepare_data to the review files and back, and a bad id stops the run before any LLM call."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import openpyxl
import pandas as pd
import pytest

from .pipeline_helpers import TINY_CONFIG, make_workdir, snakemake, write_config

pytestmark = pytest.mark.slow

ODD = {"positive": "R&D", "negative": "no opinion", "neutral": "n/a"}
LABELS = list(ODD.values())


def odd_dataset(workdir) -> pd.DataFrame:
    frame = pd.read_csv(workdir / "data" / "demo" / "financial_news_sentiment.csv")
    frame = frame.sample(40, random_state=3).reset_index(drop=True)
    frame["label"] = frame["label"].map(ODD)
    frame.insert(0, "doc", range(101, 141))  # numeric ids, as many exports have them
    frame.loc[0, "text"] = '=HYPERLINK("http://evil.example","click") ' + frame.loc[0, "text"]
    frame.loc[1, "text"] = "Sales\x00 rose\x01 " + frame.loc[1, "text"]
    frame.loc[2, "text"] = frame.loc[2, "text"] + " and more" * 25_000  # 200,000+ characters
    return frame


def config_for(path: str, **extra) -> dict:
    return {
        **TINY_CONFIG,
        "labels": LABELS,
        "dataset": {
            "path": path,
            "text_column": "text",
            "label_column": "label",
            "id_column": "doc",
            "max_chars": 400,
        },
        "prompts": {"label": TINY_CONFIG["prompts"]["label"]},
        "self_consistency": {"iterations": 1},
        **extra,
    }


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("odd"))
    odd_dataset(workdir).to_csv(workdir / "data" / "odd.csv", index=False)
    config = write_config(workdir / "config" / "odd.yaml", config_for("data/odd.csv"))
    # Targets go first: --configfile takes every argument after it.
    snakemake(workdir, "results/review/smollm2/label.review.xlsx", "--configfile", str(config))
    train = pd.read_parquet(workdir / "results" / "data" / "train.parquet")
    item = train.iloc[0]
    new_label = next(label for label in LABELS if label != item["expert_label"])
    # The reviewer types the id as it is in their own file: 117, not 117.0 or "item-000017".
    pd.DataFrame({"id": [int(item["id"])], "label": [new_label], "reviewer": ["ana"]}).to_csv(
        workdir / "data" / "corrections.csv", index=False
    )
    config = write_config(
        workdir / "config" / "odd.yaml", config_for("data/odd.csv", review={"corrections": "data/corrections.csv"})
    )
    snakemake(
        workdir,
        "results/review/smollm2/label.labels.parquet",
        "results/evaluation/teachers/smollm2/label.json",
        "--configfile",
        str(config),
    )
    return workdir, item, new_label


def test_ids_keep_their_source_form_through_every_stage(odd_run):
    workdir, item, new_label = odd_run
    votes = pd.read_parquet(workdir / "results" / "votes" / "smollm2" / "label.parquet")
    assert set(votes["id"]) <= {str(i) for i in range(101, 141)}
    audit = pd.read_csv(workdir / "results" / "review" / "smollm2" / "label.audit.csv", dtype=str)
    assert audit[["id", "new_label", "reviewer"]].values.tolist() == [[item["id"], new_label, "ana"]]
    labels = pd.read_parquet(workdir / "results" / "review" / "smollm2" / "label.labels.parquet")
    assert labels.set_index("id").loc[item["id"], "label"] == new_label


def test_labels_that_are_not_identifiers_reach_every_artifact(odd_run):
    workdir, _, _ = odd_run
    review = workdir / "results" / "review" / "smollm2"
    table = pd.read_csv(review / "label.review.csv", keep_default_na=False)
    assert {f"votes_{label}" for label in LABELS} <= set(table.columns)
    choices = [c.get("value") for c in ET.parse(review / "label.label_studio.xml").iter("Choice")]
    assert choices == LABELS
    report = (workdir / "results" / "evaluation" / "teachers" / "smollm2" / "label.json").read_text()
    assert all(label in report for label in LABELS)


def test_texts_are_cleaned_and_inert_in_the_spreadsheet(odd_run):
    workdir, _, _ = odd_run
    items = pd.concat(pd.read_parquet(p) for p in (workdir / "results" / "data").glob("*.parquet"))
    assert not items["text"].str.contains("[\x00\x01]").any()
    sheet = openpyxl.load_workbook(workdir / "results" / "review" / "smollm2" / "label.review.xlsx").active
    assert not [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_a_very_long_text_reaches_the_teacher_cut_to_max_chars(odd_run):
    workdir, _, _ = odd_run
    prompts = pd.read_parquet(workdir / "results" / "prompts" / "smollm2" / "label.parquet")
    assert prompts["text"].str.len().max() == 400  # the 200,000-character text, truncated
    summary = (workdir / "results" / "data" / "summary.json").read_text()
    assert '"truncated_to_max_chars": [\n      3\n    ]' in summary
    assert "truncated to max chars in 1 rows: rows [3]" in (workdir / "logs" / "prepare_data.log").read_text()


def test_a_blank_id_stops_prepare_data_naming_the_row(tmp_path):
    workdir = make_workdir(tmp_path)
    frame = odd_dataset(workdir)
    frame["doc"] = frame["doc"].astype(object)
    frame.loc[6, "doc"] = None
    frame.to_csv(workdir / "data" / "blank.csv", index=False)
    config = write_config(workdir / "config" / "blank.yaml", config_for("data/blank.csv"))
    result = snakemake(workdir, "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert "data/blank.csv: row 7: no id in column 'doc'" in (workdir / "logs" / "prepare_data.log").read_text()
    assert not (workdir / "results" / "annotations").exists()
