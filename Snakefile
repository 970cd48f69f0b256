import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

# Jobs run in their own Python (a conda env, a cluster node): let them import the library from
# the workflow folder even where it was not pip-installed.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)

from synthdistill.schema import typed_overrides

min_version("9.0")


configfile: "config/config.yaml"


# Nested --config values arrive as strings: typed against the schema before it checks them.
typed_overrides(config)
validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


# Each self-consistency iteration is annotated as K jobs ({scatteritem} = 1-of-K ... K-of-K),
# gathered before the vote; `--set-scatter annotate=K` overrides annotate.shards.
scattergather:
    annotate=config["annotate"]["shards"],


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/annotate.smk"


# The stages after the vote follow the task kind (src/synthdistill/tasks.py): single_label is
# the whole pipeline below; multi_label and spans have their own stages in rules/<task>.smk.
if TASK == "single_label":

    include: "rules/review.smk"
    include: "rules/ensemble.smk"
    include: "rules/select.smk"
    include: "rules/student.smk"
    include: "rules/evaluate.smk"
    include: "rules/cascade.smk"
    include: "rules/feedback.smk"
    include: "rules/predict.smk"
    include: "rules/report.smk"

    rule all:
        default_target: True
        input:
            rules.report.output.html,
            student_release_files(),
            review_files(),
            selection_files(),

else:

    include: f"rules/{TASK}.smk"

    # Snakemake restores the default target after an include, so the default_target of the task
    # file's `rule all` is lost: name it here.
    workflow.default_target = "all"
