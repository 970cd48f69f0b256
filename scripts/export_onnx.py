"""Export a student to ONNX int8 and measure how its predictions differ from the torch model's."""

from synthdistill.logs import setup
from synthdistill.tasks import get_task

setup(snakemake.log[0])
get_task(snakemake.params.task).step("export_onnx")(
    model_dir=snakemake.input.model,
    test_path=snakemake.input.test,
    labels=snakemake.params.labels,
    max_length=snakemake.params.max_length,
    output_dir=snakemake.output.onnx,
    check_path=snakemake.output.check,
)
