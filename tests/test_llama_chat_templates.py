"""Any GGUF works as the embedded teacher, whatever its chat template: the real llama.cpp engine with
SmolLM2 (ChatML) and copies of it with Gemma's and Llama 3's templates and turn tokens, or with no
template at all (tests/gguf_copies.py). A GGUF without a template reads channel prompts and refuses
chat ones, naming itself, the prompt kind and what to do; a template that writes the BOS gets no
second one; label sequences end with the template's end-of-turn token, not the end of sequence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompt_files import build_prompt_frame
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.requests import build_request
from synthdistill.annotation.teachers import make_teacher
from synthdistill.annotation.teachers.base import label_spellings
from synthdistill.tasks.base import OK

from .conftest import LABELS, REPO, SMOLLM2, annotate_settings
from .gguf_copies import CHATML_BOS, GEMMA_BOS, GEMMA_END_OF_TURN, GEMMA_EOS, LLAMA3_BOS, LLAMA3_END_OF_TURN, LLAMA3_EOS
from .test_label_scores import forced_logprob
from .test_llama_teacher import TEXTS

# Real models in process (and GGUF copies written once per session): part of the full suite.
pytestmark = pytest.mark.slow

CHANNEL_PROMPT = {"kind": "label_scores", "template": "config/prompts/label_channel.txt", "direction": "channel"}
SCORES = {"max_tokens": 1, "temperature": 0.0}
LABEL = {"temperature": 0.7, "top_p": 0.95, "seed": 0, "max_tokens": 4, "structured": True}


def llama(path) -> dict:
    return {"backend": "llama_cpp", "model_path": str(path), "n_threads": 2}


def items() -> pd.DataFrame:
    return pd.DataFrame({"id": ["up", "down"], "split": ["train", "train"], "text": TEXTS[:2]})


def chat(kind: str = "label") -> list[dict[str, str]]:
    template = load_template(REPO / "config" / "prompts" / f"{kind}.txt")
    return messages_for(template, TEXTS[0], LABELS, system="You label financial news.")


def test_a_gguf_without_a_chat_template_reads_channel_prompts_and_refuses_chat_ones(
    no_template_gguf, smollm2_teacher, tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)
    settings = llama(no_template_gguf)
    teacher = make_teacher(settings)  # loads: the model can read plain text
    frame = build_prompt_frame(items(), CHANNEL_PROMPT["template"], settings, CHANNEL_PROMPT, LABELS)
    run = dict(kind="label_scores", labels=LABELS, generation=CHANNEL_PROMPT, iteration=0)
    out = annotate(frame, teacher, ResponseCache(tmp_path / "a.sqlite"), **run, **annotate_settings())
    probs = [f"prob_{label}" for label in LABELS]
    assert (out["parse_status"] == OK).all() and out[probs].sum(axis=1).tolist() == pytest.approx([1.0, 1.0])
    # The same weights reading the same plain text: SmolLM2's own channel scores.
    smollm2 = annotate(
        frame,
        smollm2_teacher,
        ResponseCache(tmp_path / "b.sqlite"),
        **run,
        **annotate_settings(),
    )
    assert out[probs].to_numpy() == pytest.approx(smollm2[probs].to_numpy(), abs=1e-6)

    def refused(message: str, kind: str) -> bool:
        return (
            str(no_template_gguf) in message
            and "has no chat template" in message
            and f"a {kind} prompt" in message
            and "direction: channel" in message
        )

    # A chat prompt stops the run at its prompts stage, before any request, naming the file, the prompt kind
    # and what to do instead; a direct label_scores prompt is a chat too.
    for kind in ("label", "cot_json", "label_scores"):
        prompt = {"kind": kind, "template": f"config/prompts/{'label' if kind == 'label_scores' else kind}.txt"}
        with pytest.raises(SynthDistillError) as caught:
            build_prompt_frame(items(), prompt["template"], settings, prompt, LABELS)
        assert refused(str(caught.value), kind), caught.value
    # The annotate stage refuses it too, before any request (a prompts file made with another teacher).
    messages = pd.DataFrame({"id": ["up"], "split": ["train"], "messages": [json.dumps(chat())]})
    with pytest.raises(SynthDistillError) as caught:
        annotate(
            messages,
            teacher,
            ResponseCache(tmp_path / "c.sqlite"),
            kind="label",
            labels=LABELS,
            generation=LABEL,
            iteration=0,
            **annotate_settings(),
        )
    assert refused(str(caught.value), "label"), caught.value
    # And a chat request sent anyway (synthdistill-serve's deferrals) fails with the same reason.
    with pytest.raises(SynthDistillError) as caught:
        teacher.complete(build_request(chat(), "label_scores", LABELS, SCORES, 0, "sequence"))
    assert refused(str(caught.value), "label_scores"), caught.value


# family: (its GGUF fixture, its BOS token id or None where the model reads none, its end-of-turn token id)
FAMILIES = {
    "chatml": ("smollm2_gguf", None, 2),  # SmolLM2 as shipped: <|im_end|>, which is also its EOS
    "chatml_bos": ("chatml_bos_gguf", CHATML_BOS, 2),  # the same template, and a GGUF that asks for a BOS
    "gemma": ("gemma_gguf", GEMMA_BOS, GEMMA_END_OF_TURN),
    "llama3": ("llama3_gguf", LLAMA3_BOS, LLAMA3_END_OF_TURN),
}
_TEACHERS: dict[str, object] = {}


@pytest.fixture(scope="session")
def smollm2_gguf() -> str:
    return SMOLLM2


@pytest.fixture
def family(request):
    """(name, teacher, BOS id, end-of-turn id) for the family a test is parametrized with (``name``);
    each family's teacher is loaded once."""
    name = request.node.callspec.params["name"]
    fixture, bos, end_of_turn = FAMILIES[name]
    if name not in _TEACHERS:
        _TEACHERS[name] = make_teacher(llama(request.getfixturevalue(fixture)))
    return name, _TEACHERS[name], bos, end_of_turn


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_model_reads_the_rendered_prompt_with_exactly_one_bos(name, family, monkeypatch):
    """Every path that sends a chat prompt (label scores, one generation, a batch of generations) sends the
    rendered prompt's tokens as they are; a template that writes the BOS (Gemma, Llama 3) gets no second
    one from the tokenizer, though the model asks for one, and one that does not (ChatML) gets the BOS a
    model asks for written before it."""
    name, teacher, bos, _ = family
    llm = teacher.llm
    sent: list[list[int]] = []

    def spy(method):
        def call(tokens, *args, **kwargs):
            sent.append(list(tokens))
            return method(tokens, *args, **kwargs)

        return call

    # One path at a time: create_completion evaluates through eval as well.
    with monkeypatch.context() as patch:
        patch.setattr(llm, "eval", spy(llm.eval))
        teacher.complete(build_request(chat(), "label_scores", LABELS, SCORES, 0, "sequence"))
    with monkeypatch.context() as patch:
        patch.setattr(llm, "generate", spy(llm.generate))
        teacher.complete(build_request(chat(), "label", LABELS, LABEL, 0))
    batch = teacher._multi.generate
    with monkeypatch.context() as patch:
        patch.setattr(
            teacher._multi, "generate", lambda gens, stop: (sent.extend(g.prompt for g in gens), batch(gens, stop))
        )
        teacher.complete_batch([build_request(chat(), "label", LABELS, LABEL, i) for i in range(2)])
    rendered = teacher.render(chat())
    expected = llm.tokenize(rendered.encode(), add_bos=False, special=True)
    assert sent == [expected] * 4
    if bos is None:
        assert not llm._model.add_bos_token()
    else:
        bos_text = llm._model.token_get_text(bos)
        assert rendered.startswith(bos_text) and rendered.count(bos_text) == 1, rendered
        assert expected[0] == bos and expected.count(bos) == 1, expected[:4]


