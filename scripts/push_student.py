"""Push one student folder with its card to the Hugging Face Hub (opt-in: `snakemake push_students`)."""

import json
from pathlib import Path

from synthdistill.logs import setup
from synthdistill.students.model_card import push_student

setup(snakemake.log[0])
result = push_student(
    snakemake.input.model,
    snakemake.input.card,
    snakemake.params.repo_id,
    token_env=snakemake.params.hub["token_env"],
    private=snakemake.params.hub["private"],
)
Path(snakemake.output[0]).write_text(json.dumps(result, indent=2) + "\n")
