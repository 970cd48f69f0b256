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

from synthdistill.schema import check_against_schema, typed_overrides

min_version("9.0")


configfile: "config/config.yaml"


# Nested --config values arrive as strings: typed against the schema before it checks them.
typed_overrides(config)
# Each error in words first; validate then fills in the schema's defaults.
check_against_schema(config)
validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


# Each self-consistency iteration is annotated as K jobs ({scatteritem} = 1-of-K ... K-of-K),
# gathered before the vote; `--set-scatter annotate=K` overrides annotate.shards.
scattergather:
    annotate=config["annotate"]["shards"],


# Every rule is written once, for every task kind (src/synthdistill/tasks/): a rule's script calls
# the run's task's step, and the stages a kind does not support are never asked for.
include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/annotate.smk"
include: "rules/pilot.smk"
include: "rules/active.smk"
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
        pilot_files(),
