"""Rank the labellers on the gold dev split; copy the best one's labels for students_learn_from: best."""

from synthdistill.labels.selection import select_labeller
from synthdistill.logs import setup

setup(snakemake.log[0])
names = snakemake.params.names
select_labeller(
    dict(zip(names, snakemake.input.votes, strict=True)),
    dict(zip(names, snakemake.input.labels, strict=True)),
    snakemake.input.gold_dev,
    snakemake.params.labels,
    dict(snakemake.output.items()),
)
