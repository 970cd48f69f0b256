# Task multi_label (src/synthdistill/tasks.py, docs/multi_label.md): the stages after the shared
# data, prompt, annotate and vote rules. The vote (rules/annotate.smk) keeps a label when at least
# vote.min_share of the iterations that answered chose it; import_review applies review.corrections;
# students learn the reviewed sets (sigmoid head, per-label thresholds tuned on validation) and are
# scored with the teachers on the frozen expert test split.


rule export_review:
    input:
        votes=rules.vote.output.votes,
    output:
        csv="results/review/{teacher}/{prompt}.review.csv",
        xlsx="results/review/{teacher}/{prompt}.review.xlsx",
        argilla="results/review/{teacher}/{prompt}.argilla.json",
        label_studio="results/review/{teacher}/{prompt}.label_studio.json",
        label_studio_config="results/review/{teacher}/{prompt}.label_studio.xml",
    log:
        "logs/export_review/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/export_review/{teacher}/{prompt}.tsv"
    conda:
        "../envs/review.yaml"
    threads: 2
    params:
        labels=lookup(dpath="labels", within=config),
        # Everything but the corrections path: a new corrections file must not rescore.
        settings=lambda wildcards: REVIEW_SCORING,
    script:
        "../scripts/multi_label_export_review.py"


def multi_label_corrections(wildcards):
    # An input only when configured: a new or edited corrections file reruns import_review and the
    # students, never annotate or vote.
    return [REVIEW["corrections"]] if REVIEW["corrections"] else []


rule import_review:
    input:
        votes=rules.vote.output.votes,
        corrections=multi_label_corrections,
    output:
        labels="results/review/{teacher}/{prompt}.labels.parquet",
        audit="results/review/{teacher}/{prompt}.audit.csv",
    log:
        "logs/import_review/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/import_review/{teacher}/{prompt}.tsv"
    conda:
        "../envs/review.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
        delimiter=lookup(dpath="dataset/label_delimiter", within=config),
        corrections=lookup(dpath="review/corrections", within=config, default=None),
    script:
        "../scripts/multi_label_import_review.py"


def multi_label_student_labels(wildcards):
    """A student's labels: a teacher's reviewed sets (the votes with the corrections applied; the
    votes themselves without a corrections file), or the expert train and validation splits.
    """
    if wildcards.teacher == EXPERT:
        return data_splits("train", "validation")
    return rules.import_review.output.labels


rule train_student:
    input:
        multi_label_student_labels,
    output:
        model=directory("results/students/{student}/{teacher}/{prompt}/model"),
        metadata="results/students/{student}/{teacher}/{prompt}/metadata.json",
    log:
        "logs/train_student/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/train_student/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        student=lookup(dpath="students/{wildcards.student}", within=config),
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/multi_label_train_student.py"


# The same export as single-label students (scripts/export_onnx.py): the int8 model's config.json
# carries the thresholds, and the check compares whole label sets and micro F1 with torch.
rule export_onnx:
    input:
        model=rules.train_student.output.model,
        test=rules.prepare_data.output.test,
    output:
        onnx=directory("results/students/{student}/{teacher}/{prompt}/onnx"),
        check="results/students/{student}/{teacher}/{prompt}/onnx_check.json",
    log:
        "logs/export_onnx/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/export_onnx/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
        ),
    script:
        "../scripts/export_onnx.py"


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
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/multi_label_evaluate_teacher.py"


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
        labels=lookup(dpath="labels", within=config),
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
        ),
    script:
        "../scripts/multi_label_evaluate_student.py"


def multi_label_paired_models():
    """name -> test predictions file (teachers' votes, students' predictions), and which teacher
    each student learned from."""
    models = {
        f"{t}/{p}": fill(rules.vote.output.votes, teacher=t, prompt=p)
        for t, p in labellers()
    }
    students = {}
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
    return {"models": models, "students": students}


MULTI_LABEL_PAIRED = multi_label_paired_models()


rule compare_models:
    input:
        models=list(MULTI_LABEL_PAIRED["models"].values()),
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
        models=MULTI_LABEL_PAIRED["models"],
        students=MULTI_LABEL_PAIRED["students"],
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/multi_label_compare_models.py"


def multi_label_report_entries():
    """The files the report reads for each teacher × prompt and each student."""
    teachers = [
        {
            "teacher": t,
            "prompt": p,
            "stats": fill(rules.vote.output.stats, teacher=t, prompt=p),
            "metrics": (
                fill(rules.evaluate_teacher.output[0], teacher=t, prompt=p)
                if EVALUATED
                else None
            ),
        }
        for t, p in labellers()
    ]
    students = [
        {
            "student": s,
            "teacher": t,
            "prompt": p,
            "metadata": fill(
                rules.train_student.output.metadata, student=s, teacher=t, prompt=p
            ),
            "onnx_check": (
                fill(rules.export_onnx.output.check, student=s, teacher=t, prompt=p)
                if config["inference"]["onnx"]
                else None
            ),
            "metrics": (
                fill(
                    rules.evaluate_student.output.metrics,
                    student=s,
                    teacher=t,
                    prompt=p,
                )
                if EVALUATED
                else None
            ),
        }
        for s in STUDENTS
        for t, p in label_sources()
    ]
    return {"teachers": teachers, "students": students}


MULTI_LABEL_REPORT = multi_label_report_entries()


rule report:
    input:
        parts=[
            path
            for group in MULTI_LABEL_REPORT.values()
            for entry in group
            for key, path in entry.items()
            if key in ("stats", "metrics", "metadata", "onnx_check") and path
        ],
        paired=rules.compare_models.output if EVALUATED else [],
    output:
        markdown="results/report/report.md",
        html=report(
            "results/report/report.html",
            caption="../report/decision.rst",
            category="Decision report",
            labels={"file": "multi-label report (self-contained)"},
        ),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    params:
        entries=MULTI_LABEL_REPORT,
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/multi_label_report.py"


# Every student's model card and the opt-in Hub push (the same rules as single_label).
include: "release.smk"


rule all:
    default_target: True
    input:
        rules.report.output.html,
        student_release_files(),
        [
            fill(rules.export_review.output.csv, teacher=t, prompt=p)
            for t, p in labellers()
        ],


# `snakemake predict_all`: label your own files with a student (predict.files); a multi_label
# student writes each text's set (label: its JSON, labels: a list) and one sigmoid score per label.
include: "predict.smk"
