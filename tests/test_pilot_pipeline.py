"""pilot.enabled in real Snakemake runs: the embedded SmolLM2 teacher answers every candidate on the gold
dev split through the engine and the response cache, the winner labels the pool as prompt 'pilot', and a
winner that does not meet pilot.require stops the run before the pool is labelled."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from .pipeline_helpers import TINY_CONFIG, cache_rows, make_workdir, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

GOLD_DEV = 8
PILOT = {
    "split": {**TINY_CONFIG["split"], "gold_dev_size": GOLD_DEV},
    # Three candidates keep the run short: a sampled label prompt, calibrated scores, the channel prompt.
    "pilot": {
        "enabled": True,
        "kinds": ["label", "label_scores_calibrated", "channel"],
        "examples": ["none"],
        "require": "none",
        "rewrites": 1,
    },
    "prompts": {"label": TINY_CONFIG["prompts"]["label"]},
}
CANDIDATES = ["label-label-zero", "label-calibrated-zero", "channel-channel-zero"]
PILOT_DIR = "results/pilot/smollm2"


@pytest.fixture(scope="module")
def pilot_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("pilot"), **PILOT)
    snakemake(workdir)
    return workdir


def test_the_plan_shows_the_pilot_before_any_pool_job(tmp_path):
    workdir = make_workdir(tmp_path, **PILOT)
    rules = {rule for rule, _ in planned_jobs(workdir)}
    assert "pilot" in rules and not rules & {"build_prompts", "annotate", "gather_annotations"}


def test_successive_halving_scores_every_candidate_first_and_only_the_best_on_every_text(pilot_run):
    table = pd.read_csv(pilot_run / PILOT_DIR / "candidates.csv")
    choice = json.loads((pilot_run / PILOT_DIR / "choice.json").read_text())
    rewrites = pd.read_csv(pilot_run / PILOT_DIR / "rewrites.csv", keep_default_na=False)
    # SmolLM2 wrote one rewrite of the label template; kept, it is tried with both label kinds.
    assert rewrites[["source", "rewrite"]].values.tolist() == [["label", 1]]
    kept = rewrites["status"].item() == "kept"
    assert kept or rewrites["status"].item().startswith("dropped: ")
    tried = CANDIDATES + (["label_r1-label-zero", "label_r1-calibrated-zero"] if kept else [])
    assert sorted(table.loc[table["rung"] == 0, "candidate"]) == sorted(tried)
    assert table.groupby("rung")["texts"].first().tolist()[0] == 2
    assert table.groupby("rung")["texts"].first().tolist()[-1] == GOLD_DEV
    last = table.loc[table["rung"] == 2]
    assert last["candidate"].tolist() == [choice["candidate"]] and last["status"].tolist() == ["won"]
    # Each candidate was dropped on the rung its F1 macro ranked it out, and never asked again.
    for rung in (0, 1):
        rows = table.loc[table["rung"] == rung].reset_index(drop=True)
        assert rows["f1_macro"].is_monotonic_decreasing
        dropped = rows.loc[rows["status"].str.startswith("dropped"), "candidate"]
        assert not table.loc[table["rung"] > rung, "candidate"].isin(dropped).any()
    assert choice["gold_dev_texts"] == GOLD_DEV and choice["requests_made"] > 0
    assert choice["f1_macro_interval"][0] <= choice["f1_macro"] <= choice["f1_macro_interval"][1]


def test_the_winner_labels_the_pool_and_its_gold_dev_answers_were_already_paid_for(pilot_run):
    from synthdistill.settings import settings_iterations

    choice = json.loads((pilot_run / PILOT_DIR / "choice.json").read_text())
    iterations = settings_iterations(choice["settings"], TINY_CONFIG)
    files = sorted((pilot_run / "results/annotations/smollm2/pilot").glob("iter*.parquet"))
    assert len(files) == iterations
    first = pd.read_parquet(files[0])
    assert set(first["split"]) == {"train", "validation", "test", "gold_dev"}
    assert first.loc[first["split"] == "gold_dev", "cached"].all()
    assert not first.loc[first["split"] == "train", "cached"].any()
    # The pool's prompts were built from the winner's template, copied where build_prompts reads it.
    assert choice["settings"]["template"] == f"{PILOT_DIR}/template.txt"
    source = choice["template_source"]
    if "rewrite" not in source:
        assert (pilot_run / PILOT_DIR / "template.txt").read_text() == (pilot_run / source).read_text()
    prompts = pd.read_parquet(pilot_run / "results/prompts/smollm2/pilot.parquet")
    is_channel = choice["settings"].get("direction") == "channel"
    assert all(isinstance(json.loads(cell), list) for cell in prompts["rendered"]) == is_channel
    assert (prompts["split"] == "calibration").any() == bool(choice["settings"].get("calibrate"))
    report = (pilot_run / "results/report/report.md").read_text()
    assert "## Pilot" in report and f"smollm2: **{choice['candidate']}** labelled the pool" in report


def test_a_rerun_plans_nothing_and_rerunning_the_pilot_pays_for_nothing(pilot_run):
    assert planned_jobs(pilot_run) == []
    rows = cache_rows(pilot_run)
    snakemake(pilot_run, f"{PILOT_DIR}/choice.json", "--forcerun", "pilot")
    assert cache_rows(pilot_run) == rows
    assert json.loads((pilot_run / PILOT_DIR / "choice.json").read_text())["requests_made"] == 0


def test_a_winner_below_the_requirement_stops_before_the_pool_and_keeps_what_was_paid(pilot_run, tmp_path):
    choice = json.loads((pilot_run / PILOT_DIR / "choice.json").read_text())
    assert choice["f1_macro"] < 1.0, "the teacher was perfect on gold dev: no floor above it to test"
    workdir = make_workdir(tmp_path, **{**PILOT, "pilot": {**PILOT["pilot"], "min_f1_macro": 1.0}})
    (workdir / "cache").mkdir()
    shutil.copy(pilot_run / "cache" / "responses.sqlite", workdir / "cache" / "responses.sqlite")
    rows = cache_rows(workdir)
    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    log = (workdir / "logs/pilot/smollm2.log").read_text()
    assert "no candidate is worth paying the pool for" in log
    assert f"Tried {len(choice['tried'])} candidates ({', '.join(choice['tried'])})" in log
    assert "below pilot.min_f1_macro 1.0" in log
    assert not (workdir / "results/annotations").exists() and not (workdir / "results/prompts").exists()
    assert cache_rows(workdir) == rows  # every pilot answer came from the cache of the first run
    # Lowering the floor goes on from there, without paying for the pilot again.
    write_config(workdir / "more.yaml", {"pilot": {**PILOT["pilot"], "min_f1_macro": None}})
    snakemake(workdir, f"{PILOT_DIR}/choice.json", "--configfile", str(workdir / "more.yaml"))
    assert json.loads((workdir / PILOT_DIR / "choice.json").read_text())["requests_made"] == 0
