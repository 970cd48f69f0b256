"""Sharded annotation, the cluster profiles, and a real run through the cluster-generic executor.

The teacher is an OpenAI-compatible loopback server (the fault proxy's fake upstream, whose label
is a hash of the prompt), so these runs exercise the real HTTP backend and cache without an LLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.shards import gather_shards, select_shard, shard_bounds

from .conftest import REPO
from .pipeline_helpers import (
    TINY_CONFIG,
    dry_run_jobs,
    make_workdir,
    planned_jobs,
    rules_of,
    snakemake,
    write_config,
)
from .servers import FaultPlan, FaultProxy

PROMPTS = ("label", "cot_json")
ITERATIONS = (0, 1)
VOLATILE = ["latency_s", "compute_s", "cached"]  # differ between a fresh request and the same one from the cache


# -- unit: shard bounds and selection -------------------------------------------------------------


def test_shards_are_contiguous_cover_every_item_once_and_differ_by_at_most_one():
    for n in (0, 1, 7, 30, 100_001):
        for k in (1, 2, 3, 8, 40):
            bounds = [shard_bounds(n, s, k) for s in range(k)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(SynthDistillError, match="shard 3 of 3"):
        shard_bounds(10, 3, 3)


def test_every_shard_gets_the_calibration_row_and_gathering_restores_the_order(tmp_path):
    prompts = pd.DataFrame(
        {"id": [f"i{n}" for n in range(10)] + ["__content_free__"], "split": ["train"] * 10 + ["calibration"]}
    )
    shards = [select_shard(prompts, s, 3) for s in range(3)]
    assert [list(s["id"]) for s in shards] == [
        ["i0", "i1", "i2", "__content_free__"],
        ["i3", "i4", "i5", "__content_free__"],
        ["i6", "i7", "i8", "i9", "__content_free__"],
    ]
    paths = []
    for number, shard in enumerate(shards):
        # What annotate writes: the calibration row is dropped from its output.
        paths.append(tmp_path / f"shard{number}.parquet")
        shard.loc[shard["split"] != "calibration"].to_parquet(paths[-1], index=False)
    ids = [f"i{n}" for n in range(10)]
    assert list(gather_shards(paths, ids)["id"]) == ids
    with pytest.raises(SynthDistillError, match="do not cover"):
        gather_shards(paths[:2], ids)
    with pytest.raises(SynthDistillError, match="in two shards"):
        gather_shards([paths[0], paths[0]], ids)


def test_more_shards_than_items_leaves_empty_shards_that_change_nothing(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "label": ["positive", None], "input_tokens": [3, 4]})
    frame["input_tokens"] = frame["input_tokens"].astype("Int64")
    paths = []
    for number in range(4):
        start, stop = shard_bounds(2, number, 4)
        paths.append(tmp_path / f"s{number}.parquet")
        # An annotate job with no rows writes untyped (object) columns, as this does.
        part = frame.iloc[start:stop] if stop > start else pd.DataFrame(columns=list(frame.columns))
        part.to_parquet(paths[-1], index=False)
    assert [len(pd.read_parquet(p)) for p in paths] == [0, 1, 0, 1]
    pd.testing.assert_frame_equal(gather_shards(paths, ["a", "b"]), frame)


# -- real Snakemake runs against a loopback OpenAI-compatible server -----------------------------


@pytest.fixture(scope="module")
def proxy():
    with FaultProxy("fake", FaultPlan()) as server:
        yield server


def fake_config(proxy: FaultProxy, shards: int, **overrides) -> dict:
    teacher = {
        "backend": "openai",
        "base_url": proxy.base_url,
        "model": "fake",
        "api_key_env": None,
        "temperature": 0.7,
        "seed": 0,
        "concurrency": 4,
        "price": {"input_per_1m_tokens": 1.0, "output_per_1m_tokens": 2.0},
    }
    return {
        **TINY_CONFIG,
        "teachers": {"fake": teacher},
        "annotate": {"shards": shards},
        **overrides,
    }


def vote_targets(prompts=PROMPTS) -> list[str]:
    return [f"results/votes/fake/{p}.parquet" for p in prompts]


def read_iterations(workdir, prompts=PROMPTS) -> dict[tuple[str, int], pd.DataFrame]:
    return {
        (p, i): pd.read_parquet(workdir / "results" / "annotations" / "fake" / p / f"iter{i}.parquet")
        for p in prompts
        for i in ITERATIONS
    }


@pytest.mark.slow
def test_resharding_gives_identical_iterations_and_votes_and_costs_no_request(proxy, tmp_path):
    workdir = new_workdir(tmp_path / "a")
    write_config(workdir / "config" / "config.yaml", fake_config(proxy, shards=1, cache=cache_of(tmp_path / "a")))
    proxy.reset()
    snakemake(workdir, *vote_targets())
    requests_k1 = proxy.stats()["received"]
    assert requests_k1 == 30 * len(PROMPTS) * len(ITERATIONS)  # every item once per iteration
    k1 = read_iterations(workdir)
    votes_k1 = {p: pd.read_parquet(workdir / "results" / "votes" / "fake" / f"{p}.parquet") for p in PROMPTS}
    assert not any(frame["cached"].any() for frame in k1.values())

    # K = 3 in the same folder and cache: three annotate jobs per iteration, gathered, zero requests.
    config = write_config(workdir / "config" / "k3.yaml", fake_config(proxy, shards=3, cache=cache_of(tmp_path / "a")))
    jobs = planned_jobs(workdir, *vote_targets(), "--configfile", str(config))
    assert rules_of(jobs) == {"annotate": 12, "gather_annotations": 4, "vote": 2}
    # Snakemake's scattergather items: annotate.shards = 3 gives 1-of-3, 2-of-3, 3-of-3.
    assert sorted({w["scatteritem"] for rule, w in jobs if rule == "annotate"}) == ["1-of-3", "2-of-3", "3-of-3"]
    proxy.reset()
    snakemake(workdir, *vote_targets(), "--configfile", str(config))
    assert proxy.stats()["received"] == 0
    shard_sizes = [
        len(pd.read_parquet(workdir / "results" / "annotations" / "fake" / "label" / "iter0" / f"{s}-of-3.parquet"))
        for s in (1, 2, 3)
    ]
    assert shard_sizes == [10, 10, 10]
    k3 = read_iterations(workdir)
    for key, frame in k3.items():
        assert frame["cached"].all(), key
        # Latency comes back from the cache, so only `cached` differs from the K = 1 run.
        pd.testing.assert_frame_equal(frame.drop(columns="cached"), k1[key].drop(columns="cached"))
    for prompt in PROMPTS:
        votes = pd.read_parquet(workdir / "results" / "votes" / "fake" / f"{prompt}.parquet")
        pd.testing.assert_frame_equal(votes, votes_k1[prompt])
        stats = json.loads((workdir / "results" / "votes" / "fake" / f"{prompt}.stats.json").read_text())
        assert stats["annotation"]["requests_made"] == 0
        assert stats["annotation"]["cache_hits"] == 30 * len(ITERATIONS)

    # K = 8 from an empty cache (8 does not divide 30), for one prompt: the same answers, each
    # requested once.
    fresh = new_workdir(tmp_path / "b")
    write_config(fresh / "config" / "config.yaml", fake_config(proxy, shards=8, cache=cache_of(tmp_path / "b")))
    proxy.reset()
    snakemake(fresh, *vote_targets(["label"]))
    stats = proxy.stats()
    assert stats["received"] == 30 * len(ITERATIONS) and stats["max_received_per_body"] == 1
    for key, frame in read_iterations(fresh, ["label"]).items():
        pd.testing.assert_frame_equal(frame.drop(columns=VOLATILE), k1[key].drop(columns=VOLATILE))
    votes = pd.read_parquet(fresh / "results" / "votes" / "fake" / "label.parquet")
    pd.testing.assert_frame_equal(votes, votes_k1["label"])


def new_workdir(root, **overrides):
    root.mkdir(parents=True)
    return make_workdir(root, **overrides)


def cache_of(root) -> dict:
    return {"path": str(root / "cache" / "responses.sqlite")}


# -- profiles ---------------------------------------------------------------------------------------


def planned_resources(workdir, *args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run prints."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *args], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dry_run_jobs(result.stdout + result.stderr, "resources")


@pytest.mark.slow
def test_slurm_profile_dry_run_shows_every_job_with_the_profiles_resources(tmp_path):
    import yaml

    pytest.importorskip("snakemake_executor_plugin_slurm")
    workdir = make_workdir(tmp_path, annotate={"shards": 4})
    profile = yaml.safe_load((workdir / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    jobs = planned_resources(workdir, "--workflow-profile", "profiles/slurm")
    counts = rules_of(jobs)
    assert counts["annotate"] == 2 * 2 * 4  # prompts × iterations × shards
    assert counts["gather_annotations"] == 4
    # Snakemake's --set-scatter overrides annotate.shards for one invocation.
    rescattered = planned_jobs(
        workdir, "results/annotations/smollm2/label/iter0.parquet", "--set-scatter", "annotate=2"
    )
    assert sorted(w["scatteritem"] for rule, w in rescattered if rule == "annotate") == ["1-of-2", "2-of-2"]
    declared = workflow_facts(workdir)["resources"]
    for rule, resources in jobs:
        # Precedence: the profile's default-resources, then the rule's own, then set-resources.
        expected = {**profile["default-resources"], **declared[rule], **profile["set-resources"].get(rule, {})}
        for name, value in expected.items():
            assert resources.get(name) == str(value), (rule, name, resources)
    by_rule = {rule: resources for rule, resources in jobs}
    # Generic resources declared by the rules reach the executor unchanged.
    assert by_rule["annotate"]["api_calls"] == "1" and by_rule["annotate"]["runtime"] == "240"
    assert by_rule["train_student"]["gpu"] == "1" and by_rule["train_student"]["mem_mb"] == "16000"
    assert by_rule["train_student"]["slurm_partition"] == "gpu"
    assert "gpu" not in by_rule["annotate"] and by_rule["annotate"]["slurm_partition"] == "cpu"


def test_profile_keys_are_options_snakemake_knows():
    import yaml

    pytest.importorskip("snakemake_executor_plugin_kubernetes")
    pytest.importorskip("snakemake_executor_plugin_slurm")
    help_text = subprocess.run(
        [sys.executable, "-m", "snakemake", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for profile in sorted((REPO / "profiles").glob("*/config.yaml")):
        for key in yaml.safe_load(profile.read_text()):
            assert f"--{key}" in help_text, f"{profile}: {key} is not a snakemake option"
    kubernetes = yaml.safe_load((REPO / "profiles" / "kubernetes" / "config.yaml").read_text())
    assert kubernetes["executor"] == "kubernetes"
    # GPU rules ask the plugin for NVIDIA devices (it needs the manufacturer to pick the resource name).
    assert kubernetes["set-resources"]["train_student"]["gpu_manufacturer"] == "nvidia"


@pytest.mark.slow
def test_annotate_local_keeps_llm_calls_in_the_main_process(tmp_path):
    local = workflow_facts(new_workdir(tmp_path / "local", annotate={"local": True}))["local"]
    assert {"annotate", "active_annotate", "pilot"} <= set(local)
    remote = workflow_facts(new_workdir(tmp_path / "remote"))["local"]
    assert not {"annotate", "active_annotate", "pilot"} & set(remote) and "gather_annotations" in remote


def workflow_facts(workdir) -> dict:
    """Local rules and the resources each rule declares, read through Snakemake's API."""
    code = (
        "import json, snakemake.api as api\n"
        "from pathlib import Path\n"
        "with api.SnakemakeApi() as s:\n"
        "    w = s.workflow(resource_settings=api.ResourceSettings(), snakefile=Path('Snakefile'))._workflow\n"
        "    resources = {r.name: {k: v.value for k, v in dict(r.resources).items()\n"
        "                          if not k.startswith('_') and not v.is_evaluable()} for r in w.rules}\n"
        "    print(json.dumps({'local': sorted(w._localrules), 'resources': resources}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- a real run through the cluster-generic executor ----------------------------------------------


@pytest.mark.slow
def test_cluster_generic_run_gives_the_same_artifacts_as_a_local_run(proxy, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_cluster_generic")
    overrides = {
        "prompts": {"label": TINY_CONFIG["prompts"]["label"]},
        "evaluation": {"expert_baseline": False},
        "inference": {"onnx": False},
    }
    # What is compared: the iterations, the votes, a student's test predictions and both scores, so
    # only the jobs that make those run (the cost benchmark, cascade and report run in the tiny run).
    compared = ("votes/fake/label.parquet", "evaluation/students/minilm/fake/label.predictions.parquet")
    scores = ("evaluation/teachers/fake/label.json", "evaluation/paired_tests.csv")
    targets = [f"results/{name}" for name in (*compared, *scores)]
    local = new_workdir(tmp_path / "local")
    write_config(
        local / "config" / "config.yaml", fake_config(proxy, 2, cache=cache_of(tmp_path / "local"), **overrides)
    )
    snakemake(local, *targets)

    cluster = new_workdir(tmp_path / "cluster")
    write_config(
        cluster / "config" / "config.yaml", fake_config(proxy, 2, cache=cache_of(tmp_path / "cluster"), **overrides)
    )
    planned = rules_of(planned_jobs(cluster, *targets))
    assert {"annotate", "vote", "train_student", "evaluate_student"} <= set(planned)
    jobs_dir = tmp_path / "cluster-jobs"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--executor",
            "cluster-generic",
            "--cluster-generic-submit-cmd",
            f"bash {REPO / 'tests' / 'cluster' / 'submit.sh'}",
            "--cluster-generic-status-cmd",
            f"bash {REPO / 'tests' / 'cluster' / 'status.sh'}",
            "--jobs",
            "4",
            "--latency-wait",
            "30",
            "--max-status-checks-per-second",
            "5",
            # A round of status checks every second, not every 10 s: each of the ~10 levels of the DAG
            # waited up to 10 s for its jobs to be seen finished.
            "--seconds-between-status-checks",
            "1",
            *targets,
        ],
        cwd=cluster,
        capture_output=True,
        text=True,
        env={**os.environ, "SYNTHDISTILL_CLUSTER_DIR": str(jobs_dir)},
    )
    outputs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(jobs_dir.glob("*.out")))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:] + outputs

    # Every job but the local ones (gathering) ran as its own background process, and succeeded.
    exits = sorted(jobs_dir.glob("*.exit"))
    assert len(exits) == sum(planned.values()) - planned["gather_annotations"]
    assert all(p.read_text().strip() == "0" for p in exits)
    assert "Submitted job" in result.stdout + result.stderr

    def iteration(workdir, i):
        frame = pd.read_parquet(workdir / "results" / "annotations" / "fake" / "label" / f"iter{i}.parquet")
        return frame.drop(columns=VOLATILE)

    for i in ITERATIONS:
        pd.testing.assert_frame_equal(iteration(cluster, i), iteration(local, i))
    for name in compared:
        pd.testing.assert_frame_equal(
            pd.read_parquet(cluster / "results" / name), pd.read_parquet(local / "results" / name)
        )
    for name in (
        "votes/fake/label.train.csv",
        "data/summary.json",
        "evaluation/students/minilm/fake/label.json",
        *scores,
    ):
        assert (cluster / "results" / name).read_text() == (local / "results" / name).read_text(), name
