"""Render one prompt template for every item, as the teacher will read it."""

from synthdistill.annotation.prompt_files import build_prompt_frame, example_pool_from
from synthdistill.data import read_splits
from synthdistill.logs import setup

setup(snakemake.log[0])
build_prompt_frame(
    read_splits(snakemake.input.splits),
    snakemake.input.template,
    snakemake.params.teacher,
    snakemake.params.prompt,
    snakemake.params.labels,
    example_pool_from(snakemake.input.examples, snakemake.params.prompt, snakemake.params.labels),
).to_parquet(snakemake.output[0], index=False)
