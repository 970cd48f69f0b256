rule evaluate_teacher:
    input:
        "results/votes/{teacher}/{prompt}.parquet",
    output:
        "results/evaluation/teachers/{teacher}/{prompt}.json",
    log:
        "logs/evaluate_teacher/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/evaluate_teacher/{teacher}/{prompt}.tsv"
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
    benchmark:
        "benchmarks/evaluate_student/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        labels=lookup(dpath="labels", within=config),
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
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
    benchmark:
        "benchmarks/compare_models.tsv"
    conda:
        "../envs/report.yaml"
    params:
        models=lambda wildcards: PAIRED["models"],
        teachers=lambda wildcards: PAIRED["teachers"],
        students=lambda wildcards: PAIRED["students"],
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/compare_models.py"


rule learning_curve:
    input:
        labels=student_labels,
        test="results/data/test.parquet",
    output:
        csv="results/learning_curve/{student}/{teacher}/{prompt}.csv",
        png="results/learning_curve/{student}/{teacher}/{prompt}.png",
    log:
        "logs/learning_curve/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/learning_curve/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=480,
    params:
        student=lookup(dpath="students/{wildcards.student}", within=config),
        labels=lookup(dpath="labels", within=config),
        sizes=lookup(dpath="learning_curve/sizes", within=config),
    script:
        "../scripts/learning_curve.py"


rule learning_curves:
    input:
        [
            f"results/learning_curve/{s}/{t}/{p}.csv"
            for s in STUDENTS
            for t in TEACHERS
            for p in PROMPTS
        ]
        if EVALUATED
        else [],
