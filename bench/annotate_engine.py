"""Throughput of the annotation engine against an OpenAI-compatible server with latency and rate limits.

A fault proxy runs in its own process in front of a fake upstream that answers at once (SmolLM2 would
be the bottleneck, not the engine); it adds a fixed latency to every request and answers a share of
them 429 with a short ``Retry-After``. Compared:

* the engine: ``synthdistill.annotation.engine.annotate`` with the openai backend, N parallel requests, a fresh
  response cache (every answer stored as it arrives);
* the reference case study's loop: one request at a time with the openai client, no cache. Its rate
  is the same for any number of items, so by default it is timed on a subset (``--sequential-items``).

Then the engine is run again with the same cache, which must make no request at all.

    python bench/annotate_engine.py                     # 2,000 items, concurrency 64, 200 ms, 5% 429
    python bench/annotate_engine.py --items 500 --concurrency 16 --latency 0.1

Prints the figures and writes them to bench/results/annotate_engine.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.servers (the fault proxy)

from synthdistill.annotation.cache import ResponseCache  # noqa: E402
from synthdistill.annotation.engine import annotate  # noqa: E402
from synthdistill.annotation.prompts import load_template, messages_for  # noqa: E402
from synthdistill.annotation.teachers import make_teacher  # noqa: E402
from synthdistill.settings import annotate_settings  # noqa: E402
from synthdistill.tasks.base import ERROR  # noqa: E402
from tests.servers import FaultPlan, proxy_stats, reset_proxy, start_proxy_process, stop_process  # noqa: E402

LABELS = ["positive", "negative", "neutral"]
SUBJECTS = ["Granholt Paper", "Tralee Biotech", "Norrvik Steel", "Alder Foods", "Brenmar Shipping", "Kestrel Bank"]
EVENTS = [
    "raised its full-year outlook",
    "reported a quarterly loss",
    "kept its dividend unchanged",
    "announced 300 job cuts",
    "won a contract worth EUR 40 million",
    "appointed a new chief financial officer",
    "saw net sales fall 12%",
    "completed the sale of its packaging unit",
]


def synthetic_prompts(n: int, seed: int = 0) -> pd.DataFrame:
    """n short, distinct financial-news-like sentences as the prompts artifact's columns."""
    rng = random.Random(seed)
    template = load_template(REPO / "config" / "prompts" / "label.txt")
    texts = [f"{rng.choice(SUBJECTS)} {rng.choice(EVENTS)} in period {i}." for i in range(n)]
    messages = [json.dumps(messages_for(template, text, LABELS)) for text in texts]
    return pd.DataFrame({"id": [f"s{i:06d}" for i in range(n)], "split": "train", "text": texts, "messages": messages})


def run_engine(frame, settings, cache, max_tokens=4):
    generation = {"max_tokens": max_tokens, "temperature": 0.0, "top_p": 1.0, "seed": 0, "structured": False}
    teacher = make_teacher(settings)
    start = time.perf_counter()
    out = annotate(
        frame,
        teacher,
        cache,
        kind="label",
        labels=LABELS,
        generation=generation,
        iteration=0,
        **annotate_settings(max_failure_share=0.0),
    )
    return out, time.perf_counter() - start


