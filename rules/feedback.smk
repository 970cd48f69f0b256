# Served feedback (cascade.feedback) joins a teacher × prompt's train pool; the students of that
# teacher × prompt retrain (rules/common.smk student_labels), nothing upstream reruns. Included after
# cascade.smk: feedback_deferral reads the retrained student's cascade operating point.
rule add_feedback:
    input:
        labels=rules.import_review.output.labels,
        feedback=FEEDBACK_FILES,
        test=rules.prepare_data.output.test,
    output:
        labels="results/feedback/{teacher}/{prompt}.labels.parquet",
        summary="results/feedback/{teacher}/{prompt}.summary.json",
    log:
        "logs/add_feedback/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/add_feedback/{teacher}/{prompt}.tsv"
    conda:
        "../envs/review.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/add_feedback.py"


# Deferred share before and after: the retrained student on the texts it used to defer, at its own
# cascade operating point (results/feedback/<student>/<teacher>/<prompt>.deferral.json).
rule feedback_deferral:
    input:
        model=rules.train_student.output.model,
        labels=rules.add_feedback.output.labels,
        cascade=rules.cascade.output.summary,
    output:
        "results/feedback/{student}/{teacher}/{prompt}.deferral.json",
    log:
        "logs/feedback_deferral/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/feedback_deferral/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    params:
        student_dir=lambda wildcards, input: str(Path(input.model).parent),
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
        ),
    script:
        "../scripts/feedback_deferral.py"
