# The pilot (pilot.enabled, docs/pilot.md): before the pool is paid for, each teacher scores prompt
# candidates built from the run's prompts on the gold dev split, with successive halving, and only
# the winner labels the pool, as prompt "pilot". A checkpoint: which prompt settings, templates and
# self-consistency iterations the pool's jobs use is known only once the pilot has chosen, so
# `snakemake -n` shows the pilot jobs and the rest appears when they are done.


def pilot_templates(wildcards):
    """Every candidate's template: an edited template reruns the pilot."""
    return sorted(
        {c["template"] for c in pilot_candidates(config, wildcards.teacher).values()}
    )


checkpoint pilot:
    input:
        gold_dev=rules.prepare_data.output.get("gold_dev", []),
        shots=rules.prepare_data.output.get("shots", []),
        templates=pilot_templates,
    output:
        table="results/pilot/{teacher}/candidates.csv",
        choice="results/pilot/{teacher}/choice.json",
        # The winner's template (a rewrite exists only inside the job): what build_prompts reads.
        template="results/pilot/{teacher}/template.txt",
        rewrites="results/pilot/{teacher}/rewrites.csv",
    log:
        "logs/pilot/{teacher}.log",
    benchmark:
        "benchmarks/pilot/{teacher}.tsv"
    conda:
        "../envs/teacher.yaml"
    resources:
        api_calls=1,
        mem_mb=4000,
        runtime=480,
    params:
        teacher=teacher_params,
        candidates=lambda wildcards: pilot_candidates(config, wildcards.teacher),
        pilot=lookup(dpath="pilot", within=config),
        labels=lookup(dpath="labels", within=config),
        iterations=lookup(dpath="self_consistency/iterations", within=config),
        cache=lookup(dpath="cache/path", within=config),
        # A candidate whose answers do not parse scores as abstaining; it does not stop the pilot.
        engine=annotate_settings(config["annotate"], max_failure_share=1.0),
        costing=lambda wildcards: TEACHER_COSTING[wildcards.teacher],
        tie_policy=lookup(dpath="vote/tie_policy", within=config),
    script:
        "../scripts/pilot.py"


def pilot_settings(teacher):
    """The prompt settings the teacher's pilot chose (raises until its checkpoint has run)."""
    choice = checkpoints.pilot.get(teacher=teacher).output.choice
    return json.loads(Path(choice).read_text())["settings"]


def pilot_files():
    """Every teacher's pilot table and choice (the report, rule all)."""
    if not PILOT:
        return []
    return [
        path
        for t in TEACHERS
        for path in (
            fill(rules.pilot.output.table, teacher=t),
            fill(rules.pilot.output.choice, teacher=t),
        )
    ]
