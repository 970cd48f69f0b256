"""Score one teacher × prompt's multi-label votes with cleanlab and write its review files."""

from synthdistill.labels.multi_label_review import export_review
from synthdistill.logs import setup

setup(snakemake.log[0])
export_review(
    snakemake.input.votes,
    snakemake.params.labels,
    snakemake.params.settings,
    f"synthdistill:{snakemake.wildcards.teacher}/{snakemake.wildcards.prompt}",
    dict(snakemake.output.items()),
)
