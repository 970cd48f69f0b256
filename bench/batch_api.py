"""openai_batch end to end: 2,000 items × 3 self-consistency iterations through the loopback batch server
(tests/batch_server.py), 5% of the lines failing once, and the annotating process killed (SIGKILL) while it
polls its first batch, then run again.

The batch server's lines are answered by the fake upstream of tests/servers.py (a label hashed from the
prompt, token counts from word counts), not by SmolLM2: 6,000 llama.cpp generations would take the 2-core
machine an hour and say nothing about batching. The tests (tests/test_batch_teachers.py) answer through the
real llama.cpp server.

Counted at the server (its state folder persists per-custom_id counts across the kill):
* requests submitted vs needed + retries (the injected failures, each failing once, are the only retries);
* duplicates: lines submitted more often than 1 + their own injected failure;
* items lost: items without an answer in the final annotation frames or the cache;
* cost of the measured tokens at batch prices vs real-time prices (one run, one set of tokens).

    python bench/batch_api.py                      # 2,000 items, 3 iterations, 5% failing once
    python bench/batch_api.py --items 200

Prints the figures and writes them to bench/results/batch_api.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from synthdistill.metrics.costs import resolve_price, teacher_cost_row  # noqa: E402
from synthdistill.settings import annotate_settings  # noqa: E402
from tests.batch_server import batch_stats, start_batch_server_process  # noqa: E402
from tests.servers import stop_process  # noqa: E402

LABELS = ["positive", "negative", "neutral"]
GENERATION = {"max_tokens": 8, "temperature": 0.7, "top_p": 1.0, "seed": 0, "structured": False}
# gpt-4o-mini's list prices (real-time) per 1M tokens; the batch price is half.
PRICE = {"input_per_1m_tokens": 0.15, "output_per_1m_tokens": 0.60}


def prompts(items: int) -> pd.DataFrame:
    texts = pd.read_csv(ROOT / "data/demo/financial_news_sentiment.csv")["text"].tolist()
    rows = []
    for i in range(items):
        text = f"{texts[i % len(texts)]} (item {i})"
        messages = [
            {"role": "system", "content": "Classify the sentiment: positive, negative or neutral. One word."},
            {"role": "user", "content": text},
        ]
        rows.append({"id": f"item{i}", "split": "train", "messages": json.dumps(messages)})
    return pd.DataFrame(rows)


def child(args: argparse.Namespace) -> None:
    """One annotating run: every iteration in turn, as a Snakemake job would run them."""
    from synthdistill.annotation.cache import ResponseCache
    from synthdistill.annotation.engine import annotate
    from synthdistill.annotation.teachers import make_teacher

    logging.basicConfig(level=logging.WARNING)
    teacher = make_teacher(
        {"backend": "openai_batch", "model": "gpt-4o-mini", "base_url": args.base_url, "poll_interval_s": 0.2}
        | {"poll_max_interval_s": 1.0}
    )
    cache = ResponseCache(args.cache)
    frame = prompts(args.items)
    for iteration in range(args.iterations):
        out = annotate(
            frame,
            teacher,
            cache,
            kind="label",
            labels=LABELS,
            generation=GENERATION,
            iteration=iteration,
            **annotate_settings(max_failure_share=0.0),
        )
        out.to_parquet(Path(args.work) / f"iter{iteration}.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--fail-share", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/batch_api.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    work = Path(tempfile.mkdtemp(prefix="batch_api_"))
    state = work / "state"
    state.mkdir()
    (state / "HOLD").touch()  # the first batch stays in progress until the kill
    process, base_url = start_batch_server_process(state, "fake", extra=["--fail-share", str(args.fail_share)])
    command = [sys.executable, __file__, "--child", "--items", str(args.items), "--iterations", str(args.iterations)]
    command += ["--base-url", base_url, "--cache", str(work / "cache.sqlite"), "--work", str(work)]
    start = time.perf_counter()
    try:
        first = subprocess.Popen(command)
        while batch_stats(base_url)["statuses"] != ["in_progress"]:
            time.sleep(0.1)
        time.sleep(1.0)  # a few polls
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = batch_stats(base_url)
        (state / "HOLD").unlink()
        second = subprocess.run(command, check=True)
        assert second.returncode == 0
        stats = batch_stats(base_url)
    finally:
        stop_process(process)
    seconds = time.perf_counter() - start

    counts = json.loads((state / "counts.json").read_text())
    failed_once = set(json.loads((state / "failed_once.json").read_text()))
    needed = args.items * args.iterations
    retries = len(failed_once)
    duplicates = sum(max(0, n - 1 - (key in failed_once)) for key, n in counts.items())
    frames = [pd.read_parquet(work / f"iter{i}.parquet") for i in range(args.iterations)]
    answered = sum(int(f["error"].isna().sum()) for f in frames)
    import sqlite3

    with sqlite3.connect(work / "cache.sqlite") as db:
        cached = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    tokens = {
        "iterations": args.iterations,
        "answers": answered,
        "input_tokens": int(sum(f["input_tokens"].sum() for f in frames)),
        "output_tokens": int(sum(f["output_tokens"].sum() for f in frames)),
        "latency_p50_s": None,
        "latency_p95_s": None,
    }
    vote = {"items": args.items}
    batch_row = teacher_cost_row({"annotation": tokens, "vote": vote}, resolve_price(PRICE, "openai_batch"))
    real_row = teacher_cost_row({"annotation": tokens, "vote": vote}, resolve_price(PRICE, "openai"))
    result = {
        "items": args.items,
        "iterations": args.iterations,
        "fail_share": args.fail_share,
        "upstream": "fake (tests/servers.py fake_completion; the tests use llama.cpp)",
        "killed_while_polling": {
            "batches_at_kill": at_kill["statuses"],
            "lines_submitted_at_kill": at_kill["submitted_lines"],
        },
        "requests_needed": needed,
        "lines_failed_once": retries,
        "requests_submitted": sum(counts.values()),
        "requests_expected": needed + retries,
        "duplicates": duplicates,
        "items_lost": needed - answered,
        "answers_in_cache": cached,
        "batches": len(stats["statuses"]),
        "batch_statuses": sorted(set(stats["statuses"])),
        "cost_usd_batch_prices": batch_row["cost_usd"],
        "cost_usd_real_time_prices": batch_row["cost_usd_at_real_time_prices"],
        "cost_usd_real_time_row": real_row["cost_usd"],
        "batch_over_real_time": batch_row["cost_usd"] / real_row["cost_usd"],
        "pricing_method": batch_row["method"],
        "wall_seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
