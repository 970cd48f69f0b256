"""Apply the configured corrections file to one teacher × prompt's votes; write labels and audit."""

import logging

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
audit = get_task(snakemake.params.task).step("import_review")(
    votes_path=snakemake.input.votes,
    corrections_path=snakemake.input.corrections[0] if snakemake.input.corrections else None,
    labels=snakemake.params.labels,
    labels_out=snakemake.output.labels,
    audit_out=snakemake.output.audit,
    settings=snakemake.params.settings,
)
logging.getLogger("synthdistill").info(
    "%d corrections applied, %d changed a label", len(audit), int(audit["changed"].sum()) if len(audit) else 0
)
