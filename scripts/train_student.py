"""Fine-tune one student on one label source (a teacher × prompt vote, or the expert labels)."""

from synthdistill.logs import setup
from synthdistill.students.files import train_from_files

setup(snakemake.log[0])
train_from_files(
    snakemake.input,
    teacher=snakemake.wildcards.teacher,
    prompt=snakemake.wildcards.prompt,
    student=snakemake.params.student,
    labels=snakemake.params.labels,
    model_dir=snakemake.output.model,
    metadata_path=snakemake.output.metadata,
    threads=snakemake.threads,
    name=snakemake.wildcards.student,
)
