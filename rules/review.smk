# Review loop: uncertain labels out to people (export_review), corrections back in (import_review).
# Students train from import_review's labels, so a new corrections file reruns import_review and
# what is downstream of it, never annotate or vote.


def annotator_files(wildcards):
    """CROWDLAB annotators: every iteration of every teacher × prompt in the run (for the task kinds
    whose review scores them)."""
    if not TASK_KIND.supports("crowdlab"):
        return []
    if (
        ACTIVE
    ):  # each teacher × prompt labels its own texts: only its own iterations cover them
        return iteration_files(wildcards)
    return [
        path for t in TEACHERS for p in PROMPTS for path in member_iteration_files(t, p)
    ]


def annotator_names(wildcards):
    if not TASK_KIND.supports("crowdlab"):
        return []
    if ACTIVE:
        return iteration_names(wildcards)
    return [
        name for t in TEACHERS for p in PROMPTS for name in member_iteration_names(t, p)
    ]


def own_iteration_files(wildcards):
    return iteration_files(wildcards) if TASK_KIND.supports("crowdlab") else []


def own_iteration_names(wildcards):
    return iteration_names(wildcards) if TASK_KIND.supports("crowdlab") else []


# Every review file a task kind may write; each kind writes the ones it names (tasks/<kind>.py).
REVIEW_FILES = {
    "csv": "results/review/{teacher}/{prompt}.review.csv",
    "xlsx": "results/review/{teacher}/{prompt}.review.xlsx",
    "argilla": "results/review/{teacher}/{prompt}.argilla.json",
    "label_studio": "results/review/{teacher}/{prompt}.label_studio.json",
    "label_studio_config": "results/review/{teacher}/{prompt}.label_studio.xml",
}


def review_files():
    """The review file of every label set (rule all)."""
    return [
        fill(rules.export_review.output[0], teacher=t, prompt=p) for t, p in labellers()
    ]


rule export_review:
    input:
        votes=rules.vote.output.votes,
        iterations=own_iteration_files,
        annotators=annotator_files,
    output:
        **{name: REVIEW_FILES[name] for name in TASK_KIND.review_files},
    log:
        "logs/export_review/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/export_review/{teacher}/{prompt}.tsv"
    conda:
        "../envs/review.yaml"
    threads: 2
    params:
        task=TASK,
        labels=lookup(dpath="labels", within=config),
        iteration_names=own_iteration_names,
        annotator_names=annotator_names,
        # Everything but the corrections path: a new corrections file must not rescore.
        settings=lambda wildcards: REVIEW_SCORING,
    script:
        "../scripts/export_review.py"


def corrections_input(wildcards):
    # An input only when configured: editing or adding the file reruns import_review and downstream.
    return [REVIEW["corrections"]] if REVIEW["corrections"] else []


rule import_review:
    input:
        votes=rules.vote.output.votes,
        corrections=corrections_input,
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
        task=TASK,
        labels=lookup(dpath="labels", within=config),
        settings={"label_delimiter": config["dataset"]["label_delimiter"]},
    script:
        "../scripts/import_review.py"
