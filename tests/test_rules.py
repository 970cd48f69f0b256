"""The rules are written once for every task kind, and every rule that writes an artifact times it."""

from __future__ import annotations

import re

from synthdistill.tasks import REGISTRY

from .conftest import REPO

RULE_FILES = sorted((REPO / "rules").glob("*.smk"))


def _rule_blocks() -> dict[str, str]:
    """rule name -> its text, up to the next top-level statement."""
    blocks = {}
    for path in RULE_FILES:
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", text, flags=re.M):
            blocks[match.group(1)] = match.group(2)
    return blocks


def test_every_rule_that_writes_an_artifact_has_a_benchmark():
    blocks = _rule_blocks()
    assert {"vote", "export_review", "import_review", "train_student", "report"} <= set(blocks)
    without = [name for name, block in blocks.items() if "    output:" in block and "    benchmark:" not in block]
    assert without == []


def test_no_rule_file_or_branch_belongs_to_one_task_kind():
    names = {path.stem for path in RULE_FILES}
    assert not names & set(REGISTRY)
    for path in [REPO / "Snakefile", *RULE_FILES]:
        assert not re.search(r"TASK\s*==|task\s*==", path.read_text()), path.name
    # One script per step: none named after a task kind.
    assert not [p.name for p in (REPO / "scripts").glob("*.py") if p.stem.startswith(tuple(REGISTRY))]
