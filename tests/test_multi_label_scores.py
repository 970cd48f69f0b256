"""Task multi_label label_scores: one yes/no scoring request per label, each label's own probability
P(yes) / (P(yes) + P(no)), the labels at or above the threshold as the answer; the real embedded
SmolLM2 behind the teacher interface, and the vote and config checks around it."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate, item_outcome
from synthdistill.annotation.label_scores import content_free_prior, scored_probabilities
from synthdistill.annotation.prompt_files import build_prompt_frame
from synthdistill.annotation.requests import YES_NO, build_request, item_requests
from synthdistill.annotation.teachers.base import Completion
from synthdistill.labels.multi_label_vote import vote_label_sets
from synthdistill.settings import check_config, prompt_settings
from synthdistill.tasks.names import CALIBRATION_SPLIT

from .conftest import REPO, SMOLLM2, annotate_settings

LABELS = ["billing", "bug", "feature_request", "account", "praise"]
TEMPLATE = str(REPO / "config" / "prompts" / "label_yes_no.txt")


def multi_label_config(**prompt) -> dict:
    return {
        "task": "multi_label",
        "labels": LABELS,
        "dataset": {"path": str(REPO / "data" / "demo" / "support_tickets.csv"), "label_column": "labels"},
        "prompts": {"yes_no": {"template": TEMPLATE, "kind": "label_scores", **prompt}},
        "teachers": {"smollm2": {"backend": "llama_cpp", "model_path": SMOLLM2}},
        "students": {},
        "self_consistency": {"iterations": 1},
    }


def yes_no(p_yes: float, p_no: float) -> Completion:
    return Completion(text="yes", extra={"label_logprobs": {"yes": math.log(p_yes), "no": math.log(p_no)}})


# --- scores, prior and outcome -------------------------------------------------------------------


def test_each_label_gets_its_own_yes_probability_not_a_share_of_one():
    answers = [yes_no(0.6, 0.2), yes_no(0.3, 0.1), yes_no(0.05, 0.45), yes_no(0.2, 0.2), yes_no(0.01, 0.9)]
    probs = scored_probabilities(answers, LABELS, None, per_label=True)
    assert probs == pytest.approx([0.75, 0.75, 0.1, 0.5, 0.01 / 0.91])
    assert probs.sum() > 1  # independent: two labels can both be likely
    # calibrated: each label's yes/no divided by that label's content-free yes/no
    prior = content_free_prior([yes_no(0.8, 0.2)] * 5, LABELS, per_label=True)
    assert prior.shape == (5, 2) and prior[0] == pytest.approx([0.8, 0.2])
    calibrated = scored_probabilities(answers, LABELS, prior, per_label=True)
    assert calibrated[0] == pytest.approx((0.75 / 0.8) / (0.75 / 0.8 + 0.25 / 0.2))


def test_an_item_is_scored_whole_or_fails_naming_the_label():
    ok = (yes_no(0.5, 0.5), 0.2, 0.1, None, True)
    failed = (None, 0.3, None, "TimeoutError: slow", False)
    completions, outcome = item_outcome([ok, failed, ok], LABELS[:3])
    assert completions is None
    assert outcome[3] == "label 'bug': TimeoutError: slow (1 of 3 label requests failed)"
    assert outcome[1] == pytest.approx(0.7) and outcome[2] is None and outcome[4] is False
    completions, outcome = item_outcome([ok, ok], LABELS[:2])
    assert completions is not None and len(completions) == 2
    assert outcome[1:] == (pytest.approx(0.4), pytest.approx(0.2), None, True)


def test_a_prompts_file_without_one_chat_per_label_stops_the_job():
    chat = [{"role": "user", "content": "Is it billing? yes or no"}]
    generation = {"per_label": True, "threshold": 0.5}
    assert len(item_requests(json.dumps([chat] * 5), "label_scores", LABELS, generation, 0)) == 5
    assert item_requests(json.dumps([chat] * 5), "label_scores", LABELS, generation, 0)[0].score_labels == YES_NO
    for cell in ([chat] * 4, chat):  # another label set, or a single-chat prompts file
        with pytest.raises(SynthDistillError, match="must hold one chat per label"):
            item_requests(json.dumps(cell), "label_scores", LABELS, generation, 0)


def test_the_vote_keeps_each_label_probability_averaged_over_iterations():
    items = pd.DataFrame({"id": ["a", "b"], "split": "train", "text": ["x", "y"]})
    iterations = [
        pd.DataFrame({"id": ["a", "b"], "label": ['["billing"]', "[]"], "prob_billing": [0.8, 0.2]}).assign(
            **{f"prob_{x}": [0.1, 0.3] for x in LABELS[1:]}
        ),
        pd.DataFrame({"id": ["b", "a"], "label": ["[]", '["billing"]'], "prob_billing": [0.4, 0.6]}).assign(
            **{f"prob_{x}": [0.1, 0.3] for x in LABELS[1:]}
        ),
    ]
    votes = vote_label_sets(iterations, items, LABELS, 0.5).set_index("id")
    assert votes["prob_billing"].tolist() == pytest.approx([0.7, 0.3])  # aligned by id, not by row
    assert votes.loc["a", "label"] == '["billing"]'


# --- config --------------------------------------------------------------------------------------


def test_a_multi_label_label_scores_prompt_is_per_label_with_a_threshold():
    settings = prompt_settings(multi_label_config(), "yes_no")
    assert settings["per_label"] is True and settings["threshold"] == 0.5
    assert prompt_settings(multi_label_config(threshold=0.7), "yes_no")["threshold"] == 0.7
    assert check_config(multi_label_config())["prompts"] == ["yes_no"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": str(REPO / "config" / "prompts" / "label.txt")}, "has no {label} placeholder"),
        ({"aliases": "letters"}, "scores the answers yes and no, not the labels"),
    ],
)
def test_bad_per_label_prompts_stop_naming_the_key(change, message):
    with pytest.raises(SynthDistillError, match=message.replace("{", r"\{").replace("}", r"\}")):
        check_config(multi_label_config(**change))


def test_threshold_and_label_placeholder_are_for_multi_label_label_scores_only():
    single = {**multi_label_config(), "task": "single_label", "labels": ["positive", "negative"]}
    single["dataset"] = {"path": str(REPO / "data" / "demo" / "financial_news_sentiment.csv")}
    with pytest.raises(SynthDistillError, match=r"unknown placeholder\(s\) \{label\}"):
        check_config(single)
    label_txt = str(REPO / "config" / "prompts" / "label.txt")
    single["prompts"]["yes_no"].update(template=label_txt, threshold=0.6)
    with pytest.raises(SynthDistillError, match="prompts.yes_no.threshold: only label_scores prompts of task multi"):
        check_config(single)


# --- the real embedded teacher -------------------------------------------------------------------

TEXT = "I was charged twice this month for my subscription."


@pytest.mark.slow
def test_smollm2_scores_every_label_yes_or_no_and_the_set_is_thresholded(smollm2_teacher, tmp_path):
    prompt = prompt_settings(multi_label_config(calibrate=True), "yes_no")
    teacher = {"backend": "llama_cpp", "model_path": SMOLLM2}
    items = pd.DataFrame({"id": ["a"], "split": "train", "text": [TEXT]})
    prompts = build_prompt_frame(items, TEMPLATE, teacher, prompt, LABELS)
    # one row per item and the content-free row; one chat per label, asking about that label
    assert prompts["split"].tolist() == ["train", CALIBRATION_SPLIT]
    chats = json.loads(prompts["messages"].iloc[0])
    assert all(
        f'"{x}"' in chat[-1]["content"] and TEXT in chat[-1]["content"] for x, chat in zip(LABELS, chats, strict=True)
    )
    assert len(json.loads(prompts["rendered"].iloc[0])) == len(LABELS)

    cache = ResponseCache(tmp_path / "c.sqlite")
    generation = {**teacher, **prompt}
    out = annotate(
        prompts,
        smollm2_teacher,
        cache,
        kind="label_scores",
        labels=LABELS,
        generation=generation,
        iteration=0,
        **annotate_settings(),
    )
    assert len(cache) == 2 * len(LABELS)  # each label's request of each row cached on its own
    row = out.iloc[0].to_dict()
    assert out["id"].tolist() == ["a"] and row["parse_status"] == "ok"
    assert row["input_tokens"] > len(LABELS) * 30  # the prompt tokens of all five requests
    assert json.loads(row["label"]) == [x for x in LABELS if row[f"prob_{x}"] >= 0.5]

    # A label's probability is its own calibrated yes/(yes+no): from the teacher's answer to that
    # label's chat alone, divided by its answer for the content-free text to the same question.
    raw = json.loads(row["raw_output"])
    content_free = json.loads(prompts["messages"].iloc[1])

    def ask(chat):
        return smollm2_teacher.complete(build_request(chat, "label_scores", YES_NO, generation, 0, "sequence"))

    for j in (0, 4):
        direct, prior = ask(chats[j]).extra["label_logprobs"], ask(content_free[j]).extra["label_logprobs"]
        assert direct == pytest.approx(raw[LABELS[j]], abs=1e-3)
        ratio = [math.exp(direct[a] - prior[a]) for a in YES_NO]
        assert row[f"prob_{LABELS[j]}"] == pytest.approx(ratio[0] / sum(ratio), abs=1e-3)

    # Another threshold answers from the same cached scores: no request, the labels at or above it.
    probs = sorted(row[f"prob_{x}"] for x in LABELS)
    for threshold in (probs[1], probs[3]):
        again = annotate(
            prompts,
            smollm2_teacher,
            cache,
            kind="label_scores",
            labels=LABELS,
            generation={**generation, "threshold": threshold},
            iteration=0,
            **annotate_settings(),
        )
        assert again["cached"].all() and len(cache) == 2 * len(LABELS)
        assert len(json.loads(again["label"].iloc[0])) == sum(p >= threshold for p in probs)
