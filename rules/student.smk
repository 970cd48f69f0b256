rule train_student:
    input:
        student_labels,
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
        "../scripts/train_student.py"


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
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
        ),
    script:
        "../scripts/export_onnx.py"


def student_model_files(wildcards):
    """The student's model and, when exported, its ONNX int8 model (the fast CPU path)."""
    files = {"model": rules.train_student.output.model}
    if config["inference"]["onnx"]:
        files["onnx"] = rules.export_onnx.output.onnx
    return files


rule benchmark_student:
    input:
        unpack(student_model_files),
        test=rules.prepare_data.output.test,
    output:
        "results/costs/students/{student}/{teacher}/{prompt}.json",
    log:
        "logs/benchmark_student/{student}/{teacher}/{prompt}.log",
    benchmark:
        "benchmarks/benchmark_student/{student}/{teacher}/{prompt}.tsv"
    conda:
        "../envs/student.yaml"
    # The machine to itself while timing, so the figures are not another job's noise: locally the
    # claim is scaled down to --cores; cluster profiles set the node size with set-threads.
    # (workflow.cores would fail to parse under cluster executors, which have no --cores.)
    threads: 64
    params:
        student_dir=lambda wildcards, input: str(Path(input.model).parent),
        max_length=lookup(
            dpath="students/{wildcards.student}/max_length", within=config
        ),
        settings=lookup(dpath="costs/benchmark", within=config),
    script:
        "../scripts/benchmark_student.py"


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
