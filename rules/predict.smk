rule predict:
    input:
        texts=lambda wildcards: config["predict"]["files"][wildcards.name],
        student=predict_student_files,
    output:
        "results/predictions/{name}.parquet",
    log:
        "logs/predict/{name}.log",
    benchmark:
        "benchmarks/predict/{name}.tsv"
    conda:
        "../envs/student.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        student_dir=lambda wildcards: predict_student_dir(),
        predict=lookup(dpath="predict", within=config),
        max_length=lambda wildcards: predict_max_length(),
    script:
        "../scripts/predict.py"


rule predict_all:
    input:
        expand(
            "results/predictions/{name}.parquet", name=list(config["predict"]["files"])
        ),
