"""Train one active round's student on everything labelled so far, and score the rest of the pool
with it (students/active_rounds.py)."""

from synthdistill.logs import setup
from synthdistill.students.active_rounds import train_round

setup(snakemake.log[0])
inputs = snakemake.input
train_round(
    int(snakemake.wildcards.round),
    annotation_paths=list(inputs.annotations),
    selection_paths=list(inputs.selections),
    split_paths=dict(zip(("train", "validation", "test"), inputs.splits, strict=True)),
    previous=(inputs.previous_figures, inputs.previous_scores) if "previous_figures" in inputs.keys() else None,
    task=snakemake.params.task,
    teacher=snakemake.wildcards.teacher,
    prompt=snakemake.wildcards.prompt,
    student_name=snakemake.params.student_name,
    student=snakemake.params.student,
    labels=snakemake.params.labels,
    vote_settings=snakemake.params.vote,
    measure=snakemake.params.measure,
    threads=snakemake.threads,
    outputs={
        "model": snakemake.output.model,
        "metadata": snakemake.output.metadata,
        "votes": f"{snakemake.output.labels}/votes.parquet",
        "train_csv": f"{snakemake.output.labels}/train.csv",
        "stats": f"{snakemake.output.labels}/stats.json",
        "scores": snakemake.output.scores,
        "figures": snakemake.output.figures,
    },
)
