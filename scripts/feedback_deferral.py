"""How much of what the served student deferred the retrained student still defers."""

import logging

from synthdistill.logs import setup
from synthdistill.students.feedback_deferral import write_feedback_deferral

setup(snakemake.log[0])
result = write_feedback_deferral(
    snakemake.params.student_dir,
    snakemake.input.labels,
    snakemake.input.cascade,
    snakemake.params.max_length,
    snakemake.output[0],
    dict(snakemake.wildcards),
)
logging.getLogger("synthdistill").info("feedback deferral: %s", result)
