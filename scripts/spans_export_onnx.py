"""Export a spans student to ONNX int8 and check its spans against the torch model's on the test split."""

from synthdistill.logs import setup
from synthdistill.students.span_onnx import write_span_onnx_export

setup(snakemake.log[0])
write_span_onnx_export(
    snakemake.input.model,
    snakemake.input.test,
    snakemake.params.labels,
    snakemake.params.max_length,
    snakemake.output.onnx,
    snakemake.output.check,
)
