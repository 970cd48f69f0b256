rule benchmark_student:
    input:
        unpack(student_model_files),
        test="results/data/test.parquet",
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


rule report:
    input:
        summary="results/data/summary.json",
        parts=report_files(REPORT_ENTRIES),
        paired=["results/evaluation/paired_tests.csv"] if EVALUATED else [],
    output:
        markdown="results/report/report.md",
        html=report(
            "results/report/report.html",
            caption="../report/decision.rst",
            category="Decision report",
            labels={"file": "decision report (self-contained)"},
        ),
        figure_quality=report(
            "results/report/figures/quality.png",
            caption="../report/quality.rst",
            category="Quality",
        ),
        figure_agreement=report(
            "results/report/figures/agreement.png",
            caption="../report/agreement.rst",
            category="Label quality",
        ),
        figure_accuracy_by_agreement=report(
            "results/report/figures/accuracy_by_agreement.png",
            caption="../report/accuracy_by_agreement.rst",
            category="Label quality",
        ),
        figure_confusion=report(
            "results/report/figures/confusion.png",
            caption="../report/confusion.rst",
            category="Quality",
        ),
        figure_pareto=report(
            "results/report/figures/pareto.png",
            caption="../report/pareto.rst",
            category="Decision report",
        ),
        table_quality=report(
            "results/report/tables/quality.csv",
            caption="../report/tables.rst",
            category="Quality",
            labels={"table": "quality"},
        ),
        table_label_quality=report(
            "results/report/tables/label_quality.csv",
            caption="../report/tables.rst",
            category="Label quality",
            labels={"table": "label_quality"},
        ),
        table_teacher_cost=report(
            "results/report/tables/teacher_cost.csv",
            caption="../report/tables.rst",
            category="Teacher cost",
            labels={"table": "teacher_cost"},
        ),
        table_student_cost=report(
            "results/report/tables/student_cost.csv",
            caption="../report/tables.rst",
            category="Student cost",
            labels={"table": "student_cost"},
        ),
        table_break_even=report(
            "results/report/tables/break_even.csv",
            caption="../report/tables.rst",
            category="Decision report",
            labels={"table": "break_even"},
        ),
        table_stages=report(
            "results/report/tables/stages.csv",
            caption="../report/tables.rst",
            category="Run facts",
            labels={"table": "stages"},
        ),
    log:
        "logs/report.log",
    conda:
        "../envs/report.yaml"
    params:
        entries=REPORT_ENTRIES,
        evaluated=EVALUATED,
        hardware=STUDENT_HARDWARE,
        config_hash=CONFIG_HASH,
        benchmarks_dir="benchmarks",
    script:
        "../scripts/report.py"
