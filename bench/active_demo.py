"""Active distillation on the demo data with the real SmolLM2 teacher, through the pipeline itself
(issue 27: figures only, no goal; SmolLM2 is a weak teacher).

The shipped config (config/config.yaml: demo data, SmolLM2's calibrated label scores, MiniLM) runs in a
scratch copy of the workflow three times, one response cache shared so each answer is paid once:
``annotate.strategy: active`` with ``active.query: uncertainty``, the same with ``random``, and
``annotate.strategy: all`` (the whole pool). Each active run's rounds.csv gives the curve (per round:
train texts labelled, calls, the round student's F1 macro against the experts on the test split); the
final students (trained after the rounds on everything labelled) and the whole-pool student are
scored by the pipeline's own evaluate_student on the same test split.

    python bench/active_demo.py [--max-rounds 6] [--min-steps 200] [--out bench/results/active_demo.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = ("Snakefile", "rules", "scripts", "schemas", "envs", "config", "data", "report")
STUDENT = "results/evaluation/students/minilm/smollm2/scores.json"
ROUNDS = "results/active/smollm2/scores/rounds.csv"


def workdir(root: Path, overlay: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    for name in WORKFLOW:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    config.update(overlay)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def run(name: str, overlay: dict[str, Any], scratch: Path, cache: Path) -> dict[str, Any]:
    folder = workdir(scratch / name, {**overlay, "cache": {"path": str(cache)}})
    targets = [STUDENT] + ([ROUNDS] if overlay["annotate"]["strategy"] == "active" else [])
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *targets], cwd=folder, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{name}: snakemake failed\n{done.stderr[-4000:]}")
    metrics = json.loads((folder / STUDENT).read_text())
    out: dict[str, Any] = {
        "final_student_test_f1_macro": round(metrics["f1_macro"], 4),
        "final_student_test_accuracy": round(metrics["accuracy"], 4),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if overlay["annotate"]["strategy"] == "active":
        rounds = pd.read_csv(folder / ROUNDS)
        columns = ["round", "trained", "texts", "pool_share", "calls", "validation_f1_macro", "test_f1_macro"]
        out["rounds"] = rounds[columns].round(4).to_dict(orient="records")
    else:
        out["texts"] = len(pd.read_parquet(folder / "results" / "data" / "train.parquet"))
    print(name, json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-rounds", type=int, default=6)
    parser.add_argument("--min-steps", type=int, default=200, help="students.minilm.min_steps in every run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "active_demo.json")
    args = parser.parse_args(argv)
    shipped = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    student = {**shipped["students"]["minilm"], "min_steps": args.min_steps}
    common = {
        "run": {"prompts": ["scores"]},
        "students": {"minilm": student},
        "evaluation": {"expert_baseline": False},
    }
    active = {"seed_share": 0.05, "round_share": 0.05, "max_rounds": args.max_rounds}
    runs = {
        "uncertainty": {**common, "annotate": {"strategy": "active"}, "active": {**active, "query": "uncertainty"}},
        "random": {**common, "annotate": {"strategy": "active"}, "active": {**active, "query": "random"}},
        "whole_pool": {**common, "annotate": {"strategy": "all"}},
    }
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "responses.sqlite"
        results = {name: run(name, overlay, Path(scratch), cache) for name, overlay in runs.items()}
    figures = {
        "what": "annotate.strategy active vs random vs all on the demo data, SmolLM2 (calibrated label scores)",
        "student": f"MiniLM-L6 as shipped, min_steps {args.min_steps}",
        "active": active,
        "results": results,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
