"""Teacher cost: API teachers by tokens × price (energy from a published estimate), self-hosted ones by
measured busy time × hardware; and what is not known is said, never printed as 0."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation import runner
from synthdistill.annotation.runner import BusyClock
from synthdistill.labels.ensemble import combined_annotation_stats
from synthdistill.labels.vote_files import compute_seconds
from synthdistill.metrics.costs import break_even, teacher_cost_row, teacher_costing
from synthdistill.schema import defaults

DEFAULT_HARDWARE = defaults("costs", "teacher_hardware")  # what an unset costs.teacher_hardware becomes


def stats(compute_s: float | None = 360.0, items: int = 100) -> dict:
    annotation = {
        "iterations": 3,
        "answers": 3 * items,
        "input_tokens": 200_000,
        "output_tokens": 10_000,
        "latency_p50_s": 1.0,
        "latency_p95_s": 2.0,
    }
    if compute_s is not None:
        annotation |= {"compute_s": compute_s, "compute_source": "busy-time shares"}
    return {"annotation": annotation, "vote": {"items": items}}


def test_api_teacher_dollars_from_tokens_and_energy_from_a_per_token_estimate():
    settings = {
        "backend": "openai",
        "price": {"input_per_1m_tokens": 0.15, "output_per_1m_tokens": 0.6},
        "energy_wh_per_1k_tokens": {"input": 0.22, "output": 0.6},
        "hardware": {"grid_kg_co2_per_kwh": 0.2},
    }
    row = teacher_cost_row(stats(), teacher_costing("gpt", settings, DEFAULT_HARDWARE))
    usd = (200_000 * 0.15 + 10_000 * 0.6) / 1e6
    kwh = (200 * 0.22 + 10 * 0.6) / 1000
    assert row["basis"] == "tokens" and row["cost_usd"] == pytest.approx(usd)
    assert row["usd_per_1m_texts"] == pytest.approx(usd / 100 * 1e6)
    assert row["kwh_per_1m_texts"] == pytest.approx(kwh / 100 * 1e6)
    # The teacher's own grid intensity wins over costs.teacher_hardware's.
    assert row["kg_co2_per_1m_texts"] == pytest.approx(kwh * 0.2 / 100 * 1e6)
    assert row["energy_method"].startswith("estimate: reported tokens × 0.22 Wh per 1k input / 0.6 Wh per 1k output")
    assert "teachers.gpt.hardware" in row["co2_method"]
    # A single number applies to input and output tokens alike; busy time plays no part for an API.
    flat = teacher_cost_row(
        stats(compute_s=9e9), teacher_costing("gpt", {**settings, "energy_wh_per_1k_tokens": 0.5}, {})
    )
    assert flat["kwh"] == pytest.approx(210 * 0.5 / 1000) and flat["cost_usd"] == pytest.approx(usd)


def test_api_teacher_without_price_or_energy_is_not_estimated_and_never_free():
    row = teacher_cost_row(stats(), teacher_costing("gpt", {"backend": "hf_inference"}, DEFAULT_HARDWARE))
    for key in ("cost_usd", "usd_per_1m_texts", "kwh_per_1m_texts", "kg_co2_per_1m_texts"):
        assert row[key] is None, key
    assert row["method"].startswith("not estimated: teachers.gpt.price is not set")
    assert row["energy_method"].startswith("not estimated: teachers.gpt.energy_wh_per_1k_tokens is not set")
    assert row["co2_method"] == "not estimated: no energy figure"
    assert break_even(0.5, None, 1e-8)["note"].startswith("not computed: the teacher's cost is not estimated")


def test_self_hosted_teacher_is_measured_busy_time_times_the_default_hardware():
    row = teacher_cost_row(stats(360.0), teacher_costing("smol", {"backend": "llama_cpp"}, DEFAULT_HARDWARE))
    hours = 360.0 / 3600  # over 100 texts
    assert row["basis"] == "measured time" and row["pricing"] == "hardware time"
    assert row["cost_usd"] == pytest.approx(0.085 * hours)
    assert row["usd_per_1m_texts"] == pytest.approx(0.085 * hours / 100 * 1e6)
    assert row["kwh_per_1m_texts"] == pytest.approx(25 * hours / 1000 / 100 * 1e6)
    assert row["kg_co2_per_1m_texts"] == pytest.approx(25 * hours / 1000 * 0.37 / 100 * 1e6)
    assert row["compute_s_per_text"] == pytest.approx(3.6)
    assert row["method"].startswith("measured time × $0.085/h (2-vCPU cloud VM")
    assert "costs.teacher_hardware, preset cpu_2vcpu_cloud" in row["method"]
    assert row["energy_method"].startswith("power × time: 25 W")
    # Its own server, flagged self_hosted, with its own preset and price over it.
    vllm = {"backend": "openai", "self_hosted": True, "hardware": {"preset": "a10g_cloud", "price_per_hour_usd": 2.0}}
    row = teacher_cost_row(stats(36.0), teacher_costing("qwen", vllm, DEFAULT_HARDWARE))
    assert row["cost_usd"] == pytest.approx(2.0 * 36 / 3600) and row["kwh"] == pytest.approx(150 * 36 / 3.6e6)
    assert "teachers.qwen.hardware, preset a10g_cloud" in row["method"]


def test_self_hosted_teacher_with_missing_settings_says_what_is_missing():
    bare = {"preset": None}
    row = teacher_cost_row(stats(), teacher_costing("smol", {"backend": "transformers"}, bare))
    assert row["cost_usd"] is None and row["kwh"] is None and row["kg_co2"] is None
    assert row["method"] == "not estimated: costs.teacher_hardware has no price_per_hour_usd"
    assert "has no power_w and teachers.smol.energy_wh_per_1k_tokens is not set" in row["energy_method"]
    # Without power, a per-token estimate still gives energy; without a grid intensity, no CO2.
    estimate = teacher_costing("smol", {"backend": "transformers", "energy_wh_per_1k_tokens": 1.0}, bare)
    row = teacher_cost_row(stats(), estimate)
    assert row["kwh"] == pytest.approx(0.21) and row["kg_co2"] is None
    assert row["co2_method"] == "not estimated: costs.teacher_hardware has no grid_kg_co2_per_kwh"
    # Vote stats written before busy time was recorded: not estimated, with the way out.
    row = teacher_cost_row(stats(compute_s=None), teacher_costing("smol", {"backend": "llama_cpp"}, DEFAULT_HARDWARE))
    assert row["cost_usd"] is None and "rerun the vote" in row["method"]


def test_settings_that_cannot_be_costed_stop_the_run_naming_the_key():
    with pytest.raises(SynthDistillError, match=r"teachers\.smol\.price: this teacher runs on hardware you pay for"):
        teacher_costing("smol", {"backend": "llama_cpp", "price": {"input_per_1m_tokens": 3.0}}, DEFAULT_HARDWARE)
    with pytest.raises(SynthDistillError, match=r"teachers\.b\.self_hosted: openai_batch is a provider's batch API"):
        teacher_costing("b", {"backend": "openai_batch", "self_hosted": True}, DEFAULT_HARDWARE)
    with pytest.raises(SynthDistillError, match=r"costs\.teacher_hardware\.preset: unknown preset 'h100'"):
        teacher_costing("smol", {"backend": "llama_cpp"}, {"preset": "h100"})
    # A zero price table on an in-process teacher (older configs) is ignored; self_hosted: false prices tokens.
    assert teacher_costing("smol", {"backend": "llama_cpp", "price": {"input_per_1m_tokens": 0.0}}, {})["price"] is None
    as_api = teacher_costing(
        "smol", {"backend": "llama_cpp", "self_hosted": False, "price": {"input_per_1m_tokens": 1}}, {}
    )
    assert as_api["basis"] == "tokens" and as_api["price"]["input_per_1m_tokens"] == 1


def test_ensemble_adds_its_members_costs_each_costed_its_own_way():
    smol = teacher_costing("smol", {"backend": "llama_cpp"}, DEFAULT_HARDWARE)
    gpt = teacher_costing("gpt", {"backend": "openai", "price": {"input_per_1m_tokens": 1.0}}, DEFAULT_HARDWARE)
    counts = {"request_errors": 0, "parse_failures": 0, "requests_made": 0, "cache_hits": 0}
    members = [{**m, "annotation": m["annotation"] | counts} for m in (stats(360.0), stats(10.0))]
    annotation = combined_annotation_stats(members, [smol, gpt])
    assert annotation["cost_usd"] == pytest.approx(0.085 * 0.1 + 0.2)
    assert annotation["kwh"] is None  # the API member's energy is unknown, so the ensemble's is too
    row = teacher_cost_row({"annotation": annotation, "vote": {"items": 100}}, {})
    assert row["usd_per_1m_texts"] == pytest.approx((0.085 * 0.1 + 0.2) / 100 * 1e6)
    assert row["method"].startswith("members added up: smol: measured time") and "gpt: measured tokens" in row["method"]


def test_busy_clock_shares_overlapping_requests_and_adds_up_to_the_busy_wall_time(monkeypatch):
    # A scripted clock, so the figures are exact whatever the machine's load.
    now = [0.0]
    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    clock = BusyClock()
    events = [  # (time, request, start or stop): four overlapping 0.3 s requests, a gap, one alone
        (0.00, "a", "start"), (0.02, "b", "start"), (0.04, "c", "start"), (0.06, "d", "start"),
        (0.30, "a", "stop"), (0.32, "b", "stop"), (0.34, "c", "stop"), (0.36, "d", "stop"),
        (0.60, "e", "start"), (0.80, "e", "stop"),
    ]  # fmt: skip
    marks: dict[str, tuple[float, float]] = {}
    shares: dict[str, float] = {}
    latencies: dict[str, float] = {}
    for at, name, what in events:
        now[0] = at
        if what == "start":
            marks[name] = clock.start()
        else:
            shares[name], latencies[name] = clock.stop(marks[name])
    # 0.36 s with at least one of the four in flight, then 0.2 s alone: 0.56 s busy of 0.8 s wall.
    assert sum(shares.values()) == pytest.approx(0.36 + 0.2)
    assert shares["e"] == pytest.approx(0.2) == latencies["e"]  # alone: its share is its latency
    assert latencies["a"] == pytest.approx(0.3) and latencies["d"] == pytest.approx(0.3)
    overlap = 0.24 / 4  # 0.06 to 0.30: all four in flight
    assert shares["a"] == pytest.approx(0.02 + 0.02 / 2 + 0.02 / 3 + overlap)
    assert shares["d"] == pytest.approx(overlap + 0.02 / 3 + 0.02 / 2 + 0.02)
    assert shares["b"] == pytest.approx(shares["c"]) == pytest.approx(0.02 / 2 + 0.02 / 3 + overlap + 0.02 / 3)


def test_compute_seconds_use_stored_shares_and_fall_back_to_latency_for_old_cache_entries():
    frame = pd.DataFrame(
        {
            "raw_output": ["positive", "negative", None, "neutral"],
            "input_tokens": [10, 10, None, 10],
            "latency_s": [1.0, 2.0, 5.0, 4.0],
            "compute_s": [0.5, 0.5, 5.0, None],
        }
    )
    seconds, source = compute_seconds(frame)
    assert seconds == pytest.approx(0.5 + 0.5 + 4.0)  # a failed request (no answer) is not counted
    assert source == "busy-time shares; latencies for 1 answers cached before shares were recorded"
