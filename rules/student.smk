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
        model="results/students/{student}/{teacher}/{prompt}/model",
        test="results/data/test.parquet",
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


rule write_model_card:
    input:
        unpack(model_card_inputs),
    output:
        "results/students/{student}/{teacher}/{prompt}/README.md",
    log:
        "logs/write_model_card/{student}/{teacher}/{prompt}.log",
    conda:
        "../envs/student.yaml"
    params:
        # Only what the card's training energy uses, so a price change does not rewrite cards.
        hardware={k: STUDENT_HARDWARE[k] for k in ("power_w", "grid_kg_co2_per_kwh")},
    script:
        "../scripts/write_model_card.py"


localrules:
    push_student,


rule push_student:
    input:
        model="results/students/{student}/{teacher}/{prompt}/model",
        card="results/students/{student}/{teacher}/{prompt}/README.md",
    output:
        "results/hub/{student}/{teacher}/{prompt}.json",
    log:
        "logs/push_student/{student}/{teacher}/{prompt}.log",
    conda:
        "../envs/student.yaml"
    params:
        repo_id=hub_repo_id,
        hub=lookup(dpath="hub", within=config),
    script:
        "../scripts/push_student.py"


rule push_students:
    input:
        [f"results/hub/{s}/{t}/{p}.json" for s in STUDENTS for t, p in label_sources()],