def run_sequential(frame, base_url, max_tokens=4):
    """The reference case study's loop: one request after the other, nothing stored until the end."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="not-needed", timeout=60)  # the client's default retries
    labels, failures = [], 0
    start = time.perf_counter()
    for messages in frame["messages"]:
        try:
            response = client.chat.completions.create(
                model="fake", messages=json.loads(messages), max_tokens=max_tokens, temperature=0.0
            )
            labels.append(response.choices[0].message.content)
        except openai.APIError:
            failures += 1
            labels.append(None)
    return labels, failures, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000, help="items the engine annotates")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added to every request")
    parser.add_argument("--rate-limit", type=float, default=0.05, help="share of requests answered 429")
    parser.add_argument("--sequential-items", type=int, default=100, help="items the sequential loop is timed on")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "annotate_engine.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    plan = FaultPlan(latency_s=args.latency, rate_limit=args.rate_limit, retry_after=["0", "0.1", "0.25"], seed=0)
    process, base_url = start_proxy_process("fake", plan)
    try:
        frame = synthetic_prompts(args.items)
        settings = {
            "backend": "openai",
            "base_url": base_url,
            "model": "fake",
            "api_key_env": None,
            "concurrency": args.concurrency,
            "timeout_s": 30,
        }
        with tempfile.TemporaryDirectory() as tmp:
            cache = ResponseCache(Path(tmp) / "responses.sqlite")
            reset_proxy(base_url)
            out, engine_s = run_engine(frame, settings, cache)
            engine_stats = proxy_stats(base_url)
            answered = out["parse_status"] != ERROR
            reset_proxy(base_url)
            rerun, rerun_s = run_engine(frame, settings, cache)
            rerun_requests = proxy_stats(base_url)["received"]
            cache_rows = len(cache)
            cache.close()

        subset = frame.head(min(args.sequential_items, args.items))
        reset_proxy(base_url)
        seq_labels, seq_failures, seq_s = run_sequential(subset, base_url)
        seq_stats = proxy_stats(base_url)
    finally:
        stop_process(process)

    engine_rate = args.items / engine_s
    seq_rate = len(subset) / seq_s
    figures = {
        "items": args.items,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "rate_limit_share": args.rate_limit,
        "retry_after_values_s": plan.retry_after,
        "engine": {
            "seconds": round(engine_s, 2),
            "items_per_s": round(engine_rate, 1),
            "requests": engine_stats["received"],
            "responses_429": engine_stats["faults"].get("rate_limit", 0),
            "lost_items": int(len(frame) - answered.sum()) + len(set(frame["id"]) - set(out["id"])),
            "duplicated_rows": int(out["id"].duplicated().sum()),
            "items_answered_twice": sum(1 for count in engine_stats["ok_by_body"].values() if count > 1),
            "rows_in_order": out["id"].tolist() == frame["id"].tolist(),
            "cache_rows": cache_rows,
        },
        "rerun_same_cache": {
            "requests": rerun_requests,
            "seconds": round(rerun_s, 2),
            "all_cached": bool(rerun["cached"].all()),
            "labels_identical": rerun["label"].tolist() == out["label"].tolist(),
        },
        "sequential_reference": {
            "items_timed": len(subset),
            "note": f"one request at a time with the openai client (its default 2 retries), no cache; timed on "
            f"the first {len(subset)} of the {args.items} items, its rate does not depend on the item count",
            "seconds": round(seq_s, 2),
            "items_per_s": round(seq_rate, 2),
            "responses_429": seq_stats["faults"].get("rate_limit", 0),
            "failed_items": seq_failures,
            "labels_match_engine": seq_labels == out["raw_output"].head(len(subset)).tolist(),
        },
        "speedup_engine_vs_sequential": round(engine_rate / seq_rate, 1),
        "speedup_goal": 50,
        "machine": {"cpus": _cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(_summary(figures))
    print(f"written to {args.out}")
    return figures


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _summary(f: dict) -> str:
    e, r, s = f["engine"], f["rerun_same_cache"], f["sequential_reference"]
    return "\n".join(
        [
            f"{f['items']} items, {f['latency_s'] * 1000:.0f} ms latency, {f['rate_limit_share']:.0%} answered 429",
            f"engine (concurrency {f['concurrency']}): {e['items_per_s']} items/s ({e['seconds']} s, "
            f"{e['requests']} requests, {e['responses_429']} x 429)",
            f"  lost {e['lost_items']}, duplicated rows {e['duplicated_rows']}, answered twice "
            f"{e['items_answered_twice']}, rows in order {e['rows_in_order']}, cache rows {e['cache_rows']}",
            f"rerun with the same cache: {r['requests']} requests in {r['seconds']} s, all cached {r['all_cached']}",
            f"sequential loop ({s['items_timed']} items): {s['items_per_s']} items/s ({s['seconds']} s, "
            f"{s['responses_429']} x 429, {s['failed_items']} failed)",
            f"speedup: {f['speedup_engine_vs_sequential']}x (goal >= {f['speedup_goal']}x)",
        ]
    )


if __name__ == "__main__":
    main()
