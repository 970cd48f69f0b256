"""Load, clean and split the dataset once for the whole run."""

from synthdistill import data
from synthdistill.logs import setup

setup(snakemake.log[0])
items, summary = data.prepare(
    snakemake.params.dataset, snakemake.params.labels, snakemake.params.split, snakemake.params.task
)
data.write_splits(items, summary, snakemake.output, snakemake.output.summary)
