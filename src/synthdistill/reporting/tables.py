"""The report's tables, computed from the run's artifacts: quality, label quality, costs, break-even.

Nothing here formats or renders; the CSV files and the figures take these frames as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.evaluation.baselines import collapsed
from synthdistill.metrics.costs import break_even, student_cost_row, teacher_cost_row, training_cost
from synthdistill.metrics.run_facts import read_json, stage_benchmarks
from synthdistill.metrics.stats import with_intervals
from synthdistill.reporting.cascade import cascade_tables
from synthdistill.tasks.names import EXPERT


def system_name(entry: dict[str, Any]) -> str:
    """``teacher/prompt`` for a teacher, ``student/teacher/prompt`` for a student."""
    if "student" in entry:
        return f"{entry['student']}/{entry['teacher']}/{entry['prompt']}"
    return f"{entry['teacher']}/{entry['prompt']}"


def system_kind(entry: dict[str, Any]) -> str:
    if "student" not in entry:
        return "teacher"
    return "expert baseline" if entry["teacher"] == EXPERT else "student"


MAJORITY, PRIOR_RANDOM = "baseline: majority class", "baseline: prior-random expectation"


def quality_table(
    teachers: list[dict[str, Any]],
    students: list[dict[str, Any]],
    baselines: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Accuracy and F1 macro with their intervals for every teacher × prompt and every student, then
    the trivial baselines; each system says whether it beats the majority class and each student
    whether its validation answers collapsed onto one class."""
    rows = []
    majority_accuracy = baselines["majority"]["accuracy"] if baselines else None
    for entry in [*teachers, *students]:
        metrics = read_json(entry.get("metrics"))
        if metrics is None:
            continue
        row = {
            "system": system_name(entry),
            "kind": system_kind(entry),
            **with_intervals(metrics, metrics["intervals"], ("accuracy", "f1_macro")),
            "coverage": metrics["coverage"],
            "test_items": metrics["n"],
            # Strictly better accuracy than always answering the train pool's majority class.
            "beats_majority": metrics["accuracy"] > majority_accuracy if majority_accuracy is not None else None,
        }
        if "student" in entry:
            shares = (read_json(entry.get("metadata")) or {}).get("validation_prediction_shares")
            flag, label, share = collapsed(shares)
            row.update(collapsed=flag, validation_top_label=label, validation_top_share=share)
        rows.append(row)
    if baselines:
        majority, prior = baselines["majority"], baselines["prior_random"]
        rows.append(
            {
                "system": f"{MAJORITY} ({majority['label']})",
                "kind": "baseline",
                **with_intervals(majority, majority["intervals"], ("accuracy", "f1_macro")),
                "coverage": 1.0,
                "test_items": majority["n"],
            }
        )
        rows.append(
            {
                "system": PRIOR_RANDOM,
                "kind": "baseline",
                "accuracy": prior["accuracy"],
                "f1_macro": prior["f1_macro"],
                "coverage": 1.0,
                "test_items": prior["n"],
            }
        )
    return pd.DataFrame(rows)


def label_quality_table(teachers: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.Series]]:
    """Failures and agreement per teacher × prompt, and accuracy of unanimous against split votes.

    Accuracy by agreement uses every item with an expert label (all splits): the teacher never
    learns from them, so they are all fair ground for judging its labels.
    """
    rows, by_agreement, agreement = [], [], {}
    for entry in teachers:
        stats = read_json(entry["stats"])
        votes = pd.read_parquet(entry["votes"])
        name = system_name(entry)
        agreement[name] = votes["agreement"]
        unanimous = votes["agreement"] == 1.0
        annotation, vote = stats["annotation"], stats["vote"]
        row = {
            "teacher_prompt": name,
            "items": vote["items"],
            "answers": annotation["answers"],
            "parse_failures": annotation["parse_failures"],
            "request_errors": annotation["request_errors"],
            "failure_share": (annotation["parse_failures"] + annotation["request_errors"]) / annotation["answers"],
            "ties_abstained": vote["ties_abstained"],
            "all_failed": vote["all_failed"],
            "unanimous_share": float(unanimous.mean()),
        }
        if "expert_label" in votes and votes["expert_label"].notna().any():
            known = votes.loc[votes["expert_label"].notna()]
            # An abstained item (no label) counts as wrong, as in evaluation.
            correct = known["label"].astype(object).eq(known["expert_label"].astype(object))
            for group, mask in (("unanimous", known["agreement"] == 1.0), ("split", known["agreement"] < 1.0)):
                items = int(mask.sum())
                accuracy = float(correct[mask].mean()) if items else None
                row[f"accuracy_{group}"] = accuracy
                row[f"items_{group}"] = items
                by_agreement.append({"teacher_prompt": name, "agreement": group, "items": items, "accuracy": accuracy})
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(by_agreement), agreement


def teacher_cost_table(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"teacher_prompt": system_name(e), **teacher_cost_row(read_json(e["stats"]), e.get("costing") or {})}
            for e in teachers
        ]
    )


