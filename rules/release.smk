# What every trained student ships with, whatever the task kind: its model card, and the opt-in
# push to the Hugging Face Hub. Included by rules/student.smk after the train_student and
# export_onnx rules (and before evaluate_student, which it names in an input function) whose
# outputs the card reads.


def model_card_inputs(wildcards):
    inputs = {"metadata": rules.train_student.output.metadata}
    if EVALUATED:
        inputs["metrics"] = rules.evaluate_student.output.metrics
    if config["inference"]["onnx"]:
        inputs["onnx_check"] = rules.export_onnx.output.check
    return inputs


rule write_model_card:
    input:
        unpack(model_card_inputs),
    output:
        "results/students/{student}/{teacher}/{prompt}/README.md",
    log:
        "logs/write_model_card/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/write_model_card/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    params:
        # Only what the card's training energy uses, so a price change does not rewrite cards.
        hardware={k: STUDENT_HARDWARE[k] for k in ("power_w", "grid_kg_co2_per_kwh")},
        task=TASK,
        widget_texts=lookup(dpath="hub/widget_texts", within=config),
    script:
        "../scripts/write_model_card.py"


def student_release_files():
    """What every trained student ships with (rule all): its model card."""
    return [
        fill(rules.write_model_card.output[0], student=s, teacher=t, prompt=p)
        for s in STUDENTS
        for t, p in label_sources()
    ]


def hub_repo_id(wildcards):
    namespace = config["hub"]["namespace"]
    if not namespace:
        raise ValueError(
            "hub.namespace: set it (your user or organisation) to push students"
        )
    return f"{namespace}/{wildcards.student}-{wildcards.teacher}-{wildcards.prompt}"


localrules:
    push_student,


rule push_student:
    input:
        model=rules.train_student.output.model,
        card=rules.write_model_card.output[0],
    output:
        "results/hub/{student}/{teacher}/{prompt}.json",
    log:
        "logs/push_student/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/push_student/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    params:
        repo_id=hub_repo_id,
        hub=lookup(dpath="hub", within=config),
    script:
        "../scripts/push_student.py"


rule push_students:
    input:
        [
            fill(rules.push_student.output[0], student=s, teacher=t, prompt=p)
            for s in STUDENTS
            for t, p in label_sources()
        ],
