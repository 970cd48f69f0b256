rule build_prompts:
    input:
        template=prompt_template,
        splits=expand(
            "results/data/{split}.parquet", split=["train", "validation", "test"]
        ),
    output:
        "results/prompts/{teacher}/{prompt}.parquet",
    log:
        "logs/build_prompts/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/build_prompts/{teacher}/{prompt}.tsv"
    conda:
        "../envs/teacher.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        teacher=teacher_params,
        prompt=prompt_params,
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/build_prompts.py"


rule annotate:
    input:
        "results/prompts/{teacher}/{prompt}.parquet",
    output:
        "results/annotations/{teacher}/{prompt}/iter{iteration}/shard{shard}-of-{shards}.parquet",
    log:
        "logs/annotate/{teacher}/{prompt}/iter{iteration}/shard{shard}-of-{shards}.log",
    benchmark:
        "benchmarks/annotate/{teacher}/{prompt}/iter{iteration}/shard{shard}-of-{shards}.tsv"
    conda:
        "../envs/teacher.yaml"
    resources:
        api_calls=1,
        mem_mb=2000,
        runtime=240,
    params:
        teacher=teacher_params,
        prompt=prompt_params,
        labels=lookup(dpath="labels", within=config),
        cache=lookup(dpath="cache/path", within=config),
        max_failure_share=lookup(dpath="annotate/max_failure_share", within=config),
        # Defaults come from the schema.
        retry_unparsed=lookup(dpath="annotate/retry_unparsed", within=config),
        max_consecutive_failures=lookup(
            dpath="annotate/max_consecutive_failures", within=config
        ),
    script:
        "../scripts/annotate.py"


# Cheap: runs in the main Snakemake process rather than as a cluster job.
localrules:
    gather_annotations,


rule gather_annotations:
    input:
        prompts="results/prompts/{teacher}/{prompt}.parquet",
        shards=shard_files,
    output:
        "results/annotations/{teacher}/{prompt}/iter{iteration}.parquet",
    log:
        "logs/gather_annotations/{teacher}/{prompt}/iter{iteration}.log",
    benchmark:
        "benchmarks/gather_annotations/{teacher}/{prompt}/iter{iteration}.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/gather_annotations.py"


rule vote:
    input:
        iterations=iteration_files,
        splits=expand(
            "results/data/{split}.parquet", split=["train", "validation", "test"]
        ),
    output:
        votes="results/votes/{teacher}/{prompt}.parquet",
        train_csv="results/votes/{teacher}/{prompt}.train.csv",
        stats="results/votes/{teacher}/{prompt}.stats.json",
    log:
        "logs/vote/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/vote/{teacher}/{prompt}.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        labels=lookup(dpath="labels", within=config),
        tie_policy=lookup(dpath="vote/tie_policy", within=config),
    script:
        "../scripts/vote.py"
