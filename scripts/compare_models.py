"""Paired significance tests: between teachers, and between each student and its teacher."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("compare_models")(
    models=snakemake.params.models,
    teachers=snakemake.params.teachers,
    students=snakemake.params.students,
    test_path=snakemake.input.test,
    labels=snakemake.params.labels,
    output=snakemake.output[0],
)
