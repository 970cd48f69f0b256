"""The default single-label run, end to end, at a baseline revision and at the checked-out one.

Each revision is cloned from this repository into a scratch folder and runs ``snakemake --cores 2``
with the shipped config and an empty response cache of its own (every LLM answer generated), so the
figure is what a new user waits for after the two setup commands. The revisions take turns, in a
rotated order, for ``--rounds`` rounds; each run records its wall time, its peak memory (the largest
resident set of any process of the run) and the load average before and after. The default baseline
is the commit before the task kinds (multi_label, spans) reached the workflow, to check that the
default run is not slower for them.

    python bench/default_run.py                          # baseline 5a6f009^, 1 round
    python bench/default_run.py --baseline v0.1.0 --rounds 2

Prints the figures and writes them to bench/results/default_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def checkout(revision: str, folder: Path) -> str:
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")  # resolved here: a clone knows no worktree's HEAD
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(folder)], check=True)
    subprocess.run(["git", "checkout", "-q", commit], cwd=folder, check=True)
    return commit[:7]


def run_once(folder: Path, cache: Path) -> dict:
    cache.unlink(missing_ok=True)
    for output in ("results", "logs", "benchmarks", ".snakemake"):
        subprocess.run(["rm", "-rf", str(folder / output)], check=True)
    before = os.getloadavg()
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"cache={{path: {cache}}}"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"the run in {folder} failed:\n{result.stderr[-3000:]}")
    jobs = sum(1 for line in result.stderr.splitlines() if line.startswith("Finished job"))
    return {
        "seconds": round(seconds, 1),
        "jobs": jobs,
        "load_average_before": [round(x, 2) for x in before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="5a6f009^", help="the revision to compare with (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "default_run.json"))
    args = parser.parse_args()
    if git("status", "--porcelain", "--untracked-files=no"):
        print("note: uncommitted changes are not measured; the run uses the committed HEAD")
    with tempfile.TemporaryDirectory(prefix="default-run-") as scratch:
        root = Path(scratch)
        revisions = {
            "baseline": checkout(args.baseline, root / "baseline"),
            "current": checkout("HEAD", root / "current"),
        }
        runs: dict[str, list[dict]] = {name: [] for name in revisions}
        for number in range(args.rounds):
            order = list(revisions) if number % 2 == 0 else list(reversed(revisions))
            for name in order:
                run = run_once(root / name, root / f"{name}.sqlite")
                runs[name].append(run)
                print(f"round {number + 1} {name} ({revisions[name]}): {run['seconds']} s, {run['jobs']} jobs")
        # ru_maxrss of the children covers the largest job (the student training or the teacher).
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    medians = {name: statistics.median(r["seconds"] for r in runs[name]) for name in runs}
    out = {
        "what": "snakemake --cores 2 with config/config.yaml, empty response cache, fresh results",
        "revisions": revisions,
        "runs": runs,
        "median_seconds": medians,
        "current_over_baseline": round(medians["current"] / medians["baseline"], 3),
        "largest_process_mb": round(peak_mb),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    print(
        f"median: baseline {medians['baseline']:.0f} s, current {medians['current']:.0f} s "
        f"(current / baseline {out['current_over_baseline']})"
    )
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
