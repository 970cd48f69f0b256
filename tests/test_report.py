"""The decision report, built from a finished tiny run: its numbers must be the artifacts' numbers."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from synthdistill.metrics.costs import break_even, student_cost_row, teacher_costing
from synthdistill.reporting.report import FIGURES, TABLES, build
from synthdistill.students.cascade import build_cascade

from .pipeline_helpers import TINY_CONFIG, copy_run, planned_jobs, rules_of, snakemake, write_config
from .test_cascade import synthetic_run

T4 = {"price_per_hour_usd": 0.6, "power_w": 70.0, "grid_kg_co2_per_kwh": 0.37}  # the t4_reference preset
# The schema's default costs.teacher_hardware (preset cpu_2vcpu_cloud), which the tiny config leaves unset.
TEACHER_VM = {"price_per_hour_usd": 0.085, "power_w": 25.0, "grid_kg_co2_per_kwh": 0.37}
PRICE_IN, PRICE_OUT = 3.0, 15.0  # an API price table, per 1M tokens
STUDENTS = [("smollm2", "label"), ("smollm2", "cot_json"), ("expert", "gold")]


def test_student_cost_falls_back_to_power_times_time_and_says_so():
    benchmark = {
        "backend": "onnx_int8",
        "device": {"name": "Some CPU"},
        "latency": {"p50_ms": 5.0, "p95_ms": 7.0},
        "throughput": {"best_texts_per_second": 250.0, "best_batch_size": 32},
        "energy": {"measured": False, "reason": "CPU power mode cpu_load"},
    }
    row = student_cost_row(benchmark, {**T4, "preset": "t4_reference"})
    hours = 1e6 / 250.0 / 3600
    assert row["usd_per_1m_texts"] == pytest.approx(0.6 * hours)
    assert row["kwh_per_1m_texts"] == pytest.approx(0.070 * hours)
    assert row["kg_co2_per_1m_texts"] == pytest.approx(0.070 * hours * 0.37)
    assert row["energy_method"].startswith("power × time: 70.0 W (preset t4_reference)")
    assert "cpu_load" in row["energy_method"]

    measured = {
        **benchmark,
        "energy": {"measured": True, "source": "CPU power mode intel_rapl", "kwh": 2e-4, "texts": 400},
    }
    row = student_cost_row(measured, {**T4, "preset": None})
    assert row["kwh_per_1m_texts"] == pytest.approx(2e-4 / 400 * 1e6)
    assert row["energy_method"].startswith("measured with CodeCarbon (CPU power mode intel_rapl)")

    unpriced = student_cost_row(benchmark, {"price_per_hour_usd": None, "power_w": None, "grid_kg_co2_per_kwh": None})
    assert unpriced["usd_per_1m_texts"] is None and unpriced["kwh_per_1m_texts"] is None
    assert "price_per_hour_usd is not set" in unpriced["cost_method"]


def test_break_even_volume():
    assert break_even(10.0, 0.002, 0.0005)["texts"] == math.ceil(10.0 / 0.0015)
    assert break_even(10.0, 0.0, 0.0005)["texts"] is None  # a free teacher is never beaten on cost
    assert break_even(None, 0.002, None)["texts"] is None


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    # A price change and --report write into the run: a copy keeps the shared one untouched.
    return copy_run(tiny_run, tmp_path_factory.mktemp("report"))


def _json(path):
    return json.loads(path.read_text())


def _section(markdown: str, section: str) -> str:
    return markdown.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]


def _row(markdown: str, section: str, first_cell: str) -> str:
    """The Markdown table row of ``section`` whose first cell is ``first_cell``."""
    body = markdown.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    pattern = re.compile(rf"^\|\s*{re.escape(first_cell)}\s*\|.*$", re.MULTILINE)
    match = pattern.search(body)
    assert match, f"no row for {first_cell} in {section}"
    return match.group(0)


@pytest.mark.slow
def test_quality_and_label_quality_come_from_the_metrics_and_votes(run):
    results = run / "results"
    report = (results / "report" / "report.md").read_text()
    quality = pd.read_csv(results / "report" / "tables" / "quality.csv").set_index("system")
    systems = {
        f"smollm2/{p}": results / "evaluation" / "teachers" / "smollm2" / f"{p}.json" for p in ("label", "cot_json")
    }
    systems |= {
        f"minilm/{t}/{p}": results / "evaluation" / "students" / "minilm" / t / f"{p}.json" for t, p in STUDENTS
    }
    baselines = quality.loc[quality["kind"] == "baseline"]
    assert set(quality.index) == set(systems) | set(baselines.index) and len(baselines) == 2
    assert quality.loc["minilm/expert/gold", "kind"] == "expert baseline"
    # The trivial baselines on the same test split, from the train pool's expert labels.
    train, test = (pd.read_parquet(results / "data" / f"{split}.parquet") for split in ("train", "test"))
    shares = train["expert_label"].value_counts(normalize=True)
    majority = max(TINY_CONFIG["labels"], key=lambda c: (shares.get(c, 0.0), -TINY_CONFIG["labels"].index(c)))
    majority_accuracy = (test["expert_label"] == majority).mean()
    assert quality.loc[f"baseline: majority class ({majority})", "accuracy"] == pytest.approx(majority_accuracy)
    test_shares = test["expert_label"].value_counts(normalize=True)
    expected = sum(shares.get(c, 0.0) * test_shares.get(c, 0.0) for c in TINY_CONFIG["labels"])
    assert quality.loc["baseline: prior-random expectation", "accuracy"] == pytest.approx(expected)
    for system, path in systems.items():
        metrics = _json(path)
        assert quality.loc[system, "accuracy"] == pytest.approx(metrics["accuracy"])
        assert quality.loc[system, "f1_macro_high"] == pytest.approx(metrics["intervals"]["f1_macro"][1])
        low, high = metrics["intervals"]["accuracy"]
        # The table readers see carries the same numbers, in the row of this system.
        assert f"{metrics['accuracy']:.3f} [{low:.3f}, {high:.3f}]" in _row(report, "Quality", system)
        # Every system is checked against the majority class; a loser is named in the report.
        beats = metrics["accuracy"] > majority_accuracy
        assert bool(quality.loc[system, "beats_majority"]) == beats
        if not beats:
            assert system in report.split("Not better than always answering the majority class", 1)[1].split("\n")[0]
        if system.startswith("minilm/"):
            # A student's validation answers: collapsed when one class takes more than 95% of them.
            metadata = _json(results / "students" / Path(system) / "metadata.json")
            top = max(metadata["validation_prediction_shares"].values())
            assert sum(metadata["validation_prediction_shares"].values()) == pytest.approx(1.0)
            assert bool(quality.loc[system, "collapsed"]) == (top > 0.95)
            if top > 0.95:
                assert f"Collapsed: {system} answers" in report

    label_quality = pd.read_csv(results / "report" / "tables" / "label_quality.csv").set_index("teacher_prompt")
    for prompt in ("label", "cot_json"):
        votes = pd.read_parquet(results / "votes" / "smollm2" / f"{prompt}.parquet")
        stats = _json(results / "votes" / "smollm2" / f"{prompt}.stats.json")
        row = label_quality.loc[f"smollm2/{prompt}"]
        unanimous = votes.loc[votes["agreement"] == 1.0]
        assert row["items_unanimous"] == len(unanimous)
        if len(unanimous):
            assert row["accuracy_unanimous"] == pytest.approx((unanimous["label"] == unanimous["expert_label"]).mean())
        assert row["parse_failures"] == stats["annotation"]["parse_failures"]
        assert row["unanimous_share"] == pytest.approx(stats["vote"]["unanimous_share"])


@pytest.mark.slow
def test_costs_are_measured_time_times_hardware_for_teacher_and_student(run):
    results = run / "results"
    tables = results / "report" / "tables"
    report = (results / "report" / "report.md").read_text()
    teacher_costs = pd.read_csv(tables / "teacher_cost.csv").set_index("teacher_prompt")
    for prompt in ("label", "cot_json"):
        stats = _json(results / "votes" / "smollm2" / f"{prompt}.stats.json")
        annotation = stats["annotation"]
        iterations = [
            pd.read_parquet(results / "annotations" / "smollm2" / prompt / f"iter{i}.parquet") for i in (0, 1)
        ]
        # The in-process teacher answers one request at a time: each answer's busy share is its latency.
        for frame in iterations:
            assert frame["compute_s"].to_numpy() == pytest.approx(frame["latency_s"].to_numpy(), rel=1e-3, abs=1e-3)
        seconds = sum(frame["compute_s"].sum() for frame in iterations)
        assert annotation["compute_s"] == pytest.approx(seconds) and seconds > 0
        # The embedded teacher is costed on the schema's default teacher hardware: never free.
        row = teacher_costs.loc[f"smollm2/{prompt}"]
        cost = seconds * TEACHER_VM["price_per_hour_usd"] / 3600
        kwh = seconds * TEACHER_VM["power_w"] / 3600 / 1000
        assert row["basis"] == "measured time" and row["cost_usd"] == pytest.approx(cost)
        assert row["usd_per_1m_texts"] == pytest.approx(cost / 30 * 1e6) and row["usd_per_1m_texts"] > 0
        assert row["kwh_per_1m_texts"] == pytest.approx(kwh / 30 * 1e6)
        assert row["kg_co2_per_1m_texts"] == pytest.approx(kwh * 0.37 / 30 * 1e6) and row["kg_co2_per_1m_texts"] > 0
        assert row["calls"] == 60 and row["output_tokens"] == annotation["output_tokens"]
        assert row["latency_p95_s"] == pytest.approx(annotation["latency_p95_s"])
        assert row["method"].startswith("measured time × $0.085/h (2-vCPU cloud VM")
        assert row["energy_method"].startswith("power × time: 25 W")
        assert row["co2_method"].startswith("energy × 0.37 kg CO2/kWh")
        teacher_row = _row(report, "Teacher cost", f"smollm2/{prompt}")
        assert f"| {cost:.4g} " in teacher_row
        for method in ("method", "energy_method", "co2_method"):  # printed beside the numbers
            assert row[method] in report

    student_costs = pd.read_csv(tables / "student_cost.csv").set_index("student")
    breaks = pd.read_csv(tables / "break_even.csv").set_index("student")
    assert set(breaks.index) == {"minilm/smollm2/label", "minilm/smollm2/cot_json"}  # no break-even for expert labels
    for teacher, prompt in STUDENTS:
        name = f"minilm/{teacher}/{prompt}"
        bench = _json(results / "costs" / "students" / "minilm" / teacher / f"{prompt}.json")
        # The serving path: ONNX int8 on this CPU machine, batch-1 latency and the best of the batch sizes.
        assert bench["backend"] == "onnx_int8" and bench["latency"]["texts"] == 20
        assert [r["batch_size"] for r in bench["throughput"]["runs"]] == [8, 32]
        best = max(r["texts_per_second"] for r in bench["throughput"]["runs"])
        assert bench["throughput"]["best_texts_per_second"] == pytest.approx(best)
        row = student_costs.loc[name]
        hours_per_1m = 1e6 / best / 3600
        assert row["throughput_texts_per_s"] == pytest.approx(best)
        assert row["latency_batch1_p50_ms"] == pytest.approx(bench["latency"]["p50_ms"])
        assert row["usd_per_1m_texts"] == pytest.approx(0.6 * hours_per_1m)
        if bench["energy"]["measured"]:
            kwh = bench["energy"]["kwh"] / bench["energy"]["texts"] * 1e6
            assert row["energy_method"].startswith("measured with CodeCarbon")
        else:
            kwh = 0.070 * hours_per_1m
            assert row["energy_method"].startswith("power × time: 70.0 W (preset t4_reference)")
        assert row["kwh_per_1m_texts"] == pytest.approx(kwh)
        assert row["kg_co2_per_1m_texts"] == pytest.approx(kwh * 0.37)
        metadata = _json(results / "students" / "minilm" / teacher / prompt / "metadata.json")
        assert row["train_usd"] == pytest.approx(metadata["train_seconds"] * 0.6 / 3600)
        if teacher != "expert":
            source = teacher_costs.loc[f"{teacher}/{prompt}"]
            fixed = source["cost_usd"] + row["train_usd"]
            saving = (source["usd_per_1m_texts"] - row["usd_per_1m_texts"]) / 1e6
            expected = math.ceil(fixed / saving)
            # A real break-even: the student's $ per text is far below the teacher's measured one.
            assert saving > 0 and breaks.loc[name, "break_even_texts"] == expected
            assert f"| {expected:,} " in _row(report, "Decision", name)
        # The method is printed beside the number.
        assert row["energy_method"] in report and row["cost_method"] in report


@pytest.mark.slow
def test_html_is_self_contained_with_readable_figures_and_run_facts(run):
    folder = run / "results" / "report"
    page = (folder / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("src='data:image/png;base64,") == len(FIGURES)  # every figure embedded, none linked
    for name in FIGURES:
        with Image.open(folder / "figures" / f"{name}.png") as image:
            assert image.width >= 600 and image.height >= 300, name
    report = (folder / "report.md").read_text()
    assert re.search(r"config sha256: [0-9a-f]{64}", report)
    stages = pd.read_csv(folder / "tables" / "stages.csv").set_index("rule")
    # One benchmark file per job of the expensive rules, read from benchmarks/.
    assert stages.loc["annotate", "jobs"] == 4 and stages.loc["benchmark_student", "jobs"] == 3
    assert stages.loc["train_student", "peak_rss_mb"] > 100  # a torch process: well over 100 MB
    assert f"{int(stages.loc['train_student', 'jobs'])}" in _row(report, "Run facts", "train_student")
    assert "data: train " in report and "snakemake 9.27.1" in report


@pytest.mark.slow
def test_changing_a_price_regenerates_only_the_report(run):
    costs = {**TINY_CONFIG["costs"], "student_hardware": {"preset": "t4_reference", "price_per_hour_usd": 1.2}}
    # The same teacher priced as an API: its reported tokens × a price table, energy from a per-token estimate.
    as_api = {
        "self_hosted": False,
        "price": {"input_per_1m_tokens": PRICE_IN, "output_per_1m_tokens": PRICE_OUT},
        "energy_wh_per_1k_tokens": {"input": 0.2, "output": 0.5},
    }
    teachers = {"smollm2": {**TINY_CONFIG["teachers"]["smollm2"], **as_api}}
    config = write_config(run / "config" / "price.yaml", {**TINY_CONFIG, "costs": costs, "teachers": teachers})
    assert rules_of(planned_jobs(run, "--configfile", str(config))) == {"report": 1}
    tables = run / "results" / "report" / "tables"
    before = pd.read_csv(tables / "student_cost.csv")
    snakemake(run, "--configfile", str(config))
    after = pd.read_csv(tables / "student_cost.csv")
    assert after["usd_per_1m_texts"].to_numpy() == pytest.approx(2 * before["usd_per_1m_texts"].to_numpy())
    assert after["throughput_texts_per_s"].tolist() == before["throughput_texts_per_s"].tolist()  # not re-measured
    teacher_costs = pd.read_csv(tables / "teacher_cost.csv").set_index("teacher_prompt")
    for prompt in ("label", "cot_json"):
        annotation = _json(run / "results" / "votes" / "smollm2" / f"{prompt}.stats.json")["annotation"]
        row = teacher_costs.loc[f"smollm2/{prompt}"]
        cost = (annotation["input_tokens"] * PRICE_IN + annotation["output_tokens"] * PRICE_OUT) / 1e6
        kwh = (annotation["input_tokens"] * 0.2 + annotation["output_tokens"] * 0.5) / 1e6
        assert row["basis"] == "tokens" and row["cost_usd"] == pytest.approx(cost)
        assert row["usd_per_1m_texts"] == pytest.approx(cost / 30 * 1e6)
        assert row["kwh_per_1m_texts"] == pytest.approx(kwh / 30 * 1e6)
        assert row["energy_method"].startswith("estimate: reported tokens × 0.2 Wh per 1k input")
    snakemake(run)  # back to the tiny config's settings
    assert planned_jobs(run) == []


@pytest.mark.slow
def test_teacher_cost_survives_a_rerun_that_is_all_cache_hits(run, tmp_path):
    copy = copy_run(run, tmp_path / "rerun")
    stats_path = copy / "results" / "votes" / "smollm2" / "label.stats.json"
    before = _json(stats_path)["annotation"]
    # Annotate again from the response cache (no teacher call) and vote again; nothing downstream.
    snakemake(copy, str(stats_path.relative_to(copy)), "--forcerun", "annotate")
    after = _json(stats_path)["annotation"]
    assert after["cache_hits"] == after["answers"] == 60 and after["requests_made"] == 0
    assert after["compute_s"] == pytest.approx(before["compute_s"]) and after["compute_s"] > 0


@pytest.mark.slow
def test_snakemake_report_collects_the_annotated_figures_and_tables(run):
    snakemake(run, "--report", "snakemake_report.zip")
    import zipfile

    with zipfile.ZipFile(run / "snakemake_report.zip") as archive:
        names = archive.namelist()
    for name in ("report.html", "pareto.png", "quality.png", "student_cost.csv", "teacher_cost.csv"):
        assert any(n.endswith(name) for n in names), (name, names[:20])


# --- the report from small fixture files, without running the pipeline ---------------------------

LABELS3 = ["positive", "negative", "neutral"]


def _metrics(accuracy: float, f1: float, labels: list[str] = LABELS3) -> dict:
    return {
        "accuracy": accuracy,
        "f1_macro": f1,
        "coverage": 0.95,
        "n": 40,
        "intervals": {
            "accuracy": [accuracy - 0.1, accuracy + 0.05],
            "f1_macro": [f1 - 0.12, f1 + 0.06],
            "level": 0.95,
            "method": "bootstrap",
        },
        "confusion_matrix": {
            "rows_expert": labels,
            "columns_predicted": [*labels, "<abstain>"],
            "counts": [[10, 2, 1, 0], [1, 9, 2, 1], [2, 1, 10, 1]],
        },
        "per_class": {label: {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 13} for label in labels},
    }


def _relabelled(frame: pd.DataFrame, named: dict[str, str]) -> pd.DataFrame:
    """A synthetic_run frame with its labels (values and prob_ columns) renamed by ``named``."""
    frame = frame.rename(columns={f"prob_{old}": f"prob_{new}" for old, new in named.items()})
    for column in ("label", "expert_label"):
        if column in frame:
            frame[column] = frame[column].map(lambda value: named.get(value, value))
    return frame


def report_inputs(folder, evaluated: bool = True, labels: list[str] = LABELS3) -> dict:
    """Fixture artifacts of a small run (two teacher prompts, their students, the expert baseline) and
    the keyword arguments that build the report from them into ``folder / "report"``. ``labels``: three
    labels that stand for positive, negative and neutral, in that order (the property tests pass any)."""
    import numpy as np

    named = dict(zip(LABELS3, labels, strict=True))

    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, value: dict) -> str:
        path = folder / name
        path.write_text(json.dumps(value))
        return str(path)

    rng = np.random.default_rng(0)
    summary = dump("summary.json", {"per_split": {"train": 120, "validation": 30, "test": 40}, "rows_dropped": 2})
    device = {"name": "Some CPU"}
    machine = {"cpu": "Some CPU", "cpu_cores": 2, "memory_gb": 8.0, "gpu": None, "platform": "Linux", "python": "3.11"}
    teachers, students = [], []
    for i, prompt in enumerate(("label", "cot_json")):
        votes = pd.DataFrame(
            {
                "label": rng.choice([*labels, None], 190),
                "agreement": rng.choice([1 / 3, 2 / 3, 1.0], 190),
                "expert_label": rng.choice(labels, 190) if evaluated else [None] * 190,
            }
        )
        votes.to_parquet(folder / f"votes_{prompt}.parquet")
        stats = {
            "annotation": {
                "answers": 570,
                "parse_failures": 12 + i,
                "request_errors": i,
                "iterations": 3,
                "input_tokens": 90_000 + 1000 * i,
                "output_tokens": 2_000 + 30_000 * i,
                "latency_p50_s": 0.4,
                "latency_p95_s": 1.3,
            },
            "vote": {"items": 190, "ties_abstained": 3, "all_failed": 1},
        }
        entry = {
            "teacher": "smollm2",
            "prompt": prompt,
            "stats": dump(f"stats_{prompt}.json", stats),
            "votes": str(folder / f"votes_{prompt}.parquet"),
            # Priced as an API teacher here; the tiny run's tests cover the self-hosted path.
            "costing": teacher_costing(
                "smollm2",
                {"backend": "openai", "price": {"input_per_1m_tokens": 3.0, "output_per_1m_tokens": 15.0}},
                {},
            ),
        }
        if evaluated:
            entry["metrics"] = dump(f"metrics_{prompt}.json", _metrics(0.6 + 0.1 * i, 0.55 + 0.1 * i, labels))
        teachers.append(entry)
    for i, (teacher, prompt) in enumerate((("smollm2", "label"), ("smollm2", "cot_json"), ("expert", "gold"))):
        benchmark = {
            "backend": "onnx_int8",
            "device": device,
            "latency": {"p50_ms": 4.0 + i, "p95_ms": 7.5 + i},
            "throughput": {"best_texts_per_second": 250.0 + 10 * i, "best_batch_size": 32},
            "energy": {"measured": False, "reason": "CPU power mode cpu_load"},
            "machine": machine,
        }
        entry = {
            "student": "minilm",
            "teacher": teacher,
            "prompt": prompt,
            # The cot_json student answers one class for 97% of the validation split: collapsed.
            "metadata": dump(
                f"meta_{i}.json",
                {
                    "train_seconds": 200.0 + i,
                    "train_examples": 120,
                    "validation_prediction_shares": dict(
                        zip(labels, (0.97, 0.02, 0.01) if prompt == "cot_json" else (0.5, 0.3, 0.2), strict=True)
                    ),
                },
            ),
            "benchmark": dump(f"bench_{i}.json", benchmark),
        }
        if evaluated:
            entry["metrics"] = dump(f"smetrics_{i}.json", _metrics(0.7 + 0.05 * i, 0.65 + 0.05 * i, labels))
        students.append(entry)
    cascades = []
    for i, prompt in enumerate(("label", "cot_json")):
        # Real cascade artifacts, fitted on synthetic student predictions and teacher votes.
        validation, test, predictions, votes = (
            _relabelled(frame, named) for frame in synthetic_run(n_val=150, n_test=150, seed=i)
        )
        if not evaluated:
            test = test.drop(columns="expert_label")
        summary_json, curve, _ = build_cascade(
            validation, test, predictions, votes, labels, "max_prob", {"min_agreement": 0.97}
        )
        curve.to_csv(folder / f"cascade_{prompt}.curve.csv", index=False)
        names = {"student": "minilm", "teacher": "smollm2", "prompt": prompt}
        entry = {**names, "summary": dump(f"cascade_{prompt}.json", {**names, **summary_json})}
        cascades.append({**entry, "curve": str(folder / f"cascade_{prompt}.curve.csv")})
    paired = folder / "paired.csv"
    pd.DataFrame(
        [
            {
                "a": "minilm/smollm2/label",
                "b": "smollm2/label",
                "accuracy_a": 0.7,
                "accuracy_b": 0.6,
                "only_a_right": 6,
                "only_b_right": 2,
                "mcnemar_p": 0.289,
                "f1_diff_low": -0.05,
                "f1_diff_high": 0.21,
            }
        ]
    ).to_csv(paired, index=False)
    benchmarks = folder / "benchmarks"
    for rule, seconds in (("annotate", 12.5), ("train_student", 200.0)):
        (benchmarks / rule).mkdir(parents=True, exist_ok=True)
        for job in range(2):
            (benchmarks / rule / f"{job}.tsv").write_text(f"s\tmax_rss\n{seconds + job}\t{300.5 + job}\n")
    # Train pool 60% neutral; test split 24 neutral, 10 positive, 6 negative.
    splits = {}
    for split, counts in (
        ("train", {"neutral": 72, "positive": 30, "negative": 18}),
        ("test", {"neutral": 24, "positive": 10, "negative": 6}),
    ):
        expert = [named[label] for label, n in counts.items() for _ in range(n)]
        frame = pd.DataFrame({"id": [f"{split}{n}" for n in range(len(expert))], "expert_label": expert})
        frame.to_parquet(folder / f"{split}.parquet")
        splits[split] = str(folder / f"{split}.parquet")
    out = folder / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    return {
        "summary_path": summary,
        "teachers": teachers,
        "students": students,
        "evaluated": evaluated,
        "hardware": {**T4, "name": "NVIDIA T4", "preset": "t4_reference"},
        "outputs": {
            "markdown": str(out / "report.md"),
            "html": str(out / "report.html"),
            "figures": {name: str(out / "figures" / f"{name}.png") for name in FIGURES},
            "tables": {name: str(out / "tables" / f"{name}.csv") for name in TABLES},
        },
        "paired_path": str(paired),
        "benchmarks_dir": str(benchmarks),
        "config_hash": "0" * 64,
        "splits": splits,
        "labels": labels,
        "cascades": cascades,
    }


@pytest.mark.parametrize("evaluated", [True, False])
def test_report_from_fixture_artifacts_has_every_section_table_and_figure(tmp_path, evaluated):
    inputs = report_inputs(tmp_path, evaluated)
    tables = build(**inputs)
    markdown = Path(inputs["outputs"]["markdown"]).read_text()
    sections = re.findall(r"^## (.+)$", markdown, re.MULTILINE)
    assert sections == [
        "Decision",
        "Cascade",
        "Quality",
        "Label quality",
        "Teacher cost",
        "Student cost",
        "Run facts",
    ]
    assert set(tables) == set(TABLES)
    assert len(tables["break_even"]) == 2  # the expert baseline has no break-even
    page = Path(inputs["outputs"]["html"]).read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.count("src='data:image/png;base64,") == (6 if evaluated else 3)
    cascade = tables["cascade"].set_index("cascade")
    assert list(cascade.index) == ["minilm/smollm2/label", "minilm/smollm2/cot_json"]
    students = tables["student_cost"].set_index("student")
    teachers = tables["teacher_cost"].set_index("teacher_prompt")
    for name, row in cascade.iterrows():
        share = row["test_deferred_share"] if evaluated else row["validation_deferred_share"]
        expected = (
            students.at[name, "usd_per_1m_texts"] + share * teachers.at[row["teacher_prompt"], "usd_per_1m_texts"]
        )
        assert row["cascade_usd_per_1m_texts"] == pytest.approx(expected)
        assert f"{name}: **{row['decision']}**" in _section(markdown, "Cascade")
    if evaluated:
        assert "0.700 [0.600, 0.750]" in _row(markdown, "Quality", "minilm/smollm2/label")
        # the synthetic student guesses on 30% of items: it never matches the 94%-right teacher
        assert not cascade["student_matches"].any()
        for _, row in cascade.iterrows():
            assert row["decision"] == ("run the cascade" if row["cascade_matches"] else "keep the teacher")
        assert "McNemar p (cascade vs teacher)" in _section(markdown, "Cascade")
        assert "McNemar p" in markdown
        quality = tables["quality"].set_index("system")
        # Always "neutral" (the train pool's majority) is right on 24 of 40 test items.
        majority = quality.loc["baseline: majority class (neutral)"]
        assert majority["accuracy"] == pytest.approx(0.6) and majority["f1_macro"] == pytest.approx(0.75 / 3)
        prior = quality.loc["baseline: prior-random expectation"]
        assert prior["accuracy"] == pytest.approx(0.6 * 0.6 + 0.25 * 0.25 + 0.15 * 0.15)
        # The teachers (0.6 and 0.7 accuracy) and students (0.7 to 0.8): only the one at 0.6 does not beat it.
        assert quality.loc["smollm2/label", "beats_majority"] == False  # noqa: E712
        assert quality.loc["minilm/smollm2/label", "beats_majority"] == True  # noqa: E712
        assert (
            "Not better than always answering the majority class (accuracy at or below it): smollm2/label." in markdown
        )
        assert quality.loc["minilm/smollm2/cot_json", "collapsed"] == True  # noqa: E712
        assert quality.loc["minilm/smollm2/label", "collapsed"] == False  # noqa: E712
        assert "Collapsed: minilm/smollm2/cot_json answers 'positive' for 97% of the validation split" in markdown
        decision = markdown.split("## Quality")[0]
        assert (
            "minilm/smollm2/cot_json (learned from smollm2/cot_json): F1 macro +0.050 against its teacher; COLLAPSED"
            in decision
        )
    else:
        assert "Not evaluated: the dataset has no expert labels." in markdown
    assert f"config sha256: {'0' * 64}" in markdown
