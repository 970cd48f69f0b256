"""The report's Pilot section (pilot.enabled): per teacher, every prompt candidate scored on the gold dev
split, how far successive halving took it, what it would cost per 1M texts, and which one labelled the
pool and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.reporting.sections import Section, display_table, format_value, score_with_interval

COLUMNS = {
    "teacher": "Teacher",
    "candidate": "Candidate",
    "kind": "Kind",
    "examples": "Examples",
    "rung": "Last rung",
    "texts": "Gold dev texts",
    "f1": "F1 macro (gold dev)",
    "accuracy": "Accuracy (gold dev)",
    "usd_per_1m_texts": "$ per 1M texts",
    "status": "Outcome",
}


def candidates_frame(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    """Each candidate's row from the last rung it was scored on, per teacher with a pilot."""
    frames = []
    for entry in teachers:
        if not entry.get("pilot_table"):
            continue
        table = pd.read_csv(entry["pilot_table"], keep_default_na=False, na_values=[""])
        last = table.groupby("candidate", sort=False).tail(1)
        last = last.sort_values(["rung", "f1_macro"], ascending=False, kind="stable").copy()
        last.insert(0, "teacher", entry["teacher"])
        frames.append(last)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def choice_line(teacher: str, choice: dict[str, Any]) -> str:
    majority = choice["baselines"]["majority"]
    spent = format_value(choice["usd"]) if choice["usd"] is not None else "not priced"
    return (
        f"{teacher}: **{choice['candidate']}** labelled the pool{_rewritten(choice)}: F1 macro "
        f"{score_with_interval(choice['f1_macro'], choice['f1_macro_interval'])} on {choice['gold_dev_texts']} gold "
        f"dev texts, {choice['why']}. Trivial baselines there: always {majority['label']!r} "
        f"{format_value(majority['f1_macro'])}, guessing with the label shares "
        f"{format_value(choice['baselines']['prior_random']['f1_macro'])}; pilot.require {choice['require']}: "
        f"{choice['verdict']}. The pilot read {choice['answers']:,} answers of {choice['candidates']} candidates "
        f"({choice['requests_made']:,} calls made by this run, the rest cached), ${spent} in all."
    )


def _rewritten(choice: dict[str, Any]) -> str:
    source = choice.get("template_source") or ""
    return (
        f" (its template is the teacher's {source}, results/pilot/<teacher>/rewrites.csv)"
        if "rewrite" in source
        else ""
    )


def pilot_section(*, teachers: list[dict[str, Any]]) -> Section | None:
    """The section, or None when the run had no pilot."""
    candidates = candidates_frame(teachers)
    if candidates.empty:
        return None
    section = Section("Pilot")
    section.text(
        "pilot.enabled: before the train pool was labelled, each teacher scored prompt candidates (the run's "
        "templates × prompt kinds × few-shot settings) on the expert-labelled gold dev split with successive "
        "halving: every candidate on the first texts, the better part on more, the last rung on all of them. "
        "Only the winner labelled the pool (prompt 'pilot'). Validation and test chose nothing. Per candidate "
        "its scores on the last rung it reached, with 95% bootstrap intervals."
    )
    for entry in teachers:
        if entry.get("pilot_choice"):
            section.text(choice_line(entry["teacher"], json.loads(Path(entry["pilot_choice"]).read_text())))
    candidates["f1"] = [
        score_with_interval(row["f1_macro"], [row["f1_macro_low"], row["f1_macro_high"]])
        if pd.notna(row["f1_macro"])
        else "–"
        for _, row in candidates.iterrows()
    ]
    section.table(display_table(candidates, COLUMNS))
    return section
