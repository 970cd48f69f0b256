"""Label a (large) file of texts with a trained student, streamed into Parquet."""

from synthdistill.logs import setup
from synthdistill.students.predict import predict_file

setup(snakemake.log[0])
settings = snakemake.params.predict
predict_file(
    snakemake.params.student_dir,
    snakemake.input.texts,
    snakemake.output[0],
    text_column=settings["text_column"],
    id_column=settings["id_column"],
    backend=settings["backend"],
    max_length=snakemake.params.max_length,
    batch_size=settings["batch_size"],
    threads=snakemake.threads,
    progress=False,
)
