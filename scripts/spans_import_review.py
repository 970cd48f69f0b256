"""Apply review.corrections to a spans teacher × prompt's votes: reviewed spans and the audit trail."""

from synthdistill.labels.span_corrections import import_span_review
from synthdistill.logs import setup

setup(snakemake.log[0])
import_span_review(
    snakemake.input.votes,
    snakemake.input.corrections[0] if snakemake.input.corrections else None,
    snakemake.params.labels,
    snakemake.output.labels,
    snakemake.output.audit,
)
