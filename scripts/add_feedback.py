"""Add the served feedback of one teacher × prompt to its reviewed labels; count what was dropped."""

import logging

from synthdistill.labels.feedback import write_merged_labels
from synthdistill.logs import setup

setup(snakemake.log[0])
summary = write_merged_labels(
    snakemake.input.labels,
    list(snakemake.input.feedback),
    snakemake.input.test,
    snakemake.wildcards.teacher,
    snakemake.wildcards.prompt,
    snakemake.params.labels,
    snakemake.output.labels,
    snakemake.output.summary,
)
logging.getLogger("synthdistill").info("feedback: %s", summary)
