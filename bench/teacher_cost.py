"""Self-hosted teacher cost: busy-time shares against summed latencies, at several concurrencies.

A self-hosted teacher is charged its busy time × its hardware's price per hour. With K requests in
flight their latencies overlap, so summing them counts the same seconds up to K times; the engine
instead gives each request an equal share of every stretch it overlaps with others (runner.BusyClock),
so the shares add up to the time the teacher had work. Measured here through the real engine and the
openai backend against the fault proxy in its own process, adding a fixed latency to every request
in front of an instant fake upstream (the accounting is measured, not a model). For each concurrency:

* the baseline, measured in the same run: the job's wall time (one dedicated server held for the job);
* summed latencies, and the engine's summed busy-time shares, each as a ratio to the wall time;
* the dollars per 1M texts each figure gives at the ``a10g_cloud`` preset's price;
* a rerun with the same cache (all hits): the busy-time total it reports, which must not change.

    python bench/teacher_cost.py                      # 400 items, 200 ms, concurrency 1, 8, 32

Prints the figures and writes them to bench/results/teacher_cost.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.servers and the engine benchmark's prompts
sys.path.insert(0, str(REPO / "bench"))

from annotate_engine import run_engine, synthetic_prompts  # noqa: E402

from synthdistill.annotation.cache import ResponseCache  # noqa: E402
from synthdistill.metrics.costs import HARDWARE_PRESETS  # noqa: E402
from tests.servers import FaultPlan, proxy_stats, reset_proxy, start_proxy_process, stop_process  # noqa: E402

PRESET = "a10g_cloud"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added to every request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "teacher_cost.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    price = HARDWARE_PRESETS[PRESET]["price_per_hour_usd"]

    def usd_per_1m(seconds: float) -> float:
        return price * seconds / 3600 / args.items * 1e6

    process, base_url = start_proxy_process("fake", FaultPlan(latency_s=args.latency))
    runs = []
    try:
        frame = synthetic_prompts(args.items)
        for concurrency in args.concurrency:
            settings = {
                "backend": "openai",
                "base_url": base_url,
                "model": "fake",
                "api_key_env": None,
                "concurrency": concurrency,
                "timeout_s": 30,
            }
            with tempfile.TemporaryDirectory() as tmp:
                cache = ResponseCache(Path(tmp) / "responses.sqlite")
                reset_proxy(base_url)
                out, wall = run_engine(frame, settings, cache)
                requests = proxy_stats(base_url)["received"]
                reset_proxy(base_url)
                rerun, _ = run_engine(frame, settings, cache)
                rerun_requests = proxy_stats(base_url)["received"]
                cache.close()
            latency_sum, busy_sum = float(out["latency_s"].sum()), float(out["compute_s"].sum())
            runs.append(
                {
                    "concurrency": concurrency,
                    "requests": requests,
                    "wall_s": round(wall, 2),
                    "summed_latency_s": round(latency_sum, 2),
                    "summed_busy_shares_s": round(busy_sum, 2),
                    "summed_latency_over_wall": round(latency_sum / wall, 2),
                    "busy_shares_over_wall": round(busy_sum / wall, 3),
                    "usd_per_1m_texts": {
                        "wall_time_baseline": round(usd_per_1m(wall), 2),
                        "summed_latencies": round(usd_per_1m(latency_sum), 2),
                        "busy_shares": round(usd_per_1m(busy_sum), 2),
                    },
                    "cached_rerun": {
                        "requests": rerun_requests,
                        "all_cached": bool(rerun["cached"].all()),
                        "summed_busy_shares_s": round(float(rerun["compute_s"].sum()), 2),
                    },
                }
            )
    finally:
        stop_process(process)
    figures = {
        "items": args.items,
        "latency_s": args.latency,
        "price": f"{PRESET}: ${price}/h",
        "runs": runs,
        "machine": {
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    for run in runs:
        cost = run["usd_per_1m_texts"]
        print(
            f"concurrency {run['concurrency']:>3}: wall {run['wall_s']} s; summed latencies "
            f"{run['summed_latency_over_wall']}x the wall time, busy shares {run['busy_shares_over_wall']}x; "
            f"$ per 1M texts: wall {cost['wall_time_baseline']}, summed latencies {cost['summed_latencies']}, "
            f"busy shares {cost['busy_shares']}; cached rerun "
            f"{run['cached_rerun']['requests']} requests, busy shares {run['cached_rerun']['summed_busy_shares_s']} s"
        )
    print(f"written to {args.out} (load average at the end {figures['machine']['load_average_1m_at_end']})")
    return figures


if __name__ == "__main__":
    main()
