"""Combine several teacher × prompt label sets into one ensemble vote file."""

from synthdistill.labels.ensemble import write_ensemble
from synthdistill.logs import setup

setup(snakemake.log[0])
write_ensemble(
    dict(zip(snakemake.params.iteration_names, snakemake.input.iterations, strict=True)),
    list(snakemake.input.splits),
    list(snakemake.input.member_stats),
    snakemake.params.costings,
    snakemake.params.labels,
    snakemake.params.method,
    snakemake.params.tie_policy,
    snakemake.params.settings,
    dict(snakemake.output.items()),
)
