"""The report's Served feedback section: what cascade.feedback added, and the deferred share before
and after retraining on it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthdistill.metrics.run_facts import read_json
from synthdistill.reporting.sections import Section, display_table

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
        summary = read_json(entry["summary"])
        deferral = read_json(entry.get("deferral")) or {}
        rows.append(
            {
                "student": entry["student"],
                "teacher": entry["teacher"],
                "prompt": entry["prompt"],
                "feedback_rows": summary["feedback_rows"],
                "added": summary["added_to_train_pool"],
                "dropped": _dropped(summary["dropped"]),
                "deferred_before": 1.0 if summary["feedback_rows"] else None,
                "deferred_after": deferral.get("deferred_share_after"),
                "agreement_after": deferral.get("agreement_with_teacher_after"),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def feedback_section(*, feedback: pd.DataFrame) -> Section:
    section = Section("Served feedback").text(
        "Texts the served student deferred to the teacher (cascade.feedback), added to the train pool with "
        "the teacher's labels; the dropped rows are counted by reason. Deferred before: the share of them the "
        "serving student deferred (all of them, or they would not be in the feedback). Deferred after: the "
        "share the retrained student still defers at its cascade operating point, and how often its label now "
        "matches the teacher's. The retrained student was trained on these texts, so that shows what the loop "
        "taught it, not how it does on texts it has not seen."
    )
    if feedback["deferred_after"].isna().all():
        section.text("Deferred after is not measured in this run: it needs the cascade rule's operating point.")
    return section.table(display_table(feedback, COLUMNS))
