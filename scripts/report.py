"""Put every teacher, prompt and student side by side."""

from pathlib import Path

from synthdistill.logs import setup
from synthdistill.report import build

setup(snakemake.log[0])
markdown, page = build(
    snakemake.input.summary,
    snakemake.params.entries["teachers"],
    snakemake.params.entries["students"],
    snakemake.params.evaluated,
)
Path(snakemake.output.markdown).write_text(markdown)
Path(snakemake.output.html).write_text(page)
