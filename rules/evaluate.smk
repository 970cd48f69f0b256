rule evaluate_teacher:
    input:
        "results/votes/{teacher}/{prompt}.parquet",
    output:
        "results/evaluation/teachers/{teacher}/{prompt}.json",
    log:
        "logs/evaluate_teacher/{teacher}/{prompt}.log",
    conda:
        "../envs/report.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/evaluate_teacher.py"


rule evaluate_student:
    input:
        model="results/students/{student}/{teacher}/{prompt}/model",
        test="results/data/test.parquet",
    output:
        metrics="results/evaluation/students/{student}/{teacher}/{prompt}.json",
        predictions="results/evaluation/students/{student}/{teacher}/{prompt}.predictions.parquet",
    log:
        "logs/evaluate_student/{student}/{teacher}/{prompt}.log",
    conda:
        "../envs/student.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config, default=256
        ),
    script:
        "../scripts/evaluate_student.py"


rule compare_models:
    input:
        models=lambda wildcards: list(PAIRED["models"].values()),
        test="results/data/test.parquet",
    output:
        "results/evaluation/paired_tests.csv",
    log:
        "logs/compare_models.log",
    conda:
        "../envs/report.yaml"
    params:
        models=lambda wildcards: PAIRED["models"],
        teachers=lambda wildcards: PAIRED["teachers"],
        students=lambda wildcards: PAIRED["students"],
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/compare_models.py"
