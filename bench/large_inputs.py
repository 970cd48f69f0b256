"""A large dataset through the real pipeline: prepare, prompts, sharded annotation, vote and predict.

The teacher is an OpenAI-compatible endpoint on the loopback interface: the fault proxy from
tests/servers.py in its own process, in front of its instant fake upstream, adding a fixed latency
(200 ms by default) to every request, so the pipeline is measured, not an LLM. For each K in
``--shards`` the pipeline runs in a fresh copy of the workflow with an empty response cache:

    snakemake --cores 8 --resources api_calls=8 results/votes/fake/label.parquet   (annotate.shards: K)

Figures: wall time of each run, the ratio, the requests the endpoint received, and the peak memory
(max_rss from the benchmark files Snakemake writes) of every stage. The gathered iteration files of
the runs are compared: they must be identical apart from latency. Then ``predict`` labels the whole
dataset with a small student (MiniLM trained here on 400 of the voted texts; the student's quality
is not the point) through the pipeline's own ``export_onnx`` and ``predict`` rules (ONNX int8, the
default serving path).

    python bench/large_inputs.py --out bench/results/large_inputs_100k.json   # 100,000 texts, K = 1 and 8 (~50 min)
    python bench/large_inputs.py --texts 20000        # a few minutes per K on 2 cores

Prints the figures and writes them to bench/results/large_inputs.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.servers (the fault proxy) and the workflow copy

from tests.conftest import MINILM, copy_workflow  # noqa: E402
from tests.servers import FaultPlan, proxy_stats, start_proxy_process, stop_process  # noqa: E402

LABELS = ["positive", "negative", "neutral"]
SUBJECTS = ["Granholt Paper", "Tralee Biotech", "Norrvik Steel", "Alder Foods", "Brenmar Shipping", "Kestrel Bank"]
EVENTS = {
    "raised its full-year outlook": "positive",
    "won a contract worth EUR 40 million": "positive",
    "reported a quarterly loss": "negative",
    "announced 300 job cuts": "negative",
    "kept its dividend unchanged": "neutral",
    "appointed a new chief financial officer": "neutral",
}
STAGES = ["prepare_data", "build_prompts", "annotate", "gather_annotations", "vote", "export_onnx", "predict"]


def write_dataset(path: Path, n: int, seed: int = 0) -> None:
    """n distinct news-like sentences with a label; distinct so that prepare_data drops none."""
    rng = random.Random(seed)
    events = list(EVENTS)
    rows = []
    for number in range(n):
        event = rng.choice(events)
        text = f"{rng.choice(SUBJECTS)} {event} in Q{rng.randint(1, 4)} {rng.randint(2001, 2025)} (release {number})."
        rows.append((text, EVENTS[event]))
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)


def config_for(dataset: Path, base_url: str, shards: int, concurrency: int, cache: Path) -> dict:
    return {
        "labels": LABELS,
        "dataset": {"path": str(dataset), "text_column": "text", "label_column": "label"},
        "split": {"test_size": 0.1, "validation_size": 0.1, "seed": 1},
        "prompts": {"label": {"template": "config/prompts/label.txt", "kind": "label", "max_tokens": 4}},
        "teachers": {
            "fake": {
                "backend": "openai",
                "base_url": base_url,
                "model": "fake",
                "api_key_env": None,
                "temperature": 0.7,
                "seed": 0,
                "concurrency": concurrency,
            }
        },
        "students": {"minilm": {"model": MINILM, "epochs": 1, "batch_size": 16, "max_length": 64}},
        "self_consistency": {"iterations": 1},
        "annotate": {"shards": shards},
        "cache": {"path": str(cache)},
        "inference": {"onnx": True},
        "predict": {"files": {"large": str(dataset)}, "student": "minilm/fake/label", "batch_size": 256},
    }


def run_snakemake(workdir: Path, *args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--cores", "8", "--resources", "api_calls=8"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def stage_figures(workdir: Path) -> dict[str, dict[str, float]]:
    """Per stage: peak max_rss over its jobs (MB) and the summed job seconds, from benchmarks/."""
    out = {}
    for stage in STAGES:
        files = sorted((workdir / "benchmarks").glob(f"{stage}*.tsv")) + sorted(
            (workdir / "benchmarks" / stage).rglob("*.tsv")
        )
        if not files:
            continue
        frame = pd.concat([pd.read_csv(f, sep="\t") for f in files])
        out[stage] = {
            "jobs": len(files),
            "peak_rss_mb": round(float(pd.to_numeric(frame["max_rss"], errors="coerce").max()), 1),
            "job_seconds_max": round(float(frame["s"].max()), 1),
        }
    return out


def train_small_student(workdir: Path, labels: list[str]) -> float:
    """A MiniLM student on 400 voted train texts, saved where the predict rule expects it."""
    from synthdistill.students.files import train_from_files

    start = time.perf_counter()
    votes = pd.read_parquet(workdir / "results" / "votes" / "fake" / "label.parquet")
    small = workdir / "bench_small_votes.parquet"
    pd.concat(
        [votes.loc[votes["split"] == "train"].head(400), votes.loc[votes["split"] == "validation"].head(100)]
    ).to_parquet(small, index=False)
    folder = workdir / "results" / "students" / "minilm" / "fake" / "label"
    train_from_files(
        [str(small)],
        teacher="fake",
        prompt="label",
        student={"model": MINILM, "epochs": 1, "batch_size": 16, "max_length": 64, "seed": 0},
        labels=labels,
        model_dir=str(folder / "model"),
        metadata_path=str(folder / "metadata.json"),
        threads=2,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8, help="parallel requests per annotate job (default 8)")
    parser.add_argument("--no-predict", action="store_true")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "large_inputs.json"))
    args = parser.parse_args()

    proxy, base_url = start_proxy_process("fake", FaultPlan(latency_s=args.latency))
    results: dict = {
        "texts": args.texts,
        "latency_s": args.latency,
        "concurrency_per_job": args.concurrency,
        "snakemake": "--cores 8 --resources api_calls=8",
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
        "runs": {},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="large_inputs_") as tmp:
            root = Path(tmp)
            dataset = root / "texts.csv"
            write_dataset(dataset, args.texts)
            gathered = {}
            for k in args.shards:
                workdir = root / f"k{k}"
                workdir.mkdir()
                copy_workflow(workdir)
                config = config_for(dataset, base_url, k, args.concurrency, root / f"cache{k}" / "responses.sqlite")
                (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
                before = proxy_stats(base_url)["received"]
                wall = run_snakemake(workdir, "results/votes/fake/label.parquet")
                received = proxy_stats(base_url)["received"] - before
                stages = stage_figures(workdir)
                gathered[k] = pd.read_parquet(workdir / "results" / "annotations" / "fake" / "label" / "iter0.parquet")
                annotate_s = stages["annotate"]["job_seconds_max"]
                results["runs"][f"K={k}"] = {
                    "wall_s": round(wall, 1),
                    "requests": received,
                    "items_per_s_end_to_end": round(args.texts / wall, 1),
                    "slowest_annotate_job_s": annotate_s,
                    "stages": stages,
                }
                print(f"K={k}: {wall:.1f} s wall, {received} requests, stages {json.dumps(stages)}", flush=True)
                last = workdir
            first, *rest = args.shards
            volatile = ["latency_s", "cached"]
            results["gathered_identical"] = all(
                gathered[k].drop(columns=volatile).equals(gathered[first].drop(columns=volatile)) for k in rest
            )
            if len(args.shards) >= 2:
                a, b = args.shards[0], args.shards[-1]
                results["wall_ratio"] = round(
                    results["runs"][f"K={a}"]["wall_s"] / results["runs"][f"K={b}"]["wall_s"], 2
                )
            if not args.no_predict:
                results["student_train_s"] = round(train_small_student(last, LABELS), 1)
                wall = run_snakemake(last, "predict_all", "--allowed-rules", "export_onnx", "predict", "predict_all")
                predictions = pd.read_parquet(last / "results" / "predictions" / "large.parquet")
                assert len(predictions) == args.texts, len(predictions)
                stages = stage_figures(last)
                results["predict"] = {
                    "wall_s": round(wall, 1),
                    **stages["predict"],
                    "export_onnx": stages["export_onnx"],
                }
                print(f"predict: {wall:.1f} s wall, {json.dumps(results['predict'])}", flush=True)
    finally:
        stop_process(proxy)
    peaks = [s["peak_rss_mb"] for run in results["runs"].values() for s in run["stages"].values()]
    if "predict" in results:
        peaks += [results["predict"]["peak_rss_mb"], results["predict"]["export_onnx"]["peak_rss_mb"]]
    results["max_stage_peak_rss_mb"] = max(peaks)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
