"""The report's cascade tables: each cascade's operating point, its quality and cost, and the decision.

The cost of a cascade per 1M texts is the student on every text plus the teacher on the deferred
share (measured on the test split), from the teacher and student cost tables; a figure missing on
either side (no student price, no teacher CO2 estimate) leaves the cascade's figure missing too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KEEP, SWITCH, CASCADE = "keep the teacher", "switch to the student", "run the cascade"
# "Matches the teacher": no significant difference on the paired test, and F1 macro at most this far below.
F1_MARGIN = 0.01
ALPHA = 0.05


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def _mix(student: float | None, teacher: float | None, share: float) -> float | None:
    """Student on every text, teacher on ``share`` of them."""
    if student is None or teacher is None:
        return None
    return student + share * teacher


def matches_teacher(paired: dict[str, Any], f1: float, teacher_f1: float) -> bool:
    """At least as good as the teacher: not significantly worse on the paired test (McNemar, where a
    significant result in its favour counts as a match) and F1 macro at most F1_MARGIN below."""
    mcnemar = paired["mcnemar"]
    better = mcnemar["only_a_right"] > mcnemar["only_b_right"]
    return (mcnemar["p_value"] >= ALPHA or better) and f1 >= teacher_f1 - F1_MARGIN


def _cheaper(usd: float | None, teacher_usd: float | None) -> bool:
    """Cheaper per text than the teacher; unknown prices do not rule an option out."""
    return usd is None or teacher_usd is None or usd < teacher_usd


def decide(row: dict[str, Any]) -> tuple[str, str]:
    """One of the three options, and why, from a cascade row's test figures and costs."""
    if row["test_items"] is None:
        return "–", "not decided: the dataset has no expert labels to score the cascade on"
    criterion = f"not significantly worse, McNemar at {ALPHA}, and F1 macro at most {F1_MARGIN} below the teacher's"
    teacher_usd = row["teacher_usd_per_1m_texts"]
    if row["student_matches"] and _cheaper(row["student_usd_per_1m_texts"], teacher_usd):
        return SWITCH, f"the student alone matches the teacher ({criterion})"
    if row["cascade_matches"] and _cheaper(row["cascade_usd_per_1m_texts"], teacher_usd):
        return CASCADE, (
            f"the cascade matches the teacher ({criterion}) sending {row['test_deferred_share']:.0%} of the "
            "test texts to it; the student alone does not"
        )
    if row["student_matches"] or row["cascade_matches"]:
        return KEEP, "what matches the teacher costs no less per text than the teacher at these prices"
    return KEEP, f"neither the student nor the cascade matches the teacher ({criterion})"


def cascade_tables(
    cascades: list[dict[str, Any]], teacher_costs: pd.DataFrame, student_costs: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """One row per cascade (operating point, quality, cost, decision), and each cascade's curve with
    its cost per threshold (name -> frame)."""
    teachers = teacher_costs.set_index("teacher_prompt") if len(teacher_costs) else pd.DataFrame()
    students = student_costs.set_index("student") if len(student_costs) else pd.DataFrame()
    rows, curves = [], {}
    for entry in cascades:
        summary = json.loads(Path(entry["summary"]).read_text())
        curve = pd.read_csv(entry["curve"])
        # A best/on_gold_dev student's teacher is the labeller select_labeller chose ("source").
        source = entry.get("source") or f"{entry['teacher']}/{entry['prompt']}"
        student_name = f"{entry['student']}/{entry['teacher']}/{entry['prompt']}"
        teacher_cost = teachers.loc[source] if source in teachers.index else {}
        student_cost = students.loc[student_name] if student_name in students.index else {}
        costs = {
            "usd": (_number(student_cost.get("usd_per_1m_texts")), _number(teacher_cost.get("usd_per_1m_texts"))),
            "co2": (
                _number(student_cost.get("kg_co2_per_1m_texts")),
                _number(teacher_cost.get("kg_co2_per_1m_texts")),
            ),
        }
        policy, validation, test = summary["policy"], summary["validation"], summary["test"]
        # The cost of every threshold is read where the figure needs it: on the test curve when scored.
        share_column = "test_deferred_share" if "test_deferred_share" in curve else "validation_deferred_share"
        for kind, (student_value, teacher_value) in costs.items():
            unit = "usd" if kind == "usd" else "kg_co2"
            curve[f"{unit}_per_1m_texts"] = [_mix(student_value, teacher_value, s) for s in curve[share_column]]
        curves[f"cascade {student_name}"] = curve
        share = test["deferred_share"] if test else validation["deferred_share"]
        row: dict[str, Any] = {
            "cascade": student_name,
            "teacher_prompt": source,
            "confidence": policy["confidence"],
            "temperature": policy["temperature"],
            "threshold": policy["threshold"],
            "target": ", ".join(f"{k} {v}" for k, v in summary["target"].items()),
            "validation_deferred_share": validation["deferred_share"],
            "validation_agreement": validation["agreement"],
            "test_items": test["items"] if test else None,
            "test_deferred_share": test["deferred_share"] if test else None,
            "test_agreement": test["agreement_with_teacher"] if test else None,
            "student_usd_per_1m_texts": costs["usd"][0],
            "teacher_usd_per_1m_texts": costs["usd"][1],
            "cascade_usd_per_1m_texts": _mix(*costs["usd"], share),
            "student_kg_co2_per_1m_texts": costs["co2"][0],
            "teacher_kg_co2_per_1m_texts": costs["co2"][1],
            "cascade_kg_co2_per_1m_texts": _mix(*costs["co2"], share),
        }
        for system in ("student", "cascade", "teacher"):
            scores = test[system] if test else None
            for metric in ("accuracy", "f1_macro"):
                row[f"{system}_{metric}"] = scores[metric] if scores else None
                low, high = scores["intervals"][metric] if scores else (None, None)
                row[f"{system}_{metric}_low"], row[f"{system}_{metric}_high"] = low, high
        paired = test["paired"] if test else None
        row["cascade_vs_teacher_mcnemar_p"] = paired["cascade_vs_teacher"]["mcnemar"]["p_value"] if paired else None
        interval = paired["cascade_vs_teacher"]["paired_bootstrap"]["f1_macro_difference_interval"] if paired else None
        row["cascade_vs_teacher_f1_diff_low"], row["cascade_vs_teacher_f1_diff_high"] = interval or (None, None)
        row["student_vs_teacher_mcnemar_p"] = paired["student_vs_teacher"]["mcnemar"]["p_value"] if paired else None
        row["student_matches"] = bool(
            paired and matches_teacher(paired["student_vs_teacher"], row["student_f1_macro"], row["teacher_f1_macro"])
        )
        row["cascade_matches"] = bool(
            paired and matches_teacher(paired["cascade_vs_teacher"], row["cascade_f1_macro"], row["teacher_f1_macro"])
        )
        row["decision"], row["why"] = decide(row)
        rows.append(row)
    return pd.DataFrame(rows), curves
