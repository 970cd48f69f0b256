# Labeller selection: every teacher × prompt and ensemble ranked on the expert-labelled gold dev
# split (split.gold_dev_size), never on the test split. students_learn_from: best trains students on
# the chosen labeller's reviewed labels, copied to a fixed path so the DAG does not depend on the
# choice (no checkpoint): a new choice reruns the students, nothing upstream.


def labeller_files(wildcards):
    """name -> file, for the votes (ranked) and the reviewed labels (copied when chosen)."""
    return {
        "votes": [
            fill(rules.vote.output.votes, teacher=t, prompt=p) for t, p in labellers()
        ],
        "labels": [
            fill(rules.import_review.output.labels, teacher=t, prompt=p)
            for t, p in labellers()
        ],
    }


rule select_labeller:
    input:
        unpack(labeller_files),
        gold_dev=rules.prepare_data.output.get("gold_dev", []),
    output:
        ranking="results/labels/ranking.csv",
        choice="results/labels/best.json",
        labels="results/labels/best.parquet",
    log:
        "logs/select_labeller.log",
    benchmark:
        "benchmarks/select_labeller.tsv"
    conda:
        "../envs/report.yaml"
    params:
        names=[f"{t}/{p}" for t, p in labellers()],
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/select_labeller.py"


def selection_files():
    """The ranking when there is a gold dev split (rule all)."""
    return [rules.select_labeller.output.ranking] if GOLD_DEV else []
