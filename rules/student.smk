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
        task=TASK,
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
        task=TASK,
        labels=lookup(dpath="labels", within=config),
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


# Every student's model card and the opt-in Hub push: the same rules for every task kind.
include: "release.smk"
