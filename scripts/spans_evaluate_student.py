"""Score a spans student on the frozen expert test split (entity-level P/R/F1)."""

from synthdistill.evaluation.span_scoring import evaluate_student
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
