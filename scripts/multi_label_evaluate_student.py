"""Score a multi-label student's predicted label sets on the frozen expert test split."""

from synthdistill.evaluation.multi_label_metrics import evaluate_student
from synthdistill.logs import setup

setup(snakemake.log[0])
evaluate_student(
    snakemake.input.model,
    snakemake.input.test,
    snakemake.params.labels,
    snakemake.params.max_length,
    snakemake.output.metrics,
    snakemake.output.predictions,
)
