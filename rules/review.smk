# Review loop: uncertain labels out to people (export_review), corrections back in (import_review).
# Students train from results/review/{teacher}/{prompt}.labels.parquet, so a new corrections file
# reruns import_review and what is downstream of it, never annotate or vote.


rule export_review:
    input:
        votes="results/votes/{teacher}/{prompt}.parquet",
        iterations=iteration_files,
        annotators=annotator_files,
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
        "../scripts/export_review.py"


rule import_review:
    input:
        votes="results/votes/{teacher}/{prompt}.parquet",
        corrections=corrections_input,
    output:
        labels="results/review/{teacher}/{prompt}.labels.parquet",
        audit="results/review/{teacher}/{prompt}.audit.csv",
    log:
        "logs/import_review/{teacher}/{prompt}.log",
    conda:
        "../envs/review.yaml"
    params:
        labels=lookup(dpath="labels", within=config),
        corrections=lookup(dpath="review/corrections", within=config, default=None),
    script:
        "../scripts/import_review.py"
