"""Paired significance tests between teachers, and between each student and its teacher."""

from synthdistill.evaluation.scoring import write_paired_tests
from synthdistill.logs import setup

setup(snakemake.log[0])
write_paired_tests(
    snakemake.params.models,
    snakemake.params.teachers,
    snakemake.params.students,
    snakemake.input.test,
    snakemake.params.labels,
    snakemake.output[0],
)
