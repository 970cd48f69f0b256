"""Export a student to ONNX int8 and measure how its predictions differ from the torch model."""

from synthdistill.inference import write_onnx_export
from synthdistill.logs import setup

setup(snakemake.log[0])
write_onnx_export(
    snakemake.input.model,
    snakemake.input.test,
    snakemake.params.max_length,
    snakemake.output.onnx,
    snakemake.output.check,
)
