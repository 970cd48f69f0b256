"""Score a teacher × prompt's voted spans on the frozen expert test split (entity-level P/R/F1)."""

from synthdistill.evaluation.span_scoring import evaluate_teacher
from synthdistill.logs import setup

setup(snakemake.log[0])
evaluate_teacher(snakemake.input[0], snakemake.params.labels, snakemake.output[0])
