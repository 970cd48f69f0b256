# Task spans (docs/spans.md): the stages after the vote. A token-classification student learns the
# voted spans (or the expert spans: the baseline); teachers and students are scored on the same
# frozen expert test split; a short report compares them.


def span_student_labels(wildcards):
    """The teacher's reviewed spans, or the expert train and validation splits for the baseline."""
    if wildcards.teacher == EXPERT:
        return data_splits("train", "validation")
    return rules.import_review.output.labels


rule train_student:
    input:
        span_student_labels,
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
        "../scripts/spans_train_student.py"


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
        "../scripts/spans_evaluate_teacher.py"


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
        "../scripts/spans_evaluate_student.py"


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
        labels=lookup(dpath="labels", within=config),
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
        ),
    script:
        "../scripts/spans_export_onnx.py"


# Review, least agreed first: Label Studio tasks with the voted spans as `Labels` predictions, and
# an Argilla dataset with them as the suggestion of a span question.
rule export_review:
    input:
        votes=rules.vote.output.votes,
    output:
        label_studio="results/review/{teacher}/{prompt}.label_studio.json",
        label_studio_config="results/review/{teacher}/{prompt}.label_studio.xml",
        argilla="results/review/{teacher}/{prompt}.argilla.json",
    log:
        "logs/export_review/{teacher}/{prompt}.log",
    conda:
        "../envs/review.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/spans_export_review.py"


def span_corrections(wildcards):
    # An input only when configured: a new or edited corrections file reruns import_review and the
    # students, never annotate or vote.
    return [REVIEW["corrections"]] if REVIEW["corrections"] else []


# Corrections back in (a Label Studio export of the review tasks, an Argilla records export, or
# CSV/XLSX id,label with span JSON): the reviewed spans students learn, and the audit trail of every applied row.
rule import_review:
    input:
        votes=rules.vote.output.votes,
        corrections=span_corrections,
    output:
        labels="results/review/{teacher}/{prompt}.labels.parquet",
        audit="results/review/{teacher}/{prompt}.audit.csv",
    log:
        "logs/import_review/{teacher}/{prompt}.log",
    conda:
        "../envs/review.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/spans_import_review.py"


def span_predict_student():
    """student, teacher, prompt of the student `predict` uses: predict.student, else the first
    student on the first label source (as for single_label, rules/predict.smk)."""
    chosen = config["predict"]["student"]
    if chosen is None:
        return {
            "student": STUDENTS[0],
            **dict(zip(("teacher", "prompt"), label_sources()[0])),
        }
    return dict(zip(("student", "teacher", "prompt"), chosen.split("/")))


def span_predict_files(wildcards):
    files = [fill(rules.train_student.output.model, **span_predict_student())]
    if config["inference"]["onnx"]:
        files.append(fill(rules.export_onnx.output.onnx, **span_predict_student()))
    return files


# scripts/predict.py is the single-label one: predict_file writes span JSON for a spans student.
rule predict:
    input:
        texts=lambda wildcards: config["predict"]["files"][wildcards.name],
        student=span_predict_files,
    output:
        "results/predictions/{name}.parquet",
    log:
        "logs/predict/{name}.log",
    benchmark:
        "benchmarks/predict/{name}.tsv"
    conda:
        "../envs/student.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        student_dir=lambda wildcards: str(Path(span_predict_files(wildcards)[0]).parent),
        predict=lookup(dpath="predict", within=config),
        max_length=lambda wildcards: config["students"][
            span_predict_student()["student"]
        ]["max_length"],
    script:
        "../scripts/predict.py"


rule predict_all:
    input:
        expand(rules.predict.output[0], name=list(config["predict"]["files"])),


def span_report_files():
    """Per teacher × prompt its vote stats (and test scores); per student its metadata (and scores)."""
    files = {}
    for t, p in labellers():
        files[f"stats/{t}/{p}"] = fill(rules.vote.output.stats, teacher=t, prompt=p)
        if EVALUATED:
            files[f"teacher/{t}/{p}"] = fill(
                rules.evaluate_teacher.output[0], teacher=t, prompt=p
            )
    for s in STUDENTS:
        for t, p in label_sources():
            files[f"metadata/{s}/{t}/{p}"] = fill(
                rules.train_student.output.metadata, student=s, teacher=t, prompt=p
            )
            if EVALUATED:
                files[f"student/{s}/{t}/{p}"] = fill(
                    rules.evaluate_student.output.metrics,
                    student=s,
                    teacher=t,
                    prompt=p,
                )
            if config["inference"]["onnx"]:
                files[f"onnx/{s}/{t}/{p}"] = fill(
                    rules.export_onnx.output.check, student=s, teacher=t, prompt=p
                )
    return files


rule report:
    input:
        **span_report_files(),
    output:
        report(
            "results/report/report.md",
            category="Report",
            labels={"task": "spans"},
        ),
    log:
        "logs/report.log",
    conda:
        "../envs/report.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/spans_report.py"


# Every student's model card and the opt-in Hub push (the same rules as single_label).
include: "release.smk"


rule all:
    default_target: True
    input:
        rules.report.output[0],
        student_release_files(),
        [
            fill(rules.export_review.output.label_studio, teacher=t, prompt=p)
            for t, p in labellers()
        ],
