"""Write the report (Markdown and self-contained HTML; for single_label also figures and CSV tables)
from the run's artifacts."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("report")(
    entries=snakemake.params.entries,
    labels=snakemake.params.labels,
    outputs=dict(snakemake.output.items()),
    run={
        **snakemake.params.run,
        "summary": snakemake.input.summary,
        "paired": snakemake.input.paired[0] if snakemake.input.paired else None,
        "selection": tuple(snakemake.input.selection) or None,
        "splits": dict(zip(("train", "test"), snakemake.input.splits, strict=True)) if snakemake.input.splits else None,
    },
)
