"""The embedded teacher is a real LLM (SmolLM2 through llama.cpp): annotate, constrain, cache."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.requests import build_request

from .conftest import LABELS, REPO, annotate_settings

# A real model in process: part of the full suite, not the inner loop.
pytestmark = pytest.mark.slow

TEXTS = [
    "Norvik Systems raised its full-year profit guidance after record third-quarter sales.",
    "Halden Foods will cut 300 jobs and close two plants as demand keeps falling.",
    "The annual general meeting of Corvel Oyj will be held in Espoo on 3 May.",
    "Analysts downgraded Brimstone Mining to sell after a fatal accident halted output.",
]


def prompt_frame(kind: str) -> pd.DataFrame:
    template = load_template(REPO / "config" / "prompts" / f"{kind}.txt")
    return pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(len(TEXTS))],
            "split": "train",
            "text": TEXTS,
            "messages": [json.dumps(messages_for(template, t, LABELS)) for t in TEXTS],
        }
    )


GENERATION = {"temperature": 0.7, "top_p": 0.95, "seed": 0}


@pytest.mark.parametrize("kind, max_tokens", [("label", 4), ("cot_json", 64)])
def test_structured_decoding_gives_only_valid_labels(smollm2_teacher, tmp_path, kind, max_tokens):
    frame = annotate(
        prompt_frame(kind),
        smollm2_teacher,
        ResponseCache(tmp_path / "c.sqlite"),
        kind=kind,
        labels=LABELS,
        generation={**GENERATION, "max_tokens": max_tokens, "structured": True},
        iteration=0,
        **annotate_settings(),
    )
    assert list(frame["id"]) == ["t0", "t1", "t2", "t3"]
    assert (frame["parse_status"] == "ok").all(), frame[["raw_output", "parse_status"]]
    assert frame["label"].isin(LABELS).all()
    assert (frame["output_tokens"] > 0).all() and (frame["input_tokens"] > 20).all()
    if kind == "cot_json":
        assert frame["reason"].str.len().gt(0).all()
        # The grammar keeps the schema's order: the reasoning is written before the label, not after it.
        assert frame["raw_output"].str.replace(" ", "").str.startswith('{"reason":').all(), frame["raw_output"]


def test_unconstrained_output_is_parsed_strictly(smollm2_teacher, tmp_path):
    frame = annotate(
        prompt_frame("cot_json"),
        smollm2_teacher,
        ResponseCache(tmp_path / "c.sqlite"),
        kind="cot_json",
        labels=LABELS,
        generation={**GENERATION, "max_tokens": 48, "structured": False},
        iteration=0,
        **annotate_settings(
            max_failure_share=1.0
        ),  # SmolLM2 writes off-format answers; they are counted, not a reason to stop here
    )
    # Whatever SmolLM2 writes, a label is only ever one of the closed set, and a missing one is counted.
    assert frame["label"].dropna().isin(LABELS).all()
    assert (frame["label"].isna() == (frame["parse_status"] != "ok")).all()


def test_cache_serves_reruns_and_keeps_iterations_apart(smollm2_teacher, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    settings = dict(kind="label", labels=LABELS, generation={**GENERATION, "max_tokens": 4, "structured": True})
    first = annotate(
        prompt_frame("label"),
        smollm2_teacher,
        cache,
        iteration=0,
        **settings,
        **annotate_settings(),
    )
    assert not first["cached"].any() and len(cache) == 4
    again = annotate(
        prompt_frame("label"),
        smollm2_teacher,
        cache,
        iteration=0,
        **settings,
        **annotate_settings(),
    )
    assert again["cached"].all() and len(cache) == 4
    assert again["raw_output"].tolist() == first["raw_output"].tolist()
    second_sample = annotate(
        prompt_frame("label"),
        smollm2_teacher,
        cache,
        iteration=1,
        **settings,
        **annotate_settings(),
    )
    assert not second_sample["cached"].any() and len(cache) == 8


def scores_frame(calibrate: bool) -> pd.DataFrame:
    frame = prompt_frame("label")
    if calibrate:
        template = load_template(REPO / "config" / "prompts" / "label.txt")
        content_free = {"id": "__content_free__", "split": "calibration", "text": "N/A"}
        content_free["messages"] = json.dumps(messages_for(template, "N/A", LABELS))
        frame = pd.concat([frame, pd.DataFrame([content_free])], ignore_index=True)
    return frame


def test_label_scores_give_a_distribution_and_calibration_shifts_it(smollm2_teacher, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    settings = dict(kind="label_scores", labels=LABELS, generation={**GENERATION, "max_tokens": 1}, iteration=0)
    plain = annotate(scores_frame(False), smollm2_teacher, cache, **settings, **annotate_settings())
    probs = plain[[f"prob_{label}" for label in LABELS]].to_numpy()
    assert probs.sum(axis=1) == pytest.approx([1.0] * 4)
    assert (plain["label"] == [LABELS[i] for i in probs.argmax(axis=1)]).all()
    assert (plain["output_tokens"] == 0).all() and (plain["input_tokens"] > 20).all()

    calibrated = annotate(scores_frame(True), smollm2_teacher, cache, **settings, **annotate_settings())
    assert list(calibrated["id"]) == list(plain["id"])  # the content-free row is not an item
    assert calibrated.loc[:3, "cached"].all()  # the items' forward passes were reused
    cal = calibrated[[f"prob_{label}" for label in LABELS]].to_numpy()
    # Contextual calibration: each item's distribution divided by the content-free one, renormalised.
    content_free = json.loads(scores_frame(True)["messages"].iloc[-1])
    request = build_request(content_free, "label_scores", LABELS, GENERATION, 0)
    logprobs = smollm2_teacher.complete(request).extra["label_logprobs"]
    prior = np.exp([logprobs[label] for label in LABELS])
    prior /= prior.sum()
    expected = probs / prior
    expected /= expected.sum(axis=1, keepdims=True)
    assert cal == pytest.approx(expected, abs=1e-5)
