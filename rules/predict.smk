def predict_student():
    """student, teacher, prompt of the student `predict` uses: predict.student, else the first
    student on the first label source."""
    chosen = config["predict"]["student"]
    if chosen is None:
        return {
            "student": STUDENTS[0],
            **dict(zip(("teacher", "prompt"), label_sources()[0])),
        }
    return dict(zip(("student", "teacher", "prompt"), chosen.split("/")))


def predict_student_files(wildcards):
    files = [fill(rules.train_student.output.model, **predict_student())]
    if config["inference"]["onnx"]:
        files.append(fill(rules.export_onnx.output.onnx, **predict_student()))
    return files


def predict_max_length():
    return config["students"][predict_student()["student"]]["max_length"]


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
        student_dir=lambda wildcards: str(
            Path(predict_student_files(wildcards)[0]).parent
        ),
        predict=lookup(dpath="predict", within=config),
        max_length=lambda wildcards: predict_max_length(),
    script:
        "../scripts/predict.py"


rule predict_all:
    input:
        expand(rules.predict.output[0], name=list(config["predict"]["files"])),
