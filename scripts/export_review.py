"""Score one teacher × prompt's labels with cleanlab and write its review files."""

from synthdistill.labels.review import export_review
from synthdistill.logs import setup

setup(snakemake.log[0])
export_review(
    snakemake.input.votes,
    dict(zip(snakemake.params.iteration_names, snakemake.input.iterations, strict=True)),
    dict(zip(snakemake.params.annotator_names, snakemake.input.annotators, strict=True)),
    snakemake.params.labels,
    snakemake.params.settings,
    f"synthdistill:{snakemake.wildcards.teacher}/{snakemake.wildcards.prompt}",
    dict(snakemake.output.items()),
)
