"""Write the decision report (Markdown, self-contained HTML, figures, CSV tables) from the run's artifacts."""

from synthdistill.logs import setup
from synthdistill.reporting.report import FIGURES, TABLES, build

setup(snakemake.log[0])
build(
    snakemake.input.summary,
    snakemake.params.entries["teachers"],
    snakemake.params.entries["students"],
    snakemake.params.evaluated,
    snakemake.params.hardware,
    {
        "markdown": snakemake.output.markdown,
        "html": snakemake.output.html,
        "figures": {name: snakemake.output[f"figure_{name}"] for name in FIGURES},
        "tables": {name: snakemake.output[f"table_{name}"] for name in TABLES},
    },
    paired_path=snakemake.input.paired[0] if snakemake.input.paired else None,
    selection_paths=tuple(snakemake.input.selection) or None,
    benchmarks_dir=snakemake.params.benchmarks_dir,
    config_hash=snakemake.params.config_hash,
    splits={"train": snakemake.input.splits[0], "test": snakemake.input.splits[1]} if snakemake.input.splits else None,
    labels=snakemake.params.labels,
    feedback=snakemake.params.feedback,
    cascades=snakemake.params.entries["cascades"],
)
