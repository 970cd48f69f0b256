# Review loop: uncertain labels out to people (export_review), corrections back in (import_review).
# Students train from results/review/{teacher}/{prompt}.labels.parquet, so a new corrections file
# reruns import_review and what is downstream of it, never annotate or vote.

REVIEW_SCORING = {k: v for k, v in REVIEW.items() if k != "corrections"}


def member_iteration_files(teacher, prompt):
    """The iteration files behind a label set: its own, or every member's for an ensemble."""
    if teacher in ENSEMBLES:
        members = ENSEMBLES[teacher]["members"]
    else:
        members = [(teacher, prompt)]
    return [
        f"results/annotations/{t}/{p}/iter{i}.parquet"
        for t, p in members
        for i in ITERATIONS
    ]


def own_iteration_files(wildcards):
    return member_iteration_files(wildcards.teacher, wildcards.prompt)


def annotator_files(wildcards):
    """CROWDLAB annotators: every iteration of every teacher × prompt in the run."""
    return [
        f"results/annotations/{t}/{p}/iter{i}.parquet"
        for t in TEACHERS
        for p in PROMPTS
        for i in ITERATIONS
    ]


def corrections_input(wildcards):
    # An input only when configured: editing or adding the file reruns import_review and downstream.
    return [REVIEW["corrections"]] if REVIEW["corrections"] else []


def review_files():
    return [
        f"results/review/{t}/{p}.review.csv" for t, p in labellers()
    ]


rule export_review:
    input:
        votes="results/votes/{teacher}/{prompt}.parquet",
        iterations=own_iteration_files,
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
