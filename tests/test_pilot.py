"""The pilot's logic: which candidates it builds, successive halving, the choice and the refusals.

The evaluator here is scripted (each candidate answers right on a known share of the texts), which is
what these tests are about: the halving and the choice. The real teacher through the engine and the
cache is in tests/test_pilot_pipeline.py."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import yaml

from synthdistill import SynthDistillError
from synthdistill.labels.pilot import (
    Scored,
    baselines,
    candidates,
    clean_rewrite,
    rewrite_templates,
    run_pilot,
    rungs,
    stop_message,
    with_rewrites,
)
from synthdistill.reporting.pilot import pilot_section
from synthdistill.schema import check_against_schema, defaults
from synthdistill.settings import check_config, pilot_candidates

from .conftest import REPO

LABELS = ["positive", "negative", "neutral"]
PILOT = defaults("pilot")


def gold(n: int = 40) -> pd.DataFrame:
    labels = (["neutral"] * 2 + ["positive", "negative"]) * (n // 4)
    return pd.DataFrame(
        {"id": [f"g{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)], "expert_label": labels}
    )


def scripted(
    right_share: dict[str, float], calls: list[tuple[str, int]], cost_per_text: dict[str, float] | None = None
):
    """An evaluator whose candidate ``name`` answers right on its texts in id order until its share runs
    out (then 'positive'), recording (candidate, texts) per call."""

    def evaluate(name: str, settings: dict, items: pd.DataFrame) -> Scored:
        calls.append((name, len(items)))
        if name not in right_share:
            raise SynthDistillError("direction: channel scores the text's own tokens, which this teacher cannot")
        numbers = items["id"].str[1:].astype(int)
        right = numbers < right_share[name] * 40
        predicted = items["expert_label"].where(right.to_numpy(), "positive")
        per_text = (cost_per_text or {}).get(name, 1.0)
        stats = {"answers": len(items), "requests_made": len(items), "usd": per_text * len(items)}
        return Scored(pd.Series(predicted.to_numpy(), index=items["id"].to_numpy(), dtype=object), stats)

    return evaluate


def usd(annotations: list[dict]) -> float:
    return sum(a["usd"] for a in annotations)


def settings_of(names) -> dict:
    return {name: {"template": "t.txt", "kind": "label"} for name in names}


def test_successive_halving_plans_rungs_that_end_on_every_text():
    assert rungs(100, 12, 0.25, 2) == [(25, 12), (50, 6), (100, 3)]
    assert rungs(8, 6, 0.25, 2) == [(2, 6), (4, 3), (8, 2)]
    assert rungs(100, 9, 0.1, 3) == [(10, 9), (30, 3), (100, 1)]
    assert rungs(40, 1, 0.25, 2) == [(10, 1), (40, 1)]
    assert rungs(5, 4, 0.01, 2) == [(1, 4), (2, 2), (5, 1)]


def test_the_best_candidate_wins_and_dropped_ones_are_not_asked_again():
    calls: list[tuple[str, int]] = []
    shares = {"a": 0.3, "b": 0.9, "c": 0.6, "d": 0.1}
    pilot = {**PILOT, "require": "none"}
    table, choice = run_pilot(gold(), settings_of(shares), scripted(shares, calls), LABELS, pilot, usd)
    assert choice["candidate"] == "b" and choice["passed"]
    # 4 candidates on 10 texts, the best 2 on 20, the best one on all 40.
    assert calls == [("a", 10), ("b", 10), ("c", 10), ("d", 10), ("b", 20), ("c", 20), ("b", 40)]
    last = table.groupby("candidate").tail(1).set_index("candidate")["status"]
    assert last.to_dict() == {"a": "dropped at rung 0", "d": "dropped at rung 0", "c": "dropped at rung 1", "b": "won"}
    assert choice["answers"] == 10 + 10 + 20 + 40  # each candidate's largest prefix: each answer paid once


def test_texts_are_scored_in_a_seeded_order_so_rungs_are_prefixes_of_one_shuffle():
    seen: list[list[str]] = []

    def evaluate(name, settings, items):
        seen.append(items["id"].tolist())
        return Scored(
            pd.Series(items["expert_label"].to_numpy(), index=items["id"].to_numpy()),
            {"answers": 1, "requests_made": 1, "usd": 0.0},
        )

    run_pilot(gold(), settings_of(["a", "b"]), evaluate, LABELS, {**PILOT, "require": "none"}, usd)
    first, later = seen[0], seen[-1]
    assert later[: len(first)] == first and first != gold()["id"].tolist()[: len(first)]


def test_a_tie_goes_to_the_cheaper_candidate_per_text():
    calls: list[tuple[str, int]] = []
    shares = {"dear": 0.8, "cheap": 0.8}
    table, choice = run_pilot(
        gold(),
        settings_of(shares),
        scripted(shares, calls, {"dear": 3.0, "cheap": 1.0}),
        LABELS,
        {**PILOT, "require": "none"},
        usd,
    )
    assert choice["candidate"] == "cheap"
    assert choice["usd_per_1m_texts"] == pytest.approx(1e6)


def test_a_candidate_the_teacher_cannot_answer_is_recorded_and_left_out():
    calls: list[tuple[str, int]] = []
    shares = {"a": 0.5, "b": 0.7}
    table, choice = run_pilot(
        gold(), settings_of(["a", "channel", "b"]), scripted(shares, calls), LABELS, {**PILOT, "require": "none"}, usd
    )
    failed = table.loc[table["candidate"] == "channel", "status"].item()
    assert failed.startswith("failed: direction: channel") and choice["candidate"] == "b"
    assert [name for name, _ in calls].count("channel") == 1


def test_a_winner_no_better_than_guessing_fails_the_requirement_and_the_message_says_what_to_do():
    shares = {"a": 0.2, "b": 0.35}
    table, choice = run_pilot(gold(), settings_of(shares), scripted(shares, []), LABELS, PILOT, usd)
    assert not choice["passed"]
    message = stop_message("smollm2", choice)
    for words in (
        "Tried 2 candidates (a, b)",
        "on 40 gold dev texts",
        "the best, b,",
        "always 'neutral'",
        "stronger teacher",
    ):
        assert words in message
    # The same winner passes when the floor is all that is asked, and fails a floor above it.
    assert run_pilot(gold(), settings_of(shares), scripted(shares, []), LABELS, {**PILOT, "require": "none"}, usd)[1][
        "passed"
    ]
    floor = {**PILOT, "require": "none", "min_f1_macro": 0.99}
    assert not run_pilot(gold(), settings_of(shares), scripted(shares, []), LABELS, floor, usd)[1]["passed"]


def test_a_good_winner_passes_the_default_requirement():
    shares = {"a": 0.95, "b": 0.5}
    choice = run_pilot(gold(), settings_of(shares), scripted(shares, []), LABELS, PILOT, usd)[1]
    assert choice["passed"] and choice["f1_macro_interval"][0] > 0.5


def test_the_trivial_baselines_are_scored_on_the_gold_labels_themselves():
    figures = baselines(gold()["expert_label"], LABELS)
    assert figures["majority"]["label"] == "neutral" and figures["majority"]["accuracy"] == 0.5
    assert figures["majority"]["f1_macro"] == pytest.approx((2 * 0.5 / 1.5) / 3)
    assert figures["prior_random"]["f1_macro"] == pytest.approx(1 / 3)
    assert figures["prior_random"]["accuracy"] == pytest.approx(0.25 + 0.0625 * 2)


def test_candidates_are_the_templates_times_the_kinds_and_few_shot_settings_that_fit():
    prompts = {
        "scores": {
            "template": "config/prompts/label_letters.txt",
            "kind": "label_scores",
            "calibrate": True,
            "aliases": "letters",
        },
        "cot": {"template": "config/prompts/cot_json.txt", "kind": "cot_json", "max_tokens": 64},
    }
    built = candidates(prompts, PILOT, has_shots=True, channel_backend=True)
    assert list(built)[:4] == [
        "scores-label-zero",
        "scores-label-nearest4",
        "scores-label-perlabel",
        "scores-scores-zero",
    ]
    assert len(built) == (3 + 1 + 1) * 3  # (label, scores, calibrated; cot; the built-in channel) × 3 shots
    assert built["scores-calibrated-zero"] == {
        "template": prompts["scores"]["template"],
        "kind": "label_scores",
        "aliases": "letters",
        "calibrate": True,
    }
    assert built["scores-scores-zero"]["calibrate"] is False
    assert "aliases" not in built["scores-label-zero"]  # letters are for scoring, not for sampled answers
    assert built["cot-cot-nearest4"]["examples"] == {"source": "nearest", "k": 4}
    assert built["channel-channel-perlabel"] == {
        "template": PILOT["channel_template"],
        "kind": "label_scores",
        "direction": "channel",
        "examples": {"source": "nearest", "k": 1, "per_label": True},
    }
    # No shots split: no few-shot candidates; an HTTP teacher: no channel candidate.
    plain = candidates(prompts, PILOT, has_shots=False, channel_backend=False)
    assert sorted(plain) == ["cot-cot-zero", "scores-calibrated-zero", "scores-label-zero", "scores-scores-zero"]
    only = candidates(prompts, {**PILOT, "kinds": ["cot_json"], "examples": ["none"]}, True, True)
    assert list(only) == ["cot-cot-zero"]


@pytest.fixture
def config(monkeypatch):
    monkeypatch.chdir(REPO)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["split"]["gold_dev_size"] = 20
    config["pilot"] = {"enabled": True}
    check_against_schema(config)
    return config


def test_the_default_config_with_a_pilot_builds_candidates_with_their_defaults(config):
    from snakemake.utils import validate

    validate(config, str(REPO / "schemas" / "config.schema.yaml"))
    check_config(config)
    built = pilot_candidates(config, "smollm2")
    assert "channel-channel-zero" in built and built["scores-label-zero"]["max_tokens"] == 8
    assert built["cot_json-cot-zero"]["structured"] is True


def test_pilot_settings_it_cannot_work_with_are_refused_in_words(config):
    for change, words in [
        ({"split": {**config["split"], "gold_dev_size": None}}, "pilot.enabled: .*set split.gold_dev_size"),
        ({"annotate": {"strategy": "active"}}, "pilot.enabled with annotate.strategy active"),
        ({"ensembles": {"both": {"members": [["smollm2", "scores"]]}}}, "ensembles: with pilot.enabled"),
        ({"prompts": {**config["prompts"], "pilot": config["prompts"]["scores"]}}, "prompts.pilot: with pilot.enabled"),
        (
            {"pilot": {"enabled": True, "channel_template": "config/prompts/label.txt"}},
            "pilot.channel_template .*ends with",
        ),
        (
            {"task": "multi_label", "prompts": {"scores": config["prompts"]["scores"]}},
            "pilot.enabled: only task single_label",
        ),
    ]:
        bad = copy.deepcopy(config) | change
        with pytest.raises(SynthDistillError, match=words):
            check_config(bad)


def test_a_misspelt_pilot_kind_names_the_key(tmp_path):
    config = {
        "labels": ["a", "b"],
        "dataset": {"path": "x.csv", "text_column": "text"},
        "prompts": {},
        "teachers": {},
        "students": {},
    }
    with pytest.raises(SynthDistillError, match="pilot.kinds"):
        check_against_schema({**config, "pilot": {"kinds": ["label_score"]}})


def test_the_report_section_lists_every_candidate_and_says_which_won_and_why(tmp_path):
    shares = {"a": 0.95, "b": 0.5, "c": 0.3}
    table, choice = run_pilot(gold(), settings_of(shares), scripted(shares, []), LABELS, PILOT, usd)
    table.to_csv(tmp_path / "candidates.csv", index=False)
    (tmp_path / "choice.json").write_text(json.dumps({**choice, "template_source": "label rewrite 1"}))
    section = pilot_section(
        teachers=[
            {
                "teacher": "smollm2",
                "pilot_table": str(tmp_path / "candidates.csv"),
                "pilot_choice": str(tmp_path / "choice.json"),
            }
        ]
    )
    text = " ".join(value for kind, value in section.blocks if kind == "text")
    assert "smollm2: **a** labelled the pool (its template is the teacher's label rewrite 1" in text
    assert "always 'neutral'" in text
    shown = next(value for kind, value in section.blocks if kind == "table")
    assert shown["Candidate"].tolist() == ["a", "b", "c"]
    assert shown["Outcome"].tolist() == ["won", "dropped at rung 1", "dropped at rung 0"]
    assert pilot_section(teachers=[{"teacher": "smollm2"}]) is None


def test_rewrites_are_kept_only_when_they_keep_every_placeholder(tmp_path):
    template = tmp_path / "label.txt"
    template.write_text("Classify the text as one of {labels}.\nText: {text}\nAnswer:\n")
    answers = {
        1: "```\nDecide which of {labels} fits the text best.\nText: {text}\nAnswer:\n```",
        2: "Decide which label fits.",
        3: "",
    }

    def ask(request: str, number: int) -> str:
        assert "{labels}, {text}" in request and template.read_text() in request
        if number == 4:
            raise SynthDistillError("the teacher did not answer: 429")
        return answers[number]

    rows = rewrite_templates({"label": str(template)}, 4, ask, tmp_path)
    assert [row["status"] for row in rows] == [
        "kept",
        "dropped: changed {labels}, {text}",
        "dropped: no answer",
        "dropped: the teacher did not answer: 429",
    ]
    kept = rows[0]
    assert kept["name"] == "label_r1" and (tmp_path / "label_r1.txt").read_text() == kept["text"]
    assert kept["text"].startswith("Decide which of {labels}") and "```" not in kept["text"]
    assert clean_rewrite('"Say {text}"') == "Say {text}\n" and clean_rewrite(None) == ""


def test_kept_rewrites_join_the_label_candidates_of_their_template_only():
    settings = {
        "label-label-zero": {"template": "a.txt", "kind": "label"},
        "label-calibrated-perlabel": {"template": "a.txt", "kind": "label_scores", "calibrate": True},
        "label-channel-zero": {"template": "c.txt", "kind": "label_scores", "direction": "channel"},
        "cot-cot-zero": {"template": "b.txt", "kind": "cot_json"},
    }
    rewrites = [
        {"source": "label", "rewrite": 1, "name": "label_r1", "path": "r1.txt"},
        {"source": "label", "rewrite": 2, "name": "label_r2", "path": None},
    ]
    extended = with_rewrites(settings, rewrites)
    assert list(extended)[len(settings) :] == ["label_r1-label-zero", "label_r1-calibrated-perlabel"]
    assert extended["label_r1-calibrated-perlabel"] == {"template": "r1.txt", "kind": "label_scores", "calibrate": True}
    assert settings["label-label-zero"]["template"] == "a.txt"


def test_serving_with_prompt_pilot_reads_the_teachers_choice(tmp_path, monkeypatch):
    from synthdistill.serving.deferral import served_prompt

    monkeypatch.chdir(tmp_path)
    config = {"pilot": {"enabled": True}, "prompts": {"scores": {"template": "t.txt", "kind": "label_scores"}}}
    with pytest.raises(SynthDistillError, match="results/pilot/smollm2/choice.json does not exist"):
        served_prompt(config, "smollm2", "pilot")
    chosen = {"template": "results/pilot/smollm2/template.txt", "kind": "label_scores", "direction": "channel"}
    (tmp_path / "results/pilot/smollm2").mkdir(parents=True)
    (tmp_path / "results/pilot/smollm2/choice.json").write_text(json.dumps({"settings": chosen}))
    assert served_prompt(config, "smollm2", "pilot") == chosen
    with pytest.raises(SynthDistillError, match="--prompt pilot: not in prompts"):
        served_prompt({**config, "pilot": {"enabled": False}}, "smollm2", "pilot")
