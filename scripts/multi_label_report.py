"""Write the multi-label report (Markdown and self-contained HTML) from the run's artifacts."""

from synthdistill.logs import setup
from synthdistill.reporting.multi_label_report import build

setup(snakemake.log[0])
build(
    snakemake.params.entries["teachers"],
    snakemake.params.entries["students"],
    snakemake.params.labels,
    snakemake.input.paired[0] if snakemake.input.paired else None,
    {"markdown": snakemake.output.markdown, "html": snakemake.output.html},
)
