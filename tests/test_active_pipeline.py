"""annotate.strategy active in real Snakemake runs: the embedded SmolLM2 teacher labels the rounds the
MiniLM students choose, through the engine and the response cache, and the rest of the pipeline runs
on the chosen texts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from .conftest import copy_workflow
from .pipeline_helpers import TINY_CONFIG, cache_rows, make_workdir, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

ROUNDS = 3
ITERATIONS = TINY_CONFIG["self_consistency"]["iterations"]
ACTIVE = {
    "annotate": {"strategy": "active"},
    "active": {"seed_share": 0.2, "round_share": 0.2, "max_rounds": ROUNDS},
    # One prompt keeps the run short; the rounds do not depend on how many there are.
    "prompts": {"label": TINY_CONFIG["prompts"]["label"]},
}
ROUNDS_DIR = "results/active/smollm2/label"


@pytest.fixture(scope="module")
def active_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("active"), **ACTIVE)
    snakemake(workdir)
    return workdir


def test_the_rounds_choose_what_the_teacher_is_paid_for_and_nothing_else(active_run):
    splits = {
        name: pd.read_parquet(active_run / f"results/data/{name}.parquet") for name in ("train", "validation", "test")
    }
    selection = pd.read_parquet(active_run / ROUNDS_DIR / "selection.parquet")
    pool = len(splits["train"])
    per_round = max(1, round(0.2 * pool))
    assert sorted(selection["round"].unique()) == list(range(ROUNDS))
    assert len(selection) == ROUNDS * per_round and selection["id"].is_unique
    assert set(selection["id"]) < set(splits["train"]["id"])
    # Round 0 is the random seed; later rounds took the most uncertain texts their student left.
    assert (selection.loc[selection["round"] > 0, "query"] == "uncertainty").all()
    for r in range(1, ROUNDS):
        scores = pd.read_parquet(active_run / ROUNDS_DIR / f"round{r - 1}/scores.parquet")
        chosen = selection.loc[selection["round"] == r, "id"]
        assert (
            scores.set_index("id").loc[chosen, "uncertainty"].min()
            >= scores.loc[~scores["id"].isin(chosen), "uncertainty"].max()
        )
    # Every call the teacher was paid for: the chosen train texts, validation and test, each iteration.
    expected = (len(selection) + len(splits["validation"]) + len(splits["test"])) * ITERATIONS
    assert cache_rows(active_run) == expected
    votes = pd.read_parquet(active_run / "results/votes/smollm2/label.parquet")
    assert set(votes.loc[votes["split"] == "train", "id"]) == set(selection["id"])
    assert (votes["split"] == "test").sum() == len(splits["test"])
    # The annotate jobs after the rounds found every chosen text's answers already paid for.
    iteration = pd.read_parquet(active_run / "results/annotations/smollm2/label/iter0.parquet")
    assert iteration.loc[iteration["split"] != "test", "cached"].all()


def test_each_round_leaves_its_choice_its_student_and_its_figures(active_run):
    rounds = pd.read_csv(active_run / ROUNDS_DIR / "rounds.csv")
    assert rounds["round"].tolist() == list(range(ROUNDS))
    assert rounds["texts"].is_monotonic_increasing and rounds["calls"].is_monotonic_increasing
    for r in range(ROUNDS):
        figures = json.loads((active_run / ROUNDS_DIR / f"round{r}/round.json").read_text())
        status = json.loads((active_run / ROUNDS_DIR / f"round{r}/selection.json").read_text())
        assert 0.0 <= figures["validation_f1_macro"] <= 1.0 and figures["test_f1_macro"] is not None
        assert status["round"] == r and status["chosen"] == figures["new_texts"]
        if figures["trained"]:
            assert (active_run / ROUNDS_DIR / f"round{r}/student/config.json").exists()
            votes = pd.read_parquet(active_run / ROUNDS_DIR / f"round{r}/labels/votes.parquet")
            assert (votes["split"] == "train").sum() == figures["texts"]
    report = (active_run / "results/report/report.md").read_text()
    assert "## Active distillation" in report
    assert f"of the {len(pd.read_parquet(active_run / 'results/data/train.parquet'))} train texts" in report


def test_raising_max_rounds_plans_the_new_round_and_reruns_none_before_it(active_run, tmp_path):
    more = write_config(tmp_path / "more.yaml", {"active": {**ACTIVE["active"], "max_rounds": ROUNDS + 1}})
    jobs = planned_jobs(active_run, "--configfile", str(more))
    rounds = {wildcards["round"] for rule, wildcards in jobs if "round" in wildcards}
    assert rounds == {str(ROUNDS)}
    assert {"active_select", "active_annotate", "active_train", "active_pool"} <= {rule for rule, _ in jobs}


def test_a_rerun_plans_nothing_and_rerunning_the_rounds_pays_for_nothing(active_run):
    assert planned_jobs(active_run) == []
    rows = cache_rows(active_run)
    annotations = [f"{ROUNDS_DIR}/round{r}/annotations.parquet" for r in range(ROUNDS)]
    snakemake(active_run, *annotations, "--forcerun", "active_annotate")
    assert cache_rows(active_run) == rows
    for r in range(ROUNDS):
        assert pd.read_parquet(active_run / ROUNDS_DIR / f"round{r}/annotations.parquet")["cached"].all()


def test_a_run_killed_mid_round_resumes_without_paying_twice(tmp_path):
    workdir = make_workdir(tmp_path, **{**ACTIVE, "active": {**ACTIVE["active"], "max_rounds": 1}})
    target = f"{ROUNDS_DIR}/rounds.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", target],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while cache_rows(workdir) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        paid_before_kill = cache_rows(workdir)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert paid_before_kill >= 3, "round 0 never started paying"
    assert not (workdir / ROUNDS_DIR / "round0/annotations.parquet").exists(), "the kill came after round 0's calls"
    # What a user does after a kill: release Snakemake's lock, then run again.
    snakemake(workdir, "--unlock", target)
    snakemake(workdir, target, "--rerun-incomplete")
    answers = pd.read_parquet(workdir / ROUNDS_DIR / "round0/annotations.parquet")
    # What was paid before the kill came back from the cache, and nothing else was paid for.
    assert answers["cached"].sum() >= paid_before_kill
    assert cache_rows(workdir) == len(answers)


def test_multi_label_rounds_choose_by_the_mean_uncertainty_over_labels(tmp_path):
    from .test_multi_label_pipeline import CONFIG

    workdir = copy_workflow(tmp_path)
    config = {**CONFIG, **ACTIVE, "prompts": CONFIG["prompts"], "active": {**ACTIVE["active"], "max_rounds": 2}}
    write_config(workdir / "config" / "config.yaml", config)
    snakemake(workdir, "results/active/smollm2/labels_json/rounds.csv")
    rounds_dir = workdir / "results/active/smollm2/labels_json"
    selection = pd.read_parquet(rounds_dir / "selection.parquet")
    scores = pd.read_parquet(rounds_dir / "round0/scores.parquet")
    labels = CONFIG["labels"]
    # Each label a yes/no question: the text's uncertainty is the mean of 1 - |p - (1 - p)| over labels.
    probabilities = scores[[f"prob_{label}" for label in labels]].to_numpy()
    assert scores["uncertainty"].to_numpy() == pytest.approx((1 - abs(2 * probabilities - 1)).mean(axis=1), abs=1e-6)
    chosen = selection.loc[selection["round"] == 1, "id"]
    assert (
        len(chosen)
        and scores.set_index("id").loc[chosen, "uncertainty"].min()
        >= scores.loc[~scores["id"].isin(chosen), "uncertainty"].max()
    )
    validation = pd.read_parquet(workdir / "results/data/validation.parquet")
    assert cache_rows(workdir) == (len(selection) + len(validation)) * CONFIG["self_consistency"]["iterations"]
    votes = pd.read_parquet(rounds_dir / "round1/labels/votes.parquet")
    assert set(votes.loc[votes["split"] == "train", "id"]) == set(selection["id"])
