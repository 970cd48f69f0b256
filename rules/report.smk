rule report:
    input:
        summary="results/data/summary.json",
        parts=report_files(REPORT_ENTRIES),
        paired=["results/evaluation/paired_tests.csv"] if EVALUATED else [],
    output:
        markdown="results/report/report.md",
        html="results/report/report.html",
    log:
        "logs/report.log",
    conda:
        "../envs/report.yaml"
    params:
        entries=REPORT_ENTRIES,
        evaluated=EVALUATED,
    script:
        "../scripts/report.py"
