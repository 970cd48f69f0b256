from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/annotate.smk"
include: "rules/review.smk"
include: "rules/ensemble.smk"
include: "rules/student.smk"
include: "rules/evaluate.smk"
include: "rules/predict.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "results/report/report.html",
        student_release_files(),
        review_files(),
