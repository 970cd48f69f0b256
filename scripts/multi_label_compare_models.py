"""Each multi-label student against the teacher it learned from, paired on the same test items."""

from synthdistill.evaluation.multi_label_metrics import write_paired_tests
from synthdistill.logs import setup

setup(snakemake.log[0])
write_paired_tests(
    snakemake.params.models,
    snakemake.params.students,
    snakemake.input.test,
    snakemake.params.labels,
    snakemake.output[0],
)
