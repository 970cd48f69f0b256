"""Score a teacher × prompt's votes on the frozen expert test split."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("evaluate_teacher")(
    votes_path=snakemake.input[0], labels=snakemake.params.labels, output_path=snakemake.output[0]
)