@pytest.mark.parametrize("name", ["chatml", "gemma", "llama3"])
def test_label_sequences_end_with_the_templates_end_of_turn_token(name, family):
    """Each label is scored as the whole answer: its tokens, then the token that closes the template's
    assistant turn. Gemma's copy declares <end_of_turn> (tokenizer.ggml.eot_token_id); Llama 3's declares
    none, and its template closes turns with <|eot_id|> (llama.cpp's own guess, token_eot, is token 0,
    <|endoftext|>); neither is the end-of-sequence token."""
    name, teacher, _, end_of_turn = family
    llm = teacher.llm
    assert name == "chatml" or end_of_turn != llm.token_eos()
    if name == "llama3":
        assert llm._model.token_eot() != LLAMA3_END_OF_TURN and llm.token_eos() == LLAMA3_EOS
    if name == "gemma":
        assert llm.token_eos() == GEMMA_EOS
    sequences = teacher._labels.sequences(LABELS)
    assert {seq[-1] for seqs in sequences.values() for seq in seqs} == {end_of_turn}
    # The scores are those of the label's tokens and then the end-of-turn token, from a fresh forward pass.
    completion = teacher.complete(build_request(chat(), "label_scores", LABELS, SCORES, 0, "sequence"))
    prompt = llm.tokenize(teacher.render(chat()).encode(), add_bos=False, special=True)
    tokenize = lambda text: llm.tokenize(text.encode(), add_bos=False, special=False)  # noqa: E731
    for label in LABELS[:2]:  # two labels are enough, and each costs four forward passes
        spellings = [tokenize(s) + [end_of_turn] for s in label_spellings(label)]
        expected = np.logaddexp.reduce([forced_logprob(llm, prompt, s) for s in spellings])
        # Up to ~0.03 nats apart: llama.cpp's quantized kernels round differently for other batch shapes.
        assert completion.extra["label_logprobs"][label] == pytest.approx(expected, abs=0.1)
        if name != "chatml":  # the copies' weights end an answer with their end-of-turn token, not with EOS
            eos = np.logaddexp.reduce([forced_logprob(llm, prompt, s[:-1] + [llm.token_eos()]) for s in spellings])
            assert eos < expected - 5
