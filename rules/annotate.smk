from synthdistill.settings import teacher_settings


def prompt_template(wildcards):
    return labeller_prompt(wildcards.teacher, wildcards.prompt)["template"]


def teacher_params(wildcards):
    return teacher_settings(config, wildcards.teacher)


def prompt_params(wildcards):
    return labeller_prompt(wildcards.teacher, wildcards.prompt)


def example_pool(wildcards):
    """The few-shot example pool of a prompt: its examples file, or the shots split."""
    examples = labeller_prompt(wildcards.teacher, wildcards.prompt).get("examples")
    if not examples:
        return []
    if examples.get("path"):
        return [examples["path"]]
    return [rules.prepare_data.output.shots]


rule build_prompts:
    input:
        template=prompt_template,
        splits=data_splits(*ANNOTATED_SPLITS),
        examples=example_pool,
        choice=pilot_choice,
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


def scatter_position(wildcards):
    """(shard, shards) of a scatter item: "2-of-3" is shard 1 (0-based) of 3."""
    shard, shards = wildcards.scatteritem.split("-of-")
    return [int(shard) - 1, int(shards)]


# One job per scatter item of one self-consistency iteration: the job annotates its contiguous
# slice of the prompts file. Requests (so cache keys) do not depend on the number of items.
rule annotate:
    input:
        annotated_prompts,
        choice=pilot_choice,
    output:
        "results/annotations/{teacher}/{prompt}/iter{iteration}/{scatteritem}.parquet",
    log:
        "logs/annotate/{teacher}/{prompt}/iter{iteration}/{scatteritem}.log",
    benchmark:
        "benchmarks/annotate/{teacher}/{prompt}/iter{iteration}/{scatteritem}.tsv"
    conda:
        "../envs/teacher.yaml"
    resources:
        api_calls=1,
        mem_mb=2000,
        runtime=240,
    params:
        shard=scatter_position,
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
        batch_missing=lookup(dpath="annotate/batch_missing", within=config),
    script:
        "../scripts/annotate.py"


# Cheap: runs in the main Snakemake process rather than as a cluster job.
localrules:
    gather_annotations,


rule gather_annotations:
    input:
        prompts=annotated_prompts,
        shards=gather.annotate(rules.annotate.output[0], allow_missing=True),
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
        splits=annotated_splits,
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
        vote=lookup(dpath="vote", within=config),
        task=TASK,
    script:
        "../scripts/vote.py"
