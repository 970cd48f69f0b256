"""Write a student's model card (README.md), for any task kind, from its metadata, test metrics and ONNX check."""

from synthdistill.logs import setup
from synthdistill.students.model_card import write_card

setup(snakemake.log[0])
write_card(
    snakemake.input.metadata,
    snakemake.input.get("metrics"),
    snakemake.params.hardware,
    snakemake.output[0],
    onnx_check_path=snakemake.input.get("onnx_check"),
    name="/".join(snakemake.wildcards[k] for k in ("student", "teacher", "prompt")),
    task=snakemake.params.task,
    widget_texts=snakemake.params.widget_texts,
)
