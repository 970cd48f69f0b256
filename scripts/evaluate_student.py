"""Score a student on the frozen expert test split."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("evaluate_student")(
    model_dir=snakemake.input.model,
    test_path=snakemake.input.test,
    labels=snakemake.params.labels,
    max_length=snakemake.params.max_length,
    metrics_path=snakemake.output.metrics,
    predictions_path=snakemake.output.predictions,
)
