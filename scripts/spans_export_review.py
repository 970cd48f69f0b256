"""Review files for a spans teacher × prompt: Label Studio tasks and an Argilla dataset, the voted
spans as predictions and suggestions."""

from synthdistill.labels.span_review import write_span_review
from synthdistill.logs import setup

setup(snakemake.log[0])
write_span_review(
    snakemake.input.votes,
    snakemake.params.labels,
    snakemake.wildcards.teacher,
    snakemake.wildcards.prompt,
    dict(snakemake.output.items()),
)
