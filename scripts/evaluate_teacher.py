"""Score a teacher × prompt's voted labels on the frozen expert test split."""

from synthdistill.evaluation.scoring import evaluate_teacher
from synthdistill.logs import setup

setup(snakemake.log[0])
evaluate_teacher(snakemake.input[0], snakemake.params.labels, snakemake.output[0])
