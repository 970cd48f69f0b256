"""Apply the configured corrections file to one teacher × prompt's votes; write labels and audit."""

import logging

from synthdistill.labels.corrections import import_review
from synthdistill.logs import setup

setup(snakemake.log[0])
audit = import_review(
    snakemake.input.votes,
    snakemake.params.corrections,
    snakemake.params.labels,
    snakemake.output.labels,
    snakemake.output.audit,
)
logging.getLogger("synthdistill").info(
    "%d corrections applied, %d changed a label", len(audit), int(audit["changed"].sum()) if len(audit) else 0
)
