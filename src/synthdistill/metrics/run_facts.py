"""Facts about a run: the machine, library versions, the config's hash, time and memory per stage."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill import SynthDistillError

LIBRARIES = (
    "snakemake",
    "torch",
    "transformers",
    "onnxruntime",
    "llama_cpp_python",
    "pandas",
    "scikit-learn",
    "matplotlib",
    "codecarbon",
)


def read_json(path: str | None) -> Any:
    """A JSON artifact of the run (None without a path): a dict for every artifact the reports and the
    model cards read."""
    return json.loads(Path(path).read_text()) if path else None


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the resolved config (defaults filled in), keys sorted, so equal runs hash equal."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU, cores, memory and GPU of the machine this runs on."""
    facts: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        facts["memory_gb"] = round(pages * size / 1e9, 1)
    except (ValueError, OSError):
        facts["memory_gb"] = None
    try:
        import torch

        facts["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        facts["gpu"] = None
    return facts


def versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def stage_benchmarks(folder: str | Path) -> pd.DataFrame:
    """Wall time and peak memory per rule from Snakemake's benchmark files (benchmarks/<rule>/...tsv).

    One row per rule: jobs, total and longest wall time, the largest peak resident memory.
    """
    rows = []
    folder = Path(folder)
    for path in sorted(folder.rglob("*.tsv")):
        parts = path.relative_to(folder).parts
        rule = parts[0] if len(parts) > 1 else path.stem  # benchmarks/<rule>/... or benchmarks/<rule>.tsv
        try:
            table = pd.read_csv(path, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise SynthDistillError(f"{path}: not a Snakemake benchmark file ({error})") from error
        if "s" not in table or "max_rss" not in table:
            raise SynthDistillError(f"{path}: not a Snakemake benchmark file (no 's' or 'max_rss' column)")
        rss = pd.to_numeric(table["max_rss"], errors="coerce")  # "-" where it was not measured
        rows.append({"rule": rule, "seconds": float(table["s"].iloc[-1]), "max_rss_mb": rss.iloc[-1]})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "wall_s_total", "wall_s_max", "peak_rss_mb"])
    frame = pd.DataFrame(rows)
    return (
        frame.groupby("rule", sort=False)
        .agg(
            jobs=("seconds", "size"),
            wall_s_total=("seconds", "sum"),
            wall_s_max=("seconds", "max"),
            peak_rss_mb=("max_rss_mb", "max"),
        )
        .reset_index()
    )