def student_cost_table(students: list[dict[str, Any]], hardware: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for entry in students:
        meta = read_json(entry["metadata"])
        benchmark = read_json(entry["benchmark"])
        train_usd = training_cost(meta["train_seconds"], hardware)
        rows.append(
            {
                "student": system_name(entry),
                "kind": system_kind(entry),
                **student_cost_row(benchmark, hardware),
                "train_examples": meta["train_examples"],
                "train_seconds": meta["train_seconds"],
                "train_usd": train_usd,
            }
        )
    return pd.DataFrame(rows)


def break_even_table(
    students: list[dict[str, Any]], student_costs: pd.DataFrame, teacher_costs: pd.DataFrame
) -> pd.DataFrame:
    """For each student of a teacher: its fixed cost (that teacher's annotation + training) and break-even."""
    rows = []
    teachers = teacher_costs.set_index("teacher_prompt")
    costs = student_costs.set_index("student")
    for entry in students:
        if entry["teacher"] == EXPERT:
            continue  # the expert labels' cost is not known to the pipeline
        # A student of students_learn_from: best: the labeller select_labeller chose (build() fills it in).
        source = entry.get("source") or f"{entry['teacher']}/{entry['prompt']}"
        teacher, student = teachers.loc[source], costs.loc[system_name(entry)]
        # A teacher whose cost is not estimated stays unknown here: it is never taken as free.
        annotation_usd = _number(teacher["cost_usd"])
        teacher_per_1m = _number(teacher["usd_per_1m_texts"])
        train_usd = student["train_usd"]
        fixed = None if pd.isna(train_usd) or annotation_usd is None else annotation_usd + float(train_usd)
        student_per_text = None if pd.isna(student["usd_per_1m_texts"]) else student["usd_per_1m_texts"] / 1e6
        result = break_even(fixed, None if teacher_per_1m is None else teacher_per_1m / 1e6, student_per_text)
        rows.append(
            {
                "student": system_name(entry),
                "teacher_prompt": source,
                "annotation_usd": annotation_usd,
                "train_usd": train_usd,
                "fixed_usd": fixed,
                "teacher_usd_per_1m_texts": teacher_per_1m,
                "student_usd_per_1m_texts": student["usd_per_1m_texts"],
                "teacher_kg_co2_per_1m_texts": _number(teacher["kg_co2_per_1m_texts"]),
                "student_kg_co2_per_1m_texts": _number(student["kg_co2_per_1m_texts"]),
                "break_even_texts": result["texts"],
                "how": result["note"],
            }
        )
    return pd.DataFrame(rows)


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def pareto_points(quality: pd.DataFrame, teacher_costs: pd.DataFrame, student_costs: pd.DataFrame) -> pd.DataFrame:
    """One point per teacher × prompt and per student: dollars per 1M texts and F1 macro (NaN where unknown)."""
    teachers = _cost_points(teacher_costs["teacher_prompt"], "teacher", teacher_costs)
    students = _cost_points(student_costs["student"], student_costs["kind"], student_costs)
    points = pd.concat([teachers, students], ignore_index=True)
    if len(quality):
        systems = quality.loc[quality["kind"] != "baseline", ["system", "f1_macro"]]
        points = points.merge(systems, on="system", how="left")
    else:
        points["f1_macro"] = None
    points["usd_per_1m_texts"] = pd.to_numeric(points["usd_per_1m_texts"], errors="coerce")
    points["f1_macro"] = pd.to_numeric(points["f1_macro"], errors="coerce")
    return points


def _cost_points(system: pd.Series, kind: str | pd.Series, costs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"system": system, "kind": kind, "usd_per_1m_texts": costs["usd_per_1m_texts"]})


@dataclass
class ReportTables:
    """Every table the report shows or writes, plus what the figures need beyond them."""

    quality: pd.DataFrame
    label_quality: pd.DataFrame
    teacher_cost: pd.DataFrame
    student_cost: pd.DataFrame
    break_even: pd.DataFrame
    stages: pd.DataFrame
    by_agreement: pd.DataFrame
    agreement: dict[str, pd.Series]
    cascade: pd.DataFrame = field(default_factory=pd.DataFrame)
    cascade_curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    confusion: dict[str, dict[str, Any]] = field(default_factory=dict)  # by system, of the scored ones

    def csv_tables(self) -> dict[str, pd.DataFrame]:
        """The tables written as CSV, by the names in report.TABLES (in that order)."""
        return {
            "quality": self.quality,
            "label_quality": self.label_quality,
            "teacher_cost": self.teacher_cost,
            "student_cost": self.student_cost,
            "break_even": self.break_even,
            "cascade": self.cascade,
            "stages": self.stages,
        }


def compute_tables(
    *,
    teachers: list[dict[str, Any]],
    students: list[dict[str, Any]],
    evaluated: bool,
    hardware: dict[str, Any],
    benchmarks_dir: str | None = None,
    baselines: dict[str, dict[str, Any]] | None = None,
    cascades: list[dict[str, Any]] | None = None,
) -> ReportTables:
    """All of the report's tables from the teacher and student entries' artifacts (``baselines``:
    evaluation.baselines.trivial_baselines on this run's splits)."""
    label_quality, by_agreement, agreement = label_quality_table(teachers)
    teacher_costs = teacher_cost_table(teachers)
    student_costs = student_cost_table(students, hardware)
    has_benchmarks = benchmarks_dir is not None and Path(benchmarks_dir).is_dir()
    cascade, cascade_curves = cascade_tables(cascades or [], teacher_costs, student_costs)
    return ReportTables(
        quality=quality_table(teachers, students, baselines) if evaluated else pd.DataFrame(),
        label_quality=label_quality,
        teacher_cost=teacher_costs,
        student_cost=student_costs,
        break_even=break_even_table(students, student_costs, teacher_costs),
        stages=stage_benchmarks(benchmarks_dir) if benchmarks_dir is not None and has_benchmarks else pd.DataFrame(),
        by_agreement=by_agreement,
        agreement=agreement,
        cascade=cascade,
        cascade_curves=cascade_curves,
        confusion=confusion_matrices([*teachers, *students]) if evaluated else {},
    )


def confusion_matrices(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each scored teacher's or student's confusion matrix (its test metrics), by system name."""
    return {system_name(e): read_json(e["metrics"])["confusion_matrix"] for e in entries if e.get("metrics")}
