"""The embedded teacher generating several prompts per decoding step (complete_batch), with the real
SmolLM2 through llama.cpp: constrained answers, seeds, per-request limits, and the engine's cache."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.parsing import parse
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.requests import build_request
from synthdistill.annotation.teachers.base import Completion
from synthdistill.tasks.base import ERROR, OK

from .conftest import LABELS, REPO, annotate_settings
from .test_llama_teacher import TEXTS, prompt_frame

pytestmark = pytest.mark.slow


def requests_for(kind: str, max_tokens: int, structured: bool = True, temperature: float = 0.7, iteration: int = 0):
    template = load_template(REPO / "config" / "prompts" / f"{kind}.txt")
    generation = {
        "temperature": temperature,
        "top_p": 0.95,
        "seed": 0,
        "max_tokens": max_tokens,
        "structured": structured,
    }
    return [build_request(messages_for(template, t, LABELS), kind, LABELS, generation, iteration) for t in TEXTS]


def test_a_batch_of_label_prompts_under_the_choices_grammar_answers_only_labels(smollm2_teacher):
    requests = requests_for("label", 4, iteration=1) + requests_for("label", 4, iteration=2)
    answers = smollm2_teacher.complete_batch(requests)
    assert [a.text for a in answers if a.text not in LABELS] == []
    assert all(a.output_tokens == 1 and a.input_tokens > 20 for a in answers)


def test_a_cot_json_batch_parses_and_matches_the_one_at_a_time_answers(smollm2_teacher):
    """Each request keeps its seed and gets the logits a lone decode gives, so batching changes no
    answer: the same texts and token counts as complete(), and the same again in another split of
    batches (the second batch of each reuses the template head the first one left in the context)."""
    requests = requests_for("cot_json", 64)
    batched = smollm2_teacher.complete_batch(requests[:3]) + smollm2_teacher.complete_batch(requests[3:])
    for answer, text in zip(batched, TEXTS, strict=True):
        assert isinstance(answer, Completion)
        assert parse("cot_json", answer.text, LABELS, text).status == OK, answer.text
    one_by_one = [smollm2_teacher.complete(r) for r in requests]
    assert [(a.text, a.input_tokens, a.output_tokens) for a in batched] == [
        (a.text, a.input_tokens, a.output_tokens) for a in one_by_one
    ]
    assert [a.text for a in smollm2_teacher.complete_batch(requests)] == [a.text for a in batched]


def test_mixed_settings_in_one_batch_each_keep_their_own_limits(smollm2_teacher):
    free = requests_for("cot_json", 0, structured=False)
    settings = [(2, 0.0, 1), (5, 0.7, 2), (9, 1.0, None), (3, 0.7, 2)]
    requests = [replace(r, max_tokens=m, temperature=t, seed=s) for r, (m, t, s) in zip(free, settings, strict=True)]
    too_long = replace(free[0], messages=[{"role": "user", "content": "word " * 3000}])
    answers = smollm2_teacher.complete_batch([requests[0], too_long, *requests[1:]])
    error = answers.pop(1)
    assert isinstance(error, ValueError) and "exceed context window of 2048" in str(error)
    # Free text from this prompt runs far past these limits: every answer stops exactly at its own.
    # (Counted as generated: tokenizing the decoded text again need not give the same count, e.g.
    # for an unseeded draw at temperature 1.0 that emits bytes of a split character.)
    assert [a.output_tokens for a in answers] == [2, 5, 9, 3]
    # Greedy decoding is the same alone as in any batch.
    assert smollm2_teacher.complete_batch(requests[:1])[0].text == answers[0].text


def test_annotate_with_batches_stores_every_answer_and_a_rerun_makes_no_call(smollm2_teacher, tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path / "c.sqlite")
    settings = dict(
        kind="cot_json",
        labels=LABELS,
        generation={"temperature": 0.7, "top_p": 0.95, "seed": 0, "max_tokens": 64, "structured": True},
        iteration=0,
    )
    sizes = []
    complete_batch = smollm2_teacher.complete_batch

    def recorded(requests):
        sizes.append(len(requests))
        return complete_batch(requests)

    monkeypatch.setattr(smollm2_teacher, "batch_size", 3)
    monkeypatch.setattr(smollm2_teacher, "complete_batch", recorded)
    first = annotate(prompt_frame("cot_json"), smollm2_teacher, cache, **settings, **annotate_settings())
    assert sizes == [3, 1] and len(cache) == 4
    assert (first["parse_status"] == "ok").all() and not first["cached"].any()
    assert (first["compute_s"] > 0).all() and (first["output_tokens"] > 0).all()

    def no_call(*args, **kwargs):
        raise AssertionError("a cached answer was requested again")

    monkeypatch.setattr(smollm2_teacher, "complete_batch", no_call)
    monkeypatch.setattr(smollm2_teacher, "complete", no_call)
    again = annotate(prompt_frame("cot_json"), smollm2_teacher, cache, **settings, **annotate_settings())
    assert again["cached"].all() and again["raw_output"].tolist() == first["raw_output"].tolist()
    assert json.loads(again["raw_output"].iloc[0])["label"] in LABELS


def test_a_request_that_fails_in_a_batch_fails_alone(smollm2_teacher, tmp_path, monkeypatch):
    frame = prompt_frame("label").head(3).copy()
    long_text = "Shares rose. " * 700  # past the 2048-token context
    template = load_template(REPO / "config" / "prompts" / "label.txt")
    frame.loc[1, ["text", "messages"]] = [long_text, json.dumps(messages_for(template, long_text, LABELS))]
    monkeypatch.setattr(smollm2_teacher, "batch_size", 3)
    cache = ResponseCache(tmp_path / "c.sqlite")
    generation = {"temperature": 0.7, "top_p": 0.95, "seed": 0, "max_tokens": 4, "structured": True}
    out = annotate(
        frame,
        smollm2_teacher,
        cache,
        kind="label",
        labels=LABELS,
        generation=generation,
        iteration=0,
        **annotate_settings(max_failure_share=0.5),
    )
    assert out["parse_status"].tolist() == [OK, ERROR, OK]
    assert out.loc[1, "error"].startswith("ValueError: Requested tokens") and "context window" in out.loc[1, "error"]
    assert out.loc[[0, 2], "label"].isin(LABELS).all() and len(cache) == 2
