"""After the active rounds: the prompts and train split the annotate jobs and the vote read, every
round's selection, and the rounds table (students/active_rounds.py)."""

from synthdistill.logs import setup
from synthdistill.students.active_rounds import write_pool

setup(snakemake.log[0])
write_pool(
    snakemake.input.prompts,
    snakemake.input.train,
    list(snakemake.input.selections),
    list(snakemake.input.figures),
    snakemake.params.iterations,
    dict(snakemake.output.items()),
)
