# Served feedback (cascade.feedback) joins a teacher × prompt's train pool; the students of that
# teacher × prompt retrain (rules/common.smk student_labels), nothing upstream reruns.
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
