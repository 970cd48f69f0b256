"""Apply the configured corrections file to one teacher × prompt's voted sets; write sets and audit."""

import logging

from synthdistill.labels.multi_label_corrections import import_label_set_review
from synthdistill.logs import setup

setup(snakemake.log[0])
audit = import_label_set_review(
    snakemake.input.votes,
    snakemake.params.corrections,
    snakemake.params.labels,
    snakemake.params.delimiter,
    snakemake.output.labels,
    snakemake.output.audit,
)
logging.getLogger("synthdistill").info(
    "%d corrections applied, %d changed a label set", len(audit), int(audit["changed"].sum()) if len(audit) else 0
)
