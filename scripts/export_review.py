"""Write one teacher × prompt's review files, as the run's task reviews (scored with cleanlab where
it can)."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("export_review")(
    votes_path=snakemake.input.votes,
    iteration_paths=dict(zip(snakemake.params.iteration_names, snakemake.input.iterations, strict=True)),
    annotator_paths=dict(zip(snakemake.params.annotator_names, snakemake.input.annotators, strict=True)),
    labels=snakemake.params.labels,
    settings=snakemake.params.settings,
    teacher=snakemake.wildcards.teacher,
    prompt=snakemake.wildcards.prompt,
    outputs=dict(snakemake.output.items()),
)
