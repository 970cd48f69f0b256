"""One shard of one self-consistency iteration of one teacher × prompt. Kept thin: an edit here
reruns every annotate job, while the response cache keeps those reruns free."""

import pandas as pd

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.shards import select_shard
from synthdistill.annotation.teachers import make_teacher
from synthdistill.logs import setup

setup(snakemake.log[0])
settings = {**snakemake.params.teacher, "n_threads": snakemake.threads}
generation = {**settings, **snakemake.params.prompt}
shard, shards = snakemake.params.shard  # from the scatter item: "2-of-3" is shard 1 of 3
prompts = select_shard(pd.read_parquet(snakemake.input[0]), shard, shards)
annotate(
    prompts,
    make_teacher(settings, snakemake.wildcards.teacher),
    ResponseCache(snakemake.params.cache),
    kind=snakemake.params.prompt["kind"],
    labels=snakemake.params.labels,
    generation=generation,
    iteration=int(snakemake.wildcards.iteration),
    max_failure_share=snakemake.params.max_failure_share,
    retry_unparsed=snakemake.params.retry_unparsed,
    max_consecutive_failures=snakemake.params.max_consecutive_failures,
    batch_missing=snakemake.params.batch_missing,
).to_parquet(snakemake.output[0], index=False)
