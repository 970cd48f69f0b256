"""Measure a student the way it will serve: batch-1 latency and best-batch throughput, from text.

The student is loaded with ``inference.load_predictor`` (ONNX int8 on a CPU, torch on a GPU), the
same path ``synthdistill-predict`` uses. Energy is measured with CodeCarbon in offline mode when it
can read the device's power (Intel RAPL, NVIDIA NVML); otherwise the benchmark records that it
could not, and the report falls back to configured power × measured time.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.metrics.run_facts import cpu_name, machine
from synthdistill.schema import with_defaults
from synthdistill.students.inference import OnnxPredictor, load_predictor

log = logging.getLogger(__name__)


def _texts(test_path: str, count: int) -> list[str]:
    texts = pd.read_parquet(test_path)["text"].tolist()
    if not texts:
        raise SynthDistillError(f"{test_path}: no texts to benchmark the student on")
    # Real texts of the task, repeated to the requested count, so lengths are realistic.
    return list(np.resize(np.array(texts, dtype=object), count))


def _device(predictor) -> dict[str, Any]:
    if isinstance(predictor, OnnxPredictor):
        return {"kind": "cpu", "name": cpu_name()}
    device = predictor.device
    if device.type == "cuda":
        import torch

        return {"kind": "cuda", "name": torch.cuda.get_device_name(device)}
    return {"kind": "cpu", "name": cpu_name()}


def _energy_tracker(device_kind: str):
    """An offline CodeCarbon tracker, or (None, why not)."""
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError as error:
        return None, f"codecarbon is not installed ({error})"
    try:
        tracker = OfflineEmissionsTracker(
            country_iso_code="USA",  # only used for CodeCarbon's own CO2 figure; we use the configured grid
            save_to_file=False,
            log_level="error",
            measure_power_secs=1,
            # RAPL and NVML read the whole device; the rule takes every core so little else runs.
            tracking_mode="machine",
        )
    except Exception as error:  # CodeCarbon raises many kinds when hardware is unreadable
        return None, f"CodeCarbon could not start ({type(error).__name__}: {error})"
    return tracker, None


MEASURED_CPU_MODES = ("intel_rapl", "intel_power_gadget", "windows_emi")


def _power_source(tracker, device_kind: str) -> tuple[bool, str]:
    """Whether CodeCarbon read real power for the device that ran the model, and from where.

    Without RAPL, NVML or powermetrics, CodeCarbon estimates CPU power from a TDP table or the CPU
    load: an assumption, not a measurement, so it does not count as measured.
    """
    components = {type(h).__name__: h for h in getattr(tracker, "_hardware", [])}
    if device_kind == "cuda":
        return ("GPU" in components, "NVML GPU power" if "GPU" in components else "no NVML GPU reading")
    if "AppleSiliconChip" in components:
        return True, "powermetrics"
    cpu = components.get("CPU")
    mode = str(getattr(cpu, "_mode", "none"))
    return mode in MEASURED_CPU_MODES, f"CPU power mode {mode}"


def _latencies_ms(predictor, texts: list[str]) -> list[float]:
    """Milliseconds per text, one text at a time."""
    latencies = []
    predictor.batching.batch_size = 1
    for text in texts:
        start = time.perf_counter()
        predictor.predict_proba([text])
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def _throughput_runs(predictor, corpus: list[str], batch_sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """The whole corpus predicted once per batch size, timed."""
    runs: list[dict[str, Any]] = []
    for batch_size in batch_sizes:
        predictor.batching.batch_size = batch_size
        start = time.perf_counter()
        predictor.predict_proba(corpus)
        seconds = time.perf_counter() - start
        runs.append({"batch_size": batch_size, "seconds": seconds, "texts_per_second": len(corpus) / seconds})
        log.info("batch %d: %.1f texts/s", batch_size, len(corpus) / seconds)
    return runs


def _energy(predictor, corpus: list[str], batch_size: int, device_kind: str) -> dict[str, Any]:
    """The energy of predicting the corpus at ``batch_size``, measured by codecarbon where it can."""
    tracker, why_not = _energy_tracker(device_kind)
    if tracker is None:
        return {"measured": False, "reason": why_not}
    # A separate run at the best batch size, so the energy belongs to known texts and time.
    predictor.batching.batch_size = batch_size
    tracker.start()
    start = time.perf_counter()
    predictor.predict_proba(corpus)
    seconds = time.perf_counter() - start
    tracker.stop()
    measured, source = _power_source(tracker, device_kind)
    data = tracker.final_emissions_data
    return {
        "measured": measured,
        "source": source,
        "reason": None if measured else f"{source}: an estimate, not a reading",
        "kwh": float(data.energy_consumed),
        "codecarbon_kwh_cpu": float(data.cpu_energy),
        "codecarbon_kwh_gpu": float(data.gpu_energy),
        "codecarbon_kwh_ram": float(data.ram_energy),
        "texts": len(corpus),
        "seconds": seconds,
    }


def benchmark_student(
    student_dir: str,
    test_path: str,
    max_length: int,
    *,
    texts: int,
    latency_texts: int,
    batch_sizes: tuple[int, ...],
    backend: str,
    codecarbon: bool,
    threads: int | None = None,
) -> dict[str, Any]:
    """Latency at batch 1, throughput at each batch size (end to end from text), and energy
    (the settings of costs.benchmark)."""
    predictor = load_predictor(student_dir, backend=backend, max_length=max_length, batch_size=None, threads=threads)
    backend_used = "onnx_int8" if isinstance(predictor, OnnxPredictor) else f"torch_{predictor.device.type}"
    device = _device(predictor)
    corpus = _texts(test_path, texts)
    predictor.predict_proba(corpus[:16])  # warm-up: first-call allocations are not serving cost

    latencies = _latencies_ms(predictor, corpus[:latency_texts])
    runs = _throughput_runs(predictor, corpus, batch_sizes)
    best = max(runs, key=lambda run: run["texts_per_second"])
    energy: dict[str, Any] = {"measured": False, "reason": "codecarbon: false in costs.benchmark"}
    if codecarbon:
        energy = _energy(predictor, corpus, best["batch_size"], device["kind"])
    return {
        "student_dir": student_dir,
        "backend": backend_used,
        "device": device,
        "machine": machine(),
        "max_length": max_length,
        "threads": threads,
        "texts": len(corpus),
        "latency": {
            "texts": len(latencies),
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "mean_ms": float(np.mean(latencies)),
        },
        "throughput": {
            "runs": runs,
            "best_batch_size": best["batch_size"],
            "best_texts_per_second": best["texts_per_second"],
        },
        "energy": energy,
    }


def write_benchmark(
    student_dir: str,
    test_path: str,
    max_length: int,
    settings: dict[str, Any],
    output: str,
    threads: int | None = None,
) -> dict[str, Any]:
    """The benchmark_student rule: one JSON per student folder."""
    settings = with_defaults(settings, "costs", "benchmark")
    result = benchmark_student(
        student_dir,
        test_path,
        max_length,
        texts=settings["texts"],
        latency_texts=settings["latency_texts"],
        batch_sizes=tuple(settings["batch_sizes"]),
        backend=settings["backend"],
        codecarbon=settings["codecarbon"],
        threads=threads,
    )
    Path(output).write_text(json.dumps(result, indent=2) + "\n")
    return result
