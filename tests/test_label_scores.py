"""Label scores for any label set: whole-sequence scores in-process (real SmolLM2), letter aliases
for HTTP teachers (real llama.cpp server), and a calibration failure that says why."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache, cache_key
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.requests import build_request
from synthdistill.annotation.teachers import make_teacher
from synthdistill.annotation.teachers.base import label_sequences
from synthdistill.labels.ensemble import equal_member_weights
from synthdistill.tasks.base import OK
from synthdistill.tasks.names import CALIBRATION_SPLIT, CONTENT_FREE_TEXT

from .conftest import REPO, annotate_settings
from .pipeline_helpers import TINY_CONFIG, make_workdir, planned_jobs
from .test_openai_teacher import teacher_settings

MARKET = ["bearish", "bullish", "neutral"]
TEXTS = [
    "Shares of Norvik Systems soared after it doubled its profit forecast.",
    "Halden Foods plunged 20% as losses widened and it cut 300 jobs.",
    "The annual general meeting of Corvel Oyj will be held in Espoo on 3 May.",
]
SCORES = {"max_tokens": 1, "temperature": 0.0}


def frame(template: str, labels: list[str], calibrate: bool = True, aliases: str | None = None) -> pd.DataFrame:
    tpl = load_template(REPO / "config" / "prompts" / template)
    texts = [*TEXTS, CONTENT_FREE_TEXT] if calibrate else TEXTS
    return pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(len(texts))],
            "split": ["train"] * len(TEXTS) + ([CALIBRATION_SPLIT] if calibrate else []),
            "messages": [json.dumps(messages_for(tpl, t, labels, aliases=aliases)) for t in texts],
        }
    )


def forced_logprob(llm, prompt_tokens: list[int], answer: list[int]) -> float:
    """log P(answer | prompt) from one fresh forward pass over prompt + answer with logits at every
    position: an independent check of the teacher's cached-prompt scoring. (Feeding the answer one token
    at a time instead differs by up to ~0.07 nats: llama.cpp's quantized kernels round differently for
    one token than for a batch.)"""
    llm.reset()
    llm._ctx.kv_cache_seq_rm(0, 0, -1)
    llm._batch.set_batch(batch=prompt_tokens + answer[:-1], n_past=0, logits_all=True)
    llm._ctx.decode(llm._batch)
    total = 0.0
    for position, token in enumerate(answer):
        row = llm._ctx.get_logits_ith(len(prompt_tokens) - 1 + position)
        logits = np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(float)
        total += logits[token] - (logits.max() + math.log(np.exp(logits - logits.max()).sum()))
    return total


@pytest.mark.slow
def test_labels_sharing_a_first_token_are_scored_by_their_whole_sequence(smollm2_teacher, tmp_path):
    tokenize = lambda text: smollm2_teacher.llm.tokenize(text.encode(), add_bos=False, special=False)  # noqa: E731
    assert tokenize("Bearish")[0] == tokenize("Bullish")[0]  # the case the issue hit: both start with "B"
    end = smollm2_teacher.end_of_turn  # <|im_end|>, which SmolLM2's template closes an answer with
    messages = json.loads(frame("label.txt", MARKET, calibrate=False)["messages"][0])
    completion = smollm2_teacher.complete(build_request(messages, "label_scores", MARKET, SCORES, 0, "sequence"))
    prompt = smollm2_teacher.llm.tokenize(smollm2_teacher.render(messages).encode(), add_bos=False, special=True)
    for label in MARKET:
        spellings = [tokenize(s) + [end] for s in (label, label.capitalize())]
        expected = np.logaddexp.reduce([forced_logprob(smollm2_teacher.llm, prompt, s) for s in spellings])
        assert completion.extra["label_logprobs"][label] == pytest.approx(expected, abs=1e-3)
    assert completion.text == max(MARKET, key=completion.extra["label_logprobs"].get)

    # Through the engine, calibrated: the run the issue reported as failing works, one distribution per item.
    out = annotate(
        frame("label.txt", MARKET),
        smollm2_teacher,
        ResponseCache(tmp_path / "c.sqlite"),
        kind="label_scores",
        labels=MARKET,
        generation=SCORES,
        iteration=0,
        **annotate_settings(),
    )
    probs = out[[f"prob_{label}" for label in MARKET]].to_numpy()
    assert (out["parse_status"] == OK).all() and probs.sum(axis=1) == pytest.approx([1.0] * 3)
    assert len(set(np.round(probs[:, 0], 6))) == 3  # not one constant answer


def test_a_prefix_label_is_told_apart_by_the_end_of_turn_token():
    vocab = {"neg": [7], "negative": [7, 8], "Neg": [9], "Negative": [9, 8]}
    sequences = label_sequences(["neg", "negative"], lambda text: vocab[text], end=[2])
    assert sequences == {"neg": [(7, 2), (9, 2)], "negative": [(7, 8, 2), (9, 8, 2)]}
    with pytest.raises(ValueError, match="'up' and 'UP!' tokenize to the same tokens"):
        label_sequences(["up", "UP!"], lambda text: [5], end=[2])


def test_the_cache_key_says_how_label_scores_were_computed():
    messages = [{"role": "user", "content": "x"}]
    first_token = build_request(messages, "label_scores", MARKET, SCORES, 0)
    sequence = build_request(messages, "label_scores", MARKET, SCORES, 0, "sequence")
    letters = build_request(messages, "label_scores", MARKET, {**SCORES, "aliases": "letters"}, 0)
    assert letters.score_labels == ["A", "B", "C"]
    identity = {"backend": "llama_cpp", "model": "m"}
    keys = {cache_key(identity, r.as_dict(), 0) for r in (first_token, sequence, letters)}
    assert len(keys) == 3


def test_a_failed_calibration_request_carries_the_backends_reason(tmp_path):
    # A real HTTP teacher at a port where nothing listens: every request fails, the calibration one too.
    settings = teacher_settings("http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(SynthDistillError) as error:
        annotate(
            frame("label.txt", MARKET),
            make_teacher(settings),
            ResponseCache(tmp_path / "c.sqlite"),
            kind="label_scores",
            labels=MARKET,
            generation=SCORES,
            iteration=0,
            **annotate_settings(),
        )
    message = str(error.value)
    assert "content-free calibration request" in message and "connection failed" in message
    assert "4 of 4 requests of this job failed" in message and "rerun to retry it" not in message


@pytest.mark.slow
def test_letter_aliases_let_an_http_teacher_score_labels_sharing_a_first_token(llama_url, tmp_path):
    settings = teacher_settings(llama_url)
    prompts = frame("label_letters.txt", MARKET, aliases="letters")
    assert "A: bearish, B: bullish, C: neutral" in json.loads(prompts["messages"][0])[-1]["content"]
    generation = {**SCORES, "aliases": "letters"}
    out = annotate(
        prompts,
        make_teacher(settings),
        ResponseCache(tmp_path / "c.sqlite"),
        kind="label_scores",
        labels=MARKET,
        generation=generation,
        iteration=0,
        **annotate_settings(),
    )
    assert (out["parse_status"] == OK).all() and out["label"].isin(MARKET).all()
    raw = [json.loads(r) for r in out["raw_output"]]
    assert all(set(r) == {"A", "B", "C"} for r in raw)  # the letters are what the server scored
    probs = out[[f"prob_{label}" for label in MARKET]].to_numpy()
    assert probs.sum(axis=1) == pytest.approx([1.0] * 3)


def test_a_label_scores_prompt_is_annotated_once_whatever_the_iterations(tmp_path):
    """Its scores are the same on every iteration, so the plan asks (and pays) for one; a sampled
    prompt still gets every iteration, and an ensemble still reads the scores prompt's one file."""
    prompts = {**TINY_CONFIG["prompts"], "scores": {"template": "config/prompts/label.txt", "kind": "label_scores"}}
    workdir = make_workdir(
        tmp_path,
        prompts=prompts,
        self_consistency={"iterations": 3},
        ensembles={"mix": {"members": [["smollm2", "label"], ["smollm2", "scores"]]}},
    )
    jobs = planned_jobs(workdir, "results/votes/mix/majority.parquet", "results/votes/smollm2/cot_json.parquet")
    annotated = sorted((w["prompt"], w["iteration"]) for rule, w in jobs if rule == "annotate")
    assert annotated == [("cot_json", "0"), ("cot_json", "1"), ("cot_json", "2")] + [
        ("label", "0"),
        ("label", "1"),
        ("label", "2"),
        ("scores", "0"),
    ]


def test_an_ensemble_member_annotated_once_votes_with_the_weight_of_the_others():
    one = pd.DataFrame({"id": ["a"], "label": ["bullish"]})
    other = pd.DataFrame({"id": ["a"], "label": ["bearish"]})
    iterations = {"t/label/iter0": other, "t/label/iter1": other, "t/scores/iter0": one}
    weighted = equal_member_weights(iterations)
    assert len(weighted) == 4
    assert sum(frame is one for frame in weighted.values()) == 2
    assert sum(frame is other for frame in weighted.values()) == 2
    assert equal_member_weights({"t/label/iter0": other, "t/scores/iter0": one}) == {
        "t/label/iter0": other,
        "t/scores/iter0": one,
    }
