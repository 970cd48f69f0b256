"""Score one teacher's prompt candidates on the gold dev split and choose the one that labels the
pool (labels/pilot.py); stops the run when none is worth paying the pool for."""

from synthdistill.labels.pilot import pilot_teacher
from synthdistill.logs import setup

setup(snakemake.log[0])
pilot_teacher(
    gold_dev_path=snakemake.input.gold_dev,
    shots_path=snakemake.input.shots or None,
    teacher_name=snakemake.wildcards.teacher,
    teacher={**snakemake.params.teacher, "n_threads": snakemake.threads},
    candidate_settings=snakemake.params.candidates,
    labels=snakemake.params.labels,
    pilot=snakemake.params.pilot,
    iterations=snakemake.params.iterations,
    engine=snakemake.params.engine,
    cache_path=snakemake.params.cache,
    costing=snakemake.params.costing,
    tie_policy=snakemake.params.tie_policy,
    outputs=dict(snakemake.output.items()),
)
