"""Label Studio review tasks for a spans teacher × prompt: the voted spans as predictions."""

from synthdistill.labels.span_review import write_span_review
from synthdistill.logs import setup

setup(snakemake.log[0])
write_span_review(
    snakemake.input.votes,
    snakemake.params.labels,
    f"{snakemake.wildcards.teacher}/{snakemake.wildcards.prompt}",
    dict(snakemake.output.items()),
)
