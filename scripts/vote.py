"""Majority vote over the self-consistency iterations of one teacher × prompt."""

from synthdistill.labels.vote_files import write_votes
from synthdistill.logs import setup

setup(snakemake.log[0])
write_votes(
    snakemake.input.iterations,
    snakemake.input.splits,
    snakemake.params.labels,
    snakemake.params.tie_policy,
    dict(snakemake.output.items()),
)
