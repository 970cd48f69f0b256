"""The active rounds' choices, budget, stopping and files (students/active_rounds.py), and the config
they refuse. The real rounds, with the embedded teacher and MiniLM, are in test_active_pipeline.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.reporting.active import active_section
from synthdistill.schema import check_against_schema, defaults
from synthdistill.settings import check_active
from synthdistill.students.active_rounds import (
    SELECTION_COLUMNS,
    active_prompts,
    annotate_round,
    check_dollar_budget,
    round_prompts,
    rounds_table,
    select_round,
)
from synthdistill.tasks import check_task

SETTINGS = {**defaults("active"), "seed_share": 0.1, "round_share": 0.1}
NONE_CHOSEN = pd.DataFrame(columns=SELECTION_COLUMNS)


def pool(size: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"t{i}" for i in range(size)], "text": [f"text {i}" for i in range(size)]})


def trained(round_: int, f1: float) -> dict:
    return {"round": round_, "trained": True, "validation_f1_macro": f1}


def test_round_zero_draws_its_share_of_the_pool_at_random_and_reproducibly():
    first, status = select_round(0, pool(), NONE_CHOSEN, None, [], SETTINGS)
    again, _ = select_round(0, pool(), NONE_CHOSEN, None, [], SETTINGS)
    other, _ = select_round(0, pool(), NONE_CHOSEN, None, [], {**SETTINGS, "seed": 1})
    assert len(first) == 5 and status["chosen"] == 5 and status["stopped"] is None
    assert first["id"].tolist() == again["id"].tolist()
    assert set(first["id"]) != set(other["id"])
    assert (first["query"] == "seed").all() and first["uncertainty"].isna().all()


def test_a_later_round_takes_the_texts_the_student_is_least_sure_of_and_none_already_labelled():
    chosen = pd.DataFrame({"id": ["t0", "t1", "t2"], "round": 0, "query": "seed", "uncertainty": np.nan, "rank": 0})
    # t0 .. t2 are the most uncertain of all but already labelled: they must not come back.
    scores = pd.DataFrame({"id": [f"t{i}" for i in range(50)], "uncertainty": np.linspace(1.0, 0.0, 50)})
    scores = scores.loc[~scores["id"].isin(chosen["id"])]
    selection, _ = select_round(1, pool(), chosen, scores, [trained(0, 0.5)], SETTINGS)
    assert selection["id"].tolist() == ["t3", "t4", "t5", "t6", "t7"]
    assert selection["uncertainty"].is_monotonic_decreasing and (selection["query"] == "uncertainty").all()


def test_scores_that_miss_pool_texts_stop_the_round_naming_the_rule_to_rerun():
    chosen = pd.DataFrame({"id": ["t0"], "round": 0, "query": "seed", "uncertainty": np.nan, "rank": 0})
    scores = pd.DataFrame({"id": ["t1"], "uncertainty": [0.5]})
    with pytest.raises(SynthDistillError, match="miss 48 texts.*active_train"):
        select_round(1, pool(), chosen, scores, [trained(0, 0.5)], SETTINGS)


def test_the_budget_caps_a_round_and_then_stops_the_rounds():
    settings = {**SETTINGS, "max_texts": 7}
    seed, _ = select_round(0, pool(), NONE_CHOSEN, None, [], settings)
    scores = pd.DataFrame({"id": pool()["id"], "uncertainty": 0.5})
    capped, _ = select_round(1, pool(), seed, scores, [trained(0, 0.5)], settings)
    assert len(seed) == 5 and len(capped) == 2
    chosen = pd.concat([seed, capped])
    after, status = select_round(2, pool(), chosen, scores, [trained(0, 0.5), trained(1, 0.6)], settings)
    assert after.empty and status["stopped"].startswith("budget spent: 7 texts")


PRICED = {"basis": "tokens", "price": {"input_per_1m_tokens": 1e6, "output_per_1m_tokens": 0.0}}


def test_a_dollar_budget_buys_what_is_left_at_the_cost_per_text_so_far_then_stops():
    settings = {**SETTINGS, "max_usd": 100.0}
    seed, _ = select_round(0, pool(), NONE_CHOSEN, None, [], settings, PRICED)
    assert len(seed) == 5  # round 0 runs whatever the budget: nothing is known of the cost yet
    scores = pd.DataFrame({"id": pool()["id"], "uncertainty": 0.5})
    # Round 0 paid $60 (60 input tokens at $1 each) for 5 texts: $12 a text, so $40 buys 3.
    paid = [{**trained(0, 0.5), "annotation": {"answers": 6, "input_tokens": 60, "output_tokens": 6}}]
    capped, _ = select_round(1, pool(), seed, scores, paid, settings, PRICED)
    assert len(capped) == 3
    spent = [*paid, {**trained(1, 0.6), "annotation": {"answers": 4, "input_tokens": 40, "output_tokens": 4}}]
    after, status = select_round(2, pool(), pd.concat([seed, capped]), scores, spent, settings, PRICED)
    assert after.empty and status["stopped"] == "budget spent: $100 paid, active.max_usd is 100"


def test_a_dollar_budget_with_an_unpriced_teacher_is_refused_before_any_call():
    with pytest.raises(SynthDistillError, match="teacher gpt's calls are not priced.*teachers.gpt.price"):
        check_dollar_budget({"cheap": PRICED, "gpt": {"basis": "tokens", "price": None}})
    check_dollar_budget({"cheap": PRICED})


def test_the_stopping_rule_reads_only_rounds_that_trained():
    scores = pd.DataFrame({"id": pool()["id"], "uncertainty": 0.5})
    chosen = pd.DataFrame({"id": ["t0"], "round": 0, "query": "seed", "uncertainty": np.nan, "rank": 0})
    rising = [trained(0, 0.5), trained(1, 0.6), trained(2, 0.7)]
    flat = [trained(0, 0.5), trained(1, 0.502), trained(2, 0.503)]
    going, _ = select_round(3, pool(), chosen, scores, rising, SETTINGS)
    stopped, status = select_round(3, pool(), chosen, scores, flat, SETTINGS)
    assert len(going) == 5
    assert stopped.empty and "stopping rule" in status["stopped"] and "round 2" in status["stopped"]
    # A round that passed on its predecessor's figures is not a new flat round.
    passed = [trained(0, 0.5), trained(1, 0.6), {**trained(1, 0.6), "round": 2, "trained": False}]
    again, _ = select_round(3, pool(), chosen, scores, passed, SETTINGS)
    assert len(again) == 5


def test_a_labelled_pool_stops_the_rounds():
    everything = pool(5).assign(round=0, query="seed", uncertainty=np.nan, rank=0)
    selection, status = select_round(1, pool(5), everything, pool(5).assign(uncertainty=0.1), [], SETTINGS)
    assert selection.empty and status["stopped"] == "every text of the train pool is labelled"


def prompts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "v", "t", "cal"],
            "split": ["train", "train", "train", "validation", "test", "calibration"],
            "prompt": ["p"] * 6,
        }
    )


def test_round_zero_also_labels_validation_and_every_round_keeps_the_calibration_row():
    assert round_prompts(prompts(), pd.Series(["a"]), 0)["id"].tolist() == ["a", "v", "cal"]
    assert round_prompts(prompts(), pd.Series(["b"]), 1)["id"].tolist() == ["b", "cal"]
    assert active_prompts(prompts(), pd.Series(["a", "c"]))["id"].tolist() == ["a", "c", "v", "t", "cal"]


def test_a_round_that_chose_nothing_makes_no_call_and_others_ask_every_iteration():
    def refuse(rows, iteration):
        raise AssertionError("a call was made")

    assert annotate_round(prompts(), NONE_CHOSEN, 2, 3, refuse).empty
    asked = []

    def record(rows, iteration):
        asked.append((tuple(rows["id"]), iteration))
        return rows[["id", "split"]].assign(label="x")

    chosen = pd.DataFrame({"id": ["b"], "round": 1})
    frame = annotate_round(prompts(), chosen, 1, 3, record)
    assert asked == [(("b", "cal"), 0), (("b", "cal"), 1), (("b", "cal"), 2)]
    assert frame["iteration"].tolist() == [0, 0, 1, 1, 2, 2]


def figures(round_: int, texts: int, answers: int | None, f1: float, trained_: bool = True) -> dict:
    annotation = (
        None
        if answers is None
        else {"answers": answers, "input_tokens": 10 * answers, "output_tokens": answers, "compute_s": 0.5 * answers}
    )
    return {
        "round": round_,
        "trained": trained_,
        "student_of_round": round_ if trained_ else round_ - 1,
        "texts": texts,
        "new_texts": texts,
        "annotation": annotation,
        "validation_f1_macro": f1,
        "test_f1_macro": f1 - 0.1,
    }


def test_the_rounds_table_adds_up_what_was_paid_and_the_report_says_what_was_saved(tmp_path):
    table = rounds_table([figures(0, 4, 20, 0.5), figures(1, 8, 8, 0.6), figures(2, 8, None, 0.6, False)], 40, 2)
    assert table["calls"].tolist() == [20, 28, 28]
    assert table["input_tokens"].tolist() == [200, 280, 280]
    assert table["pool_share"].tolist() == [0.1, 0.2, 0.2]
    path = tmp_path / "rounds.csv"
    table.to_csv(path, index=False)
    section = active_section(teachers=[{"teacher": "t", "prompt": "p", "active_rounds": str(path), "costing": PRICED}])
    text = " ".join(value for kind, value in section.blocks if kind == "text")
    # 32 of the 40 texts were never asked, at 2 calls each; $280 for 28 calls is $10 per call.
    assert "labelled 8 of the 40 train texts (20%) in 2 trained round(s); the rounds stopped after round 1" in text
    assert "64 more calls (about $640" in text
    # The student's fixed cost ($300) grows by the $640 not spent: at $10 saved per text, 94 texts, not 30.
    breaks = pd.DataFrame(
        {
            "student": ["minilm"],
            "teacher_prompt": ["t/p"],
            "fixed_usd": [300.0],
            "teacher_usd_per_1m_texts": [12e6],
            "student_usd_per_1m_texts": [2e6],
            "break_even_texts": [30],
        }
    )
    entry = {"teacher": "t", "prompt": "p", "active_rounds": str(path), "costing": PRICED}
    with_breaks = active_section(teachers=[entry], breaks=breaks)
    lines = [value for kind, value in with_breaks.blocks if kind == "text"]
    assert "minilm: pays for itself after 30 texts; with every train text labelled it would have after 94." in lines
    shown = next(value for kind, value in section.blocks if kind == "table")
    assert shown["$ so far"].tolist() == ["200.0", "280.0", "280.0"]
    assert active_section(teachers=[{"teacher": "t", "prompt": "p", "active_rounds": None}]) is None


def test_spans_ensembles_and_an_unknown_round_student_are_refused_in_words():
    base = {"annotate": {"strategy": "active"}, "prompts": {}, "students": {"minilm": {}}}
    with pytest.raises(SynthDistillError, match="annotate.strategy: only task single_label or multi_label"):
        check_task({**base, "task": "spans"})
    with pytest.raises(SynthDistillError, match="active.student: 'bert' is not a student.*minilm"):
        check_active({**base, "active": {"student": "bert"}})
    with pytest.raises(SynthDistillError, match="ensembles: with annotate.strategy active"):
        check_active({**base, "ensembles": {"both": {}}})
    check_active({**base, "annotate": {"strategy": "all"}, "ensembles": {"both": {}}})


def test_a_misspelt_query_names_the_key_and_the_closest_choice(tmp_path):
    config = {
        "labels": ["a", "b"],
        "dataset": {"path": "x.csv", "text_column": "text"},
        "prompts": {},
        "teachers": {},
        "students": {},
        "active": {"query": "uncertain"},
    }
    with pytest.raises(SynthDistillError, match="active.query.*uncertainty"):
        check_against_schema(config)
