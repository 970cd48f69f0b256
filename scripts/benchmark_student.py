"""Measure one student's batch-1 latency, best-batch throughput and (where readable) energy."""

from synthdistill.logs import setup
from synthdistill.students.benchmark import write_benchmark

setup(snakemake.log[0])
write_benchmark(
    snakemake.params.student_dir,
    snakemake.input.test,
    snakemake.params.max_length,
    snakemake.params.settings,
    snakemake.output[0],
    threads=snakemake.threads,
)
