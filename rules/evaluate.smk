rule evaluate_teacher:
    input:
        rules.vote.output.votes,
    output:
        "results/evaluation/teachers/{teacher}/{prompt}.json",
    log:
        "logs/evaluate_teacher/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/evaluate_teacher/{teacher}/{prompt}.tsv"
    conda:
        "../envs/report.yaml"
    params:
        task=TASK,
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/evaluate_teacher.py"


rule evaluate_student:
    input:
        model=rules.train_student.output.model,
        test=rules.prepare_data.output.test,
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
        task=TASK,
        labels=lookup(dpath="labels", within=config),
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
        ),
    script:
        "../scripts/evaluate_student.py"


def paired_test_models():
    """name -> test predictions file, and which teacher each student learned from."""
    models, students = {}, {}
    for t, p in labellers():
        models[f"{t}/{p}"] = fill(rules.vote.output.votes, teacher=t, prompt=p)
    if LEARN_FROM_BEST:
        # The chosen labeller's labels (its test labels are its votes: test items are never reviewed).
        # A plain path: params are pickled into the script, and a rule's output object carries its
        # rule, whose resources set by the profile cannot be pickled.
        models[f"{BEST}/{BEST_PROMPT}"] = fill(rules.select_labeller.output.labels)
    for s in STUDENTS:
        for t, p in label_sources():
            name = f"{s}/{t}/{p}"
            models[name] = fill(
                rules.evaluate_student.output.predictions,
                student=s,
                teacher=t,
                prompt=p,
            )
            students[name] = f"{t}/{p}"
    teachers = [f"{t}/{p}" for t, p in labellers()]
    return {"models": models, "teachers": teachers, "students": students}


PAIRED = paired_test_models()


rule compare_models:
    input:
        models=lambda wildcards: list(PAIRED["models"].values()),
        test=rules.prepare_data.output.test,
    output:
        "results/evaluation/paired_tests.csv",
    log:
        "logs/compare_models.log",
    benchmark:
        "benchmarks/compare_models.tsv"
    conda:
        "../envs/report.yaml"
    params:
        task=TASK,
        models=lambda wildcards: PAIRED["models"],
        teachers=lambda wildcards: PAIRED["teachers"],
        students=lambda wildcards: PAIRED["students"],
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/compare_models.py"


rule learning_curve:
    input:
        labels=student_labels,
        test=rules.prepare_data.output.test,
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
            fill(rules.learning_curve.output.csv, student=s, teacher=t, prompt=p)
            for s in STUDENTS
            for t in TEACHERS
            for p in PROMPTS
        ]
        if EVALUATED
        else [],
