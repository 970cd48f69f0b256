"""Fine-tune one student on one label source (a teacher × prompt vote, or the expert labels), with the
run's task's head."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("train_student")(
    list(snakemake.input),
    teacher=snakemake.wildcards.teacher,
    prompt=snakemake.wildcards.prompt,
    student=snakemake.params.student,
    labels=snakemake.params.labels,
    model_dir=snakemake.output.model,
    metadata_path=snakemake.output.metadata,
    threads=snakemake.threads,
    name=snakemake.wildcards.student,
)
