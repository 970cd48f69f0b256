"""Fit the student-first cascade on the validation split and score it on the test split."""

from synthdistill.logs import setup
from synthdistill.students.cascade import write_cascade

setup(snakemake.log[0])
write_cascade(
    snakemake.input.model,
    snakemake.input.votes,
    snakemake.input.validation,
    snakemake.input.test,
    snakemake.params.labels,
    snakemake.params.max_length,
    snakemake.params.confidence,
    dict(snakemake.params.target),
    {name: snakemake.output[name] for name in ("summary", "curve", "per_item")},
    {name: snakemake.wildcards[name] for name in ("student", "teacher", "prompt")},
)
