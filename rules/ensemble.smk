# Ensemble teachers: several teacher × prompt label sets combined into one vote file.


# The ensemble's votes have the same path pattern as a teacher's; this rule makes them.
ruleorder: vote_ensemble > vote


def ensemble_stats_files(wildcards):
    return [
        fill(rules.vote.output.stats, teacher=t, prompt=p)
        for t, p in ENSEMBLES[wildcards.teacher]["members"]
    ]


def ensemble_costings(wildcards):
    return [
        {**TEACHER_COSTING[t], "member": f"{t}/{p}"}
        for t, p in ENSEMBLES[wildcards.teacher]["members"]
    ]


rule vote_ensemble:
    input:
        iterations=iteration_files,
        member_stats=ensemble_stats_files,
        splits=data_splits(*ANNOTATED_SPLITS),
    output:
        # vote's own patterns: downstream rules read an ensemble like any teacher.
        votes=rules.vote.output.votes,
        train_csv=rules.vote.output.train_csv,
        stats=rules.vote.output.stats,
    log:
        "logs/vote_ensemble/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/vote_ensemble/{teacher}/{prompt}.tsv"
    wildcard_constraints:
        teacher="|".join(ENSEMBLES) or "(?!)",
        prompt="majority|crowdlab",
    conda:
        "../envs/review.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
        method=lambda wildcards: ENSEMBLES[wildcards.teacher]["method"],
        iteration_names=iteration_names,
        costings=ensemble_costings,
        tie_policy=lookup(dpath="vote/tie_policy", within=config),
        settings=lambda wildcards: REVIEW_SCORING,
    script:
        "../scripts/vote_ensemble.py"
