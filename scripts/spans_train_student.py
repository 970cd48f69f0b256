"""Fine-tune one token-classification student on one label source (a teacher × prompt's voted
spans, or the expert spans)."""

from synthdistill.logs import setup
from synthdistill.students.span_files import train_from_files

setup(snakemake.log[0])
train_from_files(
    list(snakemake.input),
    teacher=snakemake.wildcards.teacher,
    prompt=snakemake.wildcards.prompt,
    student=snakemake.params.student,
    labels=snakemake.params.labels,
    model_dir=snakemake.output.model,
    metadata_path=snakemake.output.metadata,
    threads=snakemake.threads,
)
