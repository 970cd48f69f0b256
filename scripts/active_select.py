"""Choose the texts one active round labels (students/active_rounds.py)."""

import json
from pathlib import Path

import pandas as pd

from synthdistill.logs import setup
from synthdistill.students.active_rounds import SELECTION_COLUMNS, select_round

setup(snakemake.log[0])
selections = [pd.read_parquet(p) for p in snakemake.input.selections]
selection, status = select_round(
    int(snakemake.wildcards.round),
    pd.read_parquet(snakemake.input.train),
    pd.concat(selections, ignore_index=True) if selections else pd.DataFrame(columns=SELECTION_COLUMNS),
    pd.read_parquet(snakemake.input.scores) if "scores" in snakemake.input.keys() else None,
    [json.loads(Path(p).read_text()) for p in snakemake.input.figures],
    snakemake.params.active,
    snakemake.params.costing,
)
selection.to_parquet(snakemake.output.selection, index=False)
Path(snakemake.output.status).write_text(json.dumps(status, indent=2) + "\n")
