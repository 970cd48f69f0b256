"""Vote over the self-consistency iterations of one teacher × prompt: a majority vote of labels
(single_label), or a per-label / per-span share vote (multi_label, spans)."""

from synthdistill.logs import setup

setup(snakemake.log[0])
outputs = dict(snakemake.output.items())
if snakemake.params.task == "single_label":
    from synthdistill.labels.vote_files import write_votes

    write_votes(
        snakemake.input.iterations,
        snakemake.input.splits,
        snakemake.params.labels,
        snakemake.params.tie_policy,
        outputs,
    )
else:
    if snakemake.params.task == "multi_label":
        from synthdistill.labels.multi_label_vote import write_votes
    else:
        from synthdistill.labels.span_vote import write_votes
    write_votes(
        snakemake.input.iterations,
        snakemake.input.splits,
        snakemake.params.labels,
        snakemake.params.min_share,
        outputs,
    )
