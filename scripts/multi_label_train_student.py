"""Fine-tune one multi-label student on one label source (a teacher × prompt vote, or the expert sets)."""

from synthdistill.logs import setup
from synthdistill.students.multi_label_training import train_from_files

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
)
