"""Few-shot examples: the examples file's errors, the shots split kept out of every other split,
nearest examples by real MiniLM embeddings, and what the model reads (turns or {examples})."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import cache_key
from synthdistill.annotation.examples import nearest_examples, read_examples_file
from synthdistill.annotation.prompt_files import build_prompt_frame
from synthdistill.annotation.requests import build_request
from synthdistill.data import prepare
from synthdistill.settings import check_config
from synthdistill.tasks.names import SPLITS

from .conftest import LABELS, MINILM, REPO, SMOLLM2

DEMO = REPO / "data" / "demo" / "financial_news_sentiment.csv"
TEACHER = {"backend": "llama_cpp", "model_path": SMOLLM2}
POOL = pd.DataFrame(
    {
        "id": ["p1", "p2", "p3", "p4"],
        "text": [
            "Quarterly profit doubled and the shares hit a record high.",
            "The bank reported heavy losses and cut its dividend.",
            "The company will publish its annual report on Friday.",
            "Revenue grew strongly thanks to record orders.",
        ],
        "label": ["positive", "negative", "neutral", "positive"],
        "reason": [None, None, None, None],
    }
)


@pytest.mark.parametrize(
    "content, message",
    [
        ("text,label\nGood results,positive\n,negative\n", r"examples.csv: row 2: empty text"),
        ("text,label\nGood results,positive\nBad,bearish\n", r"examples.csv: row 2: label 'bearish' is not one of"),
        ("text,sentiment\nGood results,positive\n", r"examples.csv has no column 'label'"),
    ],
)
def test_a_bad_examples_file_names_file_and_row(tmp_path, content, message):
    path = tmp_path / "examples.csv"
    path.write_text(content)
    with pytest.raises(SynthDistillError, match=message):
        read_examples_file(path, LABELS, "prompts.fewshot.examples")


def test_a_jsonl_examples_file_keeps_its_reasons(tmp_path):
    path = tmp_path / "examples.jsonl"
    rows = [
        {"text": "Profit rose.", "label": "positive", "reason": "higher profit"},
        {"text": "Fine.", "label": "neutral"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    pool = read_examples_file(path, LABELS, "x")
    assert pool["label"].tolist() == ["positive", "neutral"] and pool["reason"].iloc[0] == "higher profit"


def test_the_shots_split_is_carved_from_the_train_pool_and_kept_out_of_every_split():
    settings = {"path": str(DEMO), "text_column": "text", "label_column": "label"}
    split = {"test_size": 0.2, "validation_size": 0.15, "seed": 42}
    plain, _ = prepare(settings, LABELS, split, "single_label")
    items, summary = prepare(settings, LABELS, {**split, "shots_per_label": 3}, "single_label")
    shots = items.loc[items["split"] == "shots"]
    assert shots["expert_label"].value_counts().to_dict() == dict.fromkeys(LABELS, 3)
    assert summary["per_split"]["shots"] == 9
    # Taken from the train pool only: validation and test are the same items as without shots.
    for name in ("validation", "test"):
        assert set(items.loc[items["split"] == name, "id"]) == set(plain.loc[plain["split"] == name, "id"])
    assert set(shots["id"]) <= set(plain.loc[plain["split"] == "train", "id"])
    others = items.loc[items["split"].isin(SPLITS)]
    assert not set(shots["id"]) & set(others["id"]) and not set(shots["text"]) & set(others["text"])
    assert len(others) + len(shots) == len(plain)


@pytest.mark.slow
def test_nearest_examples_are_the_most_similar_by_minilm_embeddings():
    texts = ["Net profit jumped to a record on strong sales.", "Revenue grew strongly thanks to record orders."]
    chosen = nearest_examples(texts, POOL, 2, False, LABELS, MINILM)
    # The profit text's nearest is the profit example, shown last (next to the text); the second text
    # never sees itself.
    assert chosen[0][-1] == 0 and len(chosen[0]) == 2
    assert 3 not in chosen[1] and len(chosen[1]) == 2
    balanced = nearest_examples(texts[:1], POOL, 1, True, LABELS, MINILM)[0]
    assert sorted(POOL.loc[balanced, "label"]) == sorted(LABELS)


def items() -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "b"], "split": ["train", "test"], "text": ["Sales fell sharply.", "{text} ok"]})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["label", "cot_json", "label_scores"])
def test_examples_are_shown_as_turns_and_the_artifact_shows_what_the_model_read(kind):
    template = REPO / "config" / "prompts" / ("cot_json.txt" if kind == "cot_json" else "label.txt")
    prompt = {"kind": kind, "examples": {"source": "file", "k": 2}, "calibrate": kind == "label_scores"}
    pool = POOL.assign(reason=["profit doubled", None, None, None])
    frame = build_prompt_frame(items(), str(template), TEACHER, prompt, LABELS, pool)
    messages = json.loads(frame["messages"].iloc[0])
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert POOL["text"].iloc[0] in messages[0]["content"] and "Sales fell sharply." in messages[-1]["content"]
    expected = {"label": "positive", "cot_json": '{"reason": "profit doubled", "label": "positive"}'}
    assert messages[1]["content"] == expected.get(kind, "positive")
    assert POOL["text"].iloc[1] in frame["rendered"].iloc[0]  # the chat template shows every turn
    assert json.loads(frame["examples"].iloc[0]) == [
        {"id": "p1", "label": "positive"},
        {"id": "p2", "label": "negative"},
    ]
    # A text holding "{text}" is not filled in again.
    assert json.loads(frame["messages"].iloc[1])[-1]["content"].count("{text} ok") == 1
    if kind == "label_scores":
        assert frame["split"].iloc[-1] == "calibration" and len(json.loads(frame["messages"].iloc[-1])) == 5


@pytest.mark.slow
def test_nearest_examples_through_the_placeholder_with_letters_and_the_cache_key_covers_them(tmp_path):
    template = tmp_path / "t.txt"
    template.write_text("Options: {labels}.\n\n{examples}\n\nText: {text}\nAnswer:")
    prompt = {"kind": "label_scores", "aliases": "letters", "examples": {"source": "nearest", "k": 1}}
    frame = build_prompt_frame(items(), str(template), TEACHER, prompt, LABELS, POOL)
    content = json.loads(frame["messages"].iloc[0])[0]["content"]
    assert content.startswith("Options: A: positive, B: negative, C: neutral.")
    assert "Text: The bank reported heavy losses and cut its dividend.\nAnswer: B" in content  # nearest, by letter
    assert content.endswith("Text: Sales fell sharply.\nAnswer:")
    other = build_prompt_frame(
        items(), str(template), TEACHER, {**prompt, "examples": {"source": "file", "k": 1}}, LABELS, POOL
    )
    keys = [
        cache_key(
            {"backend": "llama_cpp"},
            build_request(
                json.loads(f["messages"].iloc[0]), "label_scores", LABELS, {"aliases": "letters"}, 0
            ).as_dict(),
            0,
        )
        for f in (frame, other)
    ]
    assert keys[0] != keys[1]


def config_with(tmp_path: Path, prompt: dict, split: dict | None = None) -> dict:
    return {
        "labels": LABELS,
        "dataset": {"path": str(DEMO), "text_column": "text", "label_column": "label"},
        "split": split or {},
        "prompts": {"fewshot": {"template": str(REPO / "config" / "prompts" / "label.txt"), "kind": "label", **prompt}},
        "teachers": {"smollm2": TEACHER},
        "students": {},
        "self_consistency": {"iterations": 1},
    }


@pytest.mark.parametrize(
    "prompt, message",
    [
        ({"examples": {"source": "nearest"}}, r"source nearest needs a pool: set split.shots_per_label"),
        ({"examples": {"source": "file"}}, r"source file needs path"),
        ({"examples": {"source": "file", "path": "missing.csv"}}, r"examples file missing.csv does not exist"),
        ({"aliases": "letters"}, r"only label_scores prompts answer with aliases"),
    ],
)
def test_config_checks_refuse_examples_without_a_pool_and_misplaced_aliases(tmp_path, prompt, message):
    with pytest.raises(SynthDistillError, match=message):
        check_config(config_with(tmp_path, prompt))
    check_config(config_with(tmp_path, {"examples": {"source": "nearest"}}, {"shots_per_label": 2}))


@pytest.mark.slow
def test_a_pipeline_run_shows_each_item_its_nearest_shots_and_never_annotates_them(tmp_path):
    from .pipeline_helpers import TINY_CONFIG, make_workdir, snakemake

    prompts = {
        "fewshot": {
            "template": "config/prompts/label.txt",
            "kind": "label_scores",
            "calibrate": True,
            "examples": {"source": "nearest", "k": 2},
        }
    }
    workdir = make_workdir(
        tmp_path,
        split={**TINY_CONFIG["split"], "shots_per_label": 2},
        prompts=prompts,
        self_consistency={"iterations": 1},
    )
    snakemake(workdir, "results/annotations/smollm2/fewshot/iter0.parquet")
    data = workdir / "results" / "data"
    shots = pd.read_parquet(data / "shots.parquet")
    assert shots["expert_label"].value_counts().to_dict() == dict.fromkeys(LABELS, 2)
    splits = pd.concat([pd.read_parquet(data / f"{name}.parquet") for name in SPLITS])
    assert not set(shots["id"]) & set(splits["id"])
    frame = pd.read_parquet(workdir / "results" / "prompts" / "smollm2" / "fewshot.parquet")
    assert set(frame["id"]) == {*splits["id"], "__content_free__"}  # the shots are examples, not items
    shown = [json.loads(e) for e in frame["examples"]]
    assert all(len(s) == 2 and {e["id"] for e in s} <= set(shots["id"]) for s in shown)
    first = frame.iloc[0]
    example_text = shots.set_index("id").loc[shown[0][0]["id"], "text"]
    assert example_text in first["rendered"] and first["text"] in first["rendered"]
    annotations = pd.read_parquet(workdir / "results" / "annotations" / "smollm2" / "fewshot" / "iter0.parquet")
    assert len(annotations) == len(splits) and annotations["label"].isin(LABELS).all()
