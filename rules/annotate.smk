rule build_prompts:
    input:
        template=prompt_template,
        splits=expand("results/data/{split}.parquet", split=["train", "validation", "test"]),
    output:
        "results/prompts/{teacher}/{prompt}.parquet",
    params:
        teacher=teacher_params,
        prompt=prompt_params,
        labels=lookup(dpath="labels", within=config),
    log:
        "logs/build_prompts/{teacher}/{prompt}.log",
    script:
        "../scripts/build_prompts.py"


rule annotate:
    input:
        "results/prompts/{teacher}/{prompt}.parquet",
    output:
        "results/annotations/{teacher}/{prompt}/iter{iteration}.parquet",
    params:
        teacher=teacher_params,
        prompt=prompt_params,
        labels=lookup(dpath="labels", within=config),
        cache=lookup(dpath="cache/path", within=config),
        max_failure_share=lookup(dpath="annotate/max_failure_share", within=config),
    resources:
        api_calls=1,
    log:
        "logs/annotate/{teacher}/{prompt}/iter{iteration}.log",
    benchmark:
        "benchmarks/annotate/{teacher}/{prompt}/iter{iteration}.tsv"
    script:
        "../scripts/annotate.py"


rule vote:
    input:
        iterations=iteration_files,
        splits=expand("results/data/{split}.parquet", split=["train", "validation", "test"]),
    output:
        votes="results/votes/{teacher}/{prompt}.parquet",
        train_csv="results/votes/{teacher}/{prompt}.train.csv",
        stats="results/votes/{teacher}/{prompt}.stats.json",
    params:
        labels=lookup(dpath="labels", within=config),
        tie_policy=lookup(dpath="vote/tie_policy", within=config),
    log:
        "logs/vote/{teacher}/{prompt}.log",
    script:
        "../scripts/vote.py"
