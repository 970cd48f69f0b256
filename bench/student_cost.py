"""What a student costs per 1M texts: the serving path (ONNX int8) against torch fp32, same machine.

Runs ``synthdistill.students.benchmark.benchmark_student`` twice on one trained student folder (with
``model/`` and ``onnx/``, e.g. from ``snakemake`` on the default config): once with the ONNX int8
backend the benchmark_student rule uses on a CPU, once with torch fp32 as the baseline. Prints
latency, throughput and $ / kWh / kg CO2 per 1M texts under the default config's hardware and the
t4_reference preset, and writes them to bench/results/student_cost.json.

    python bench/student_cost.py --student results/students/minilm/smollm2/label \
        --test results/data/test.parquet [--texts 2000] [--max-length 128]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from synthdistill.metrics.costs import student_cost_row, student_hardware
from synthdistill.schema import defaults
from synthdistill.students.benchmark import benchmark_student

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    benchmark = defaults("costs", "benchmark")  # the benchmark_student rule's settings for a config that sets none
    parser = argparse.ArgumentParser()
    parser.add_argument("--student", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--texts", type=int, default=benchmark["texts"])
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "student_cost.json"))
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    hardware = {
        "default config": student_hardware(config["costs"]["student_hardware"]),
        "t4_reference": student_hardware({"preset": "t4_reference"}),
    }
    results = {}
    for backend in ("torch", "onnx"):  # torch fp32 first: the baseline
        bench = benchmark_student(
            args.student,
            args.test,
            args.max_length,
            texts=args.texts,
            latency_texts=benchmark["latency_texts"],
            batch_sizes=tuple(benchmark["batch_sizes"]),
            backend=backend,
            codecarbon=benchmark["codecarbon"],
        )
        costs = {name: student_cost_row(bench, settings) for name, settings in hardware.items()}
        results[bench["backend"]] = {"benchmark": bench, "costs": costs}
        best = bench["throughput"]
        print(
            f"{bench['backend']:>10}: batch-1 p50 {bench['latency']['p50_ms']:.1f} ms, "
            f"{best['best_texts_per_second']:.0f} texts/s at batch {best['best_batch_size']}"
        )
        for name, row in costs.items():
            print(
                f"{'':>12}{name}: ${row['usd_per_1m_texts']:.3f}, {row['kwh_per_1m_texts']:.3f} kWh, "
                f"{row['kg_co2_per_1m_texts']:.3f} kg CO2 per 1M texts ({row['energy_method'].split(':')[0]})"
            )
    speedup = (
        results["onnx_int8"]["benchmark"]["throughput"]["best_texts_per_second"]
        / (results["torch_cpu"]["benchmark"]["throughput"]["best_texts_per_second"])
    )
    print(f"ONNX int8 throughput over torch fp32: {speedup:.2f}x")
    results["onnx_over_torch_throughput"] = speedup
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
