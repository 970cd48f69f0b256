"""Annotate the texts one active round chose, every self-consistency iteration, through the engine
and the response cache (students/active_rounds.py)."""

from functools import partial

import pandas as pd

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.teachers import make_teacher
from synthdistill.logs import setup
from synthdistill.students.active_rounds import annotate_round

setup(snakemake.log[0])
settings = {**snakemake.params.teacher, "n_threads": snakemake.threads}
annotate_iteration = partial(
    annotate,
    teacher=make_teacher(settings, snakemake.wildcards.teacher),
    cache=ResponseCache(snakemake.params.cache),
    kind=snakemake.params.prompt["kind"],
    labels=snakemake.params.labels,
    generation={**settings, **snakemake.params.prompt},
    **snakemake.params.engine,
)
annotate_round(
    pd.read_parquet(snakemake.input.prompts),
    pd.read_parquet(snakemake.input.selection),
    int(snakemake.wildcards.round),
    snakemake.params.iterations,
    lambda prompts, iteration: annotate_iteration(prompts, iteration=iteration),
).to_parquet(snakemake.output[0], index=False)
