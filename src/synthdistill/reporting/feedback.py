"""The report's Served feedback section: what cascade.feedback added, and the deferred share before
and after retraining on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.reporting.sections import Section, _display

COLUMNS = {
    "student": "student",
    "teacher": "teacher",
    "prompt": "prompt",
    "feedback_rows": "feedback rows",
    "added": "added to train pool",
    "dropped": "dropped (why)",
    "deferred_before": "deferred before",
    "deferred_after": "deferred after",
    "agreement_after": "agrees with teacher after",
}


def _dropped(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in counts.items()) or "none"


def feedback_table(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per student trained on feedback; entries name its add_feedback summary and deferral file."""
    rows = []
    for entry in entries:
        summary = json.loads(Path(entry["summary"]).read_text())
        deferral = json.loads(Path(entry["deferral"]).read_text())
        rows.append(
            {
                "student": entry["student"],
                "teacher": entry["teacher"],
                "prompt": entry["prompt"],
                "feedback_rows": summary["feedback_rows"],
                "added": summary["added_to_train_pool"],
                "dropped": _dropped(summary["dropped"]),
                "deferred_before": deferral["deferred_share_before"],
                "deferred_after": deferral["deferred_share_after"],
                "agreement_after": deferral["agreement_with_teacher_after"],
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def feedback_section(*, feedback: pd.DataFrame) -> Section:
    section = Section("Served feedback").text(
        "Texts the served student deferred to the teacher (cascade.feedback), added to the train pool with "
        "the teacher's labels. Before: the share of them the serving student deferred (all of them, or they "
        "would not be in the feedback). After: the share the retrained student still defers at its new "
        "cascade operating point, and how often its label now matches the teacher's. The retrained student "
        "was trained on these texts, so this shows what the loop taught it; the Cascade section's test-split "
        "figures show how it does on texts it has not seen."
    )
    return section.table(_display(feedback, COLUMNS))
