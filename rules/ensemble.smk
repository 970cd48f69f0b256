# Ensemble teachers: several teacher × prompt label sets combined into one vote file.


# The ensemble's votes have the same path pattern as a teacher's; this rule makes them.
ruleorder: vote_ensemble > vote


rule vote_ensemble:
    input:
        iterations=iteration_files,
        member_stats=ensemble_stats_files,
        splits=expand(
            "results/data/{split}.parquet", split=["train", "validation", "test"]
        ),
    output:
        votes="results/votes/{teacher}/{prompt}.parquet",
        train_csv="results/votes/{teacher}/{prompt}.train.csv",
        stats="results/votes/{teacher}/{prompt}.stats.json",
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
        prices=ensemble_prices,
        tie_policy=lookup(dpath="vote/tie_policy", within=config),
        settings=lambda wildcards: REVIEW_SCORING,
    script:
        "../scripts/vote_ensemble.py"
