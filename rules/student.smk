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
    params:
        student=lookup(dpath="students/{wildcards.student}", within=config),
        labels=lookup(dpath="labels", within=config),
    script:
        "../scripts/train_student.py"
