"""Gather the shards of one self-consistency iteration into the iteration artifact, in prompt order."""

from synthdistill.annotation.shards import gather_shards, prompt_ids
from synthdistill.logs import setup

setup(snakemake.log[0])
gather_shards(snakemake.input.shards, prompt_ids(snakemake.input.prompts)).to_parquet(snakemake.output[0], index=False)
