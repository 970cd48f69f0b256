def cascades():
    """(student, teacher, prompt) of every cascade: each student of a teacher's labels (not the
    expert baseline, which has no teacher to defer to)."""
    return [(s, t, p) for s in STUDENTS for t, p in label_sources() if t != EXPERT]


def teacher_answers(wildcards):
    """The teacher's answers on every split: its votes, or for a best/on_gold_dev student the chosen
    labeller's labels (their voted_label column)."""
    if wildcards.teacher == BEST:
        return rules.select_labeller.output.labels
    return rules.vote.output.votes


rule cascade:
    input:
        model=rules.train_student.output.model,
        votes=teacher_answers,
        validation=rules.prepare_data.output.validation,
        test=rules.prepare_data.output.test,
    output:
        summary="results/cascade/{student}/{teacher}/{prompt}.json",
        curve="results/cascade/{student}/{teacher}/{prompt}.curve.csv",
        per_item="results/cascade/{student}/{teacher}/{prompt}.items.parquet",
    log:
        "logs/cascade/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/cascade/{student}/{teacher}/{prompt}.tsv"
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
        confidence=lookup(dpath="cascade/confidence", within=config),
        target=lookup(dpath="cascade/target", within=config),
    script:
        "../scripts/cascade.py"
