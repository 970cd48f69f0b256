"""Train a student on growing subsets of its synthetic labels and score each on the test split."""

from synthdistill.evaluation.learning_curve import write_learning_curve
from synthdistill.logs import setup

setup(snakemake.log[0])
write_learning_curve(
    snakemake.input.labels,
    snakemake.input.test,
    snakemake.output.csv,
    snakemake.output.png,
    title="{student} on {teacher} / {prompt}".format(**snakemake.wildcards),
    teacher=snakemake.wildcards.teacher,
    student=snakemake.params.student,
    labels=snakemake.params.labels,
    sizes=snakemake.params.sizes,
    threads=snakemake.threads,
)
