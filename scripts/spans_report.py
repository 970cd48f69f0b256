"""The spans run's report: teachers and students on the same expert test split, with intervals."""

from synthdistill.logs import setup
from synthdistill.reporting.span_report import write_report

setup(snakemake.log[0])
write_report(dict(snakemake.input.items()), snakemake.params.labels, snakemake.output[0])
