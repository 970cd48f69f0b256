"""Vote over the self-consistency iterations of one teacher × prompt, as the run's task votes: a
majority vote of labels (single_label), a per-label or per-span share vote (multi_label, spans)."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("vote")(
    iteration_paths=list(snakemake.input.iterations),
    split_paths=list(snakemake.input.splits),
    labels=snakemake.params.labels,
    settings=snakemake.params.vote,
    outputs=dict(snakemake.output.items()),
)
