"""Export a student to ONNX int8 and measure how its predictions differ from the torch model."""

from synthdistill.logs import setup
from synthdistill.students.inference import write_onnx_export

setup(snakemake.log[0])
write_onnx_export(
    snakemake.input.model,
    snakemake.input.test,
    snakemake.params.max_length,
    snakemake.output.onnx,
    snakemake.output.check,
)
