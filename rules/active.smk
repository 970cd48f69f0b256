# Active distillation (annotate.strategy: active, docs/active.md): the teacher labels the train pool in
# rounds, each chosen by the student trained on the rounds before (students/active_rounds.py). The
# number of rounds is fixed (active.max_rounds), so the DAG is known before the run and a killed run
# resumes; rounds after the stopping rule or the budget choose nothing and pass on what they got.
# active_pool then hands annotate, gather_annotations and vote the chosen train texts and every other
# split: their calls are all in the cache already, and everything after the vote runs as usual.


def active_rounds_before(wildcards, pattern, last):
    """``pattern`` filled for rounds 0 .. last - 1 of this teacher × prompt."""
    return [
        fill(pattern, teacher=wildcards.teacher, prompt=wildcards.prompt, round=r)
        for r in range(last)
    ]


def active_select_inputs(wildcards):
    """Round r's choice reads the rounds before: their selections and figures, and the last scores."""
    r = int(wildcards.round)
    files = {
        "selections": active_rounds_before(
            wildcards, rules.active_select.output.selection, r
        ),
        "figures": active_rounds_before(
            wildcards, rules.active_train.output.figures, r
        ),
    }
    if r > 0:
        files["scores"] = active_rounds_before(
            wildcards, rules.active_train.output.scores, r
        )[-1]
    return files


rule active_select:
    input:
        unpack(active_select_inputs),
        train=rules.prepare_data.output.train,
    output:
        selection="results/active/{teacher}/{prompt}/round{round}/selection.parquet",
        status="results/active/{teacher}/{prompt}/round{round}/selection.json",
    log:
        "logs/active_select/{teacher}/{prompt}/round{round}.log",
    benchmark:
        "benchmarks/active_select/{teacher}/{prompt}/round{round}.tsv"
    conda:
        "../envs/student.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # Not max_rounds or student (active_train's): raising max_rounds adds rounds, the others stand.
        active={
            k: v
            for k, v in config["active"].items()
            if k not in ("max_rounds", "student")
        },
        costing=lambda wildcards: TEACHER_COSTING[wildcards.teacher],
    script:
        "../scripts/active_select.py"


# The round's texts through the engine and the response cache, every self-consistency iteration
# (one provider batch per iteration on a batch backend); round 0 also labels the validation split.
rule active_annotate:
    input:
        prompts=rules.build_prompts.output[0],
        selection=rules.active_select.output.selection,
    output:
        "results/active/{teacher}/{prompt}/round{round}/annotations.parquet",
    log:
        "logs/active_annotate/{teacher}/{prompt}/round{round}.log",
    benchmark:
        "benchmarks/active_annotate/{teacher}/{prompt}/round{round}.tsv"
    conda:
        "../envs/teacher.yaml"
    resources:
        api_calls=1,
        mem_mb=2000,
        runtime=240,
    params:
        teacher=teacher_params,
        prompt=prompt_params,
        iterations=lambda wildcards: labeller_iterations(
            wildcards.teacher, wildcards.prompt
        ),
        labels=lookup(dpath="labels", within=config),
        cache=lookup(dpath="cache/path", within=config),
        engine=lambda wildcards: annotate_settings(config["annotate"]),
    script:
        "../scripts/active_annotate.py"


def active_train_inputs(wildcards):
    """Round r's student learns from rounds 0 .. r; a round that chose nothing passes on round r - 1's."""
    r = int(wildcards.round)
    files = {
        "annotations": active_rounds_before(
            wildcards, rules.active_annotate.output[0], r + 1
        ),
        "selections": active_rounds_before(
            wildcards, rules.active_select.output.selection, r + 1
        ),
    }
    if r > 0:
        files["previous_figures"] = active_rounds_before(
            wildcards, rules.active_train.output.figures, r
        )[-1]
        files["previous_scores"] = active_rounds_before(
            wildcards, rules.active_train.output.scores, r
        )[-1]
    return files


rule active_train:
    input:
        unpack(active_train_inputs),
        splits=data_splits("train", "validation", "test"),
    output:
        model=directory("results/active/{teacher}/{prompt}/round{round}/student"),
        metadata="results/active/{teacher}/{prompt}/round{round}/student.json",
        labels=directory("results/active/{teacher}/{prompt}/round{round}/labels"),
        scores="results/active/{teacher}/{prompt}/round{round}/scores.parquet",
        figures="results/active/{teacher}/{prompt}/round{round}/round.json",
    log:
        "logs/active_train/{teacher}/{prompt}/round{round}.log",
    benchmark:
        "benchmarks/active_train/{teacher}/{prompt}/round{round}.tsv"
    conda:
        "../envs/student.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        task=TASK,
        student_name=ACTIVE_STUDENT,
        student=lookup(dpath=f"students/{ACTIVE_STUDENT}", within=config),
        labels=lookup(dpath="labels", within=config),
        vote=lookup(dpath="vote", within=config),
        measure=lookup(dpath="active/measure", within=config),
    script:
        "../scripts/active_train.py"


def active_all_rounds(wildcards):
    return {
        "selections": active_rounds_before(
            wildcards, rules.active_select.output.selection, ACTIVE_ROUNDS
        ),
        "figures": active_rounds_before(
            wildcards, rules.active_train.output.figures, ACTIVE_ROUNDS
        ),
    }


rule active_pool:
    input:
        unpack(active_all_rounds),
        prompts=rules.build_prompts.output[0],
        train=rules.prepare_data.output.train,
    output:
        prompts="results/active/{teacher}/{prompt}/prompts.parquet",
        train="results/active/{teacher}/{prompt}/train.parquet",
        selection="results/active/{teacher}/{prompt}/selection.parquet",
        rounds="results/active/{teacher}/{prompt}/rounds.csv",
    log:
        "logs/active_pool/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/active_pool/{teacher}/{prompt}.tsv"
    conda:
        "../envs/report.yaml"
    params:
        iterations=lambda wildcards: labeller_iterations(
            wildcards.teacher, wildcards.prompt
        ),
    script:
        "../scripts/active_pool.py"
