"""The report of a multi_label run: teachers' votes and students side by side on the frozen expert
test split, every score with its 95% bootstrap interval, next to trivial baselines (every label, no
label, each label at random at its train share), with every student whose validation answers collapsed
named; Markdown and self-contained HTML (the shared templates of reporting.render)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthdistill.evaluation.baselines import multi_label_baselines
from synthdistill.metrics.run_facts import read_json
from synthdistill.reporting.active import active_section
from synthdistill.reporting.entries import artifact_rows, write_pages
from synthdistill.reporting.sections import (
    Section,
    break_even_section,
    score_with_interval,
    student_cost_section,
    teacher_cost_section,
)
from synthdistill.reporting.tables import break_even_table, student_cost_table, teacher_cost_table

TITLE = "synthdistill report: multi-label tagging"


def _with_interval(metrics: dict[str, Any], name: str) -> str:
    # The prior-random baseline's scores are expectations: they have no interval.
    return score_with_interval(metrics[name], metrics.get("intervals", {}).get(name))


# The trivial baselines (evaluation.baselines.multi_label_baselines) as the report names them.
BASELINES = {
    "every_label": "baseline: every label",
    "no_label": "baseline: no label",
    "prior_random": "baseline: each label at its train share (expected)",
}
# A system beats the trivial baselines on a score when it is strictly above the best of them.
BEATEN_ON = {"f1_micro": "F1 micro", "subset_accuracy": "subset accuracy"}


def best_baselines(baselines: dict[str, dict[str, Any]]) -> dict[str, tuple[float, str]]:
    """For each score of BEATEN_ON, the best trivial baseline's value and name (ties: the first listed)."""
    best = {}
    for score in BEATEN_ON:
        key = max(BASELINES, key=lambda name: (baselines[name][score], -list(BASELINES).index(name)))
        best[score] = (float(baselines[key][score]), BASELINES[key])
    return best


def _source(entry: dict[str, Any]) -> str:
    return f"{entry['teacher']}/{entry['prompt']}"


def _name(entry: dict[str, Any]) -> str:
    """A teacher × prompt or a student (with its label source), as the sentences name them."""
    return f"{entry['student']} ({_source(entry)})" if "student" in entry else _source(entry)


def _collapse(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A student's validation collapse check (metadata.json, written at training time)."""
    return (read_json(entry.get("metadata")) or {}).get("validation_collapse")


def _named_metrics(teachers: list[dict[str, Any]], students: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, test metrics) of every teacher × prompt and student scored."""
    return artifact_rows([*teachers, *students], "metrics", lambda e, m: (_name(e), m), optional=True)


def quality_table(
    teachers: list[dict[str, Any]],
    students: list[dict[str, Any]],
    baselines: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per teacher × prompt (its voted sets) and per student, each score with its interval,
    then the trivial baselines; with baselines, whether each system beats the best of them, and
    whether each student's validation answers collapsed."""
    best = best_baselines(baselines) if baselines else {}
    entries = [*teachers, *students]
    rows = artifact_rows(entries, "metrics", lambda e, m: _system_row(e, m, best, bool(students)), optional=True)
    for key, name in BASELINES.items() if baselines else ():
        assert baselines is not None
        rows.append({"model": name, "kind": "baseline", "learned from": "", **_scores(baselines[key])})
    return pd.DataFrame(rows).fillna("–")


def _system_row(
    entry: dict[str, Any], metrics: dict[str, Any], best: dict[str, tuple[float, str]], collapse_column: bool
) -> dict[str, Any]:
    """A teacher's or a student's row of the quality table (``best``: best_baselines, or none); the
    collapsed column is there as soon as the run has a student."""
    student = "student" in entry
    row = {
        "model": entry["student"] if student else _source(entry),
        "kind": "student" if student else "teacher",
        "learned from": _source(entry) if student else "",
        **_scores(metrics),
    }
    for score, label in BEATEN_ON.items():
        if score in best:
            row[f"beats trivial ({label})"] = "yes" if metrics[score] > best[score][0] else "NO"
    if collapse_column:
        check = _collapse(entry) if student else None
        row["collapsed"] = "–" if check is None else ("YES" if check["collapsed"] else "no")
    return row


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "F1 micro [95% CI]": _with_interval(metrics, "f1_micro"),
        "F1 macro [95% CI]": _with_interval(metrics, "f1_macro"),
        "subset accuracy [95% CI]": _with_interval(metrics, "subset_accuracy"),
        "Hamming loss [95% CI]": _with_interval(metrics, "hamming_loss"),
        "coverage": f"{metrics['coverage']:.3f}",
        "n": metrics["n"],
    }


def baseline_lines(
    teachers: list[dict[str, Any]], students: list[dict[str, Any]], baselines: dict[str, dict[str, Any]]
) -> list[str]:
    """Sentences: what the trivial baselines score, and every system that does not beat the best of them."""
    best = best_baselines(baselines)
    lines = [
        "Trivial baselines on the same test split: every label for every text, no label for any text, and each "
        "label answered at random with its share of the train pool's texts (its expected scores, no interval). "
        + "The best on "
        + "; on ".join(f"{BEATEN_ON[score]}: {name} ({value:.3f})" for score, (value, name) in best.items())
        + "."
    ]
    scored = _named_metrics(teachers, students)
    for score, (value, name) in best.items():
        losers = [system for system, metrics in scored if metrics[score] <= value]
        if losers:
            lines.append(
                f"Not better than the best trivial baseline on {BEATEN_ON[score]} ({name}, {value:.3f}): "
                + ", ".join(losers)
                + "."
            )
    return lines


def collapse_lines(students: list[dict[str, Any]]) -> list[str]:
    """A sentence naming each student whose validation answers collapsed (metrics.collapse), and why."""
    lines = []
    for entry in students:
        check = _collapse(entry)
        if check and check["collapsed"]:
            lines.append(
                f"Collapsed: {_name(entry)} answers {'; '.join(check['reasons'])}. Its answers say little "
                "about the text (validation split at the tuned thresholds, never the test split)."
            )
    return lines


def per_label_table(teachers: list[dict[str, Any]], students: list[dict[str, Any]], labels: list[str]) -> pd.DataFrame:
    """Per label F1 (precision / recall) of every model."""
    return pd.DataFrame(
        [
            {"model": name, **{label: _precision_recall(metrics["per_label"][label]) for label in labels}}
            for name, metrics in _named_metrics(teachers, students)
        ]
    )


def _precision_recall(scores: dict[str, Any]) -> str:
    return f"{scores['f1']:.2f} ({scores['precision']:.2f} / {scores['recall']:.2f})"


def _vote_row(entry: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    annotation, vote = stats["annotation"], stats["vote"]
    return {
        "teacher/prompt": _source(entry),
        "answers": annotation["answers"],
        "parse failures": annotation["parse_failures"],
        "request errors": annotation["request_errors"],
        "items voted": f"{vote['labelled']}/{vote['items']}",
        "unanimous share": f"{vote['unanimous_share']:.2f}",
        "labels per item": f"{vote['mean_labels_per_item']:.2f}" if vote["mean_labels_per_item"] else "",
        "empty sets": vote["empty_sets"],
    }


def _student_row(entry: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    row = {
        "student": entry["student"],
        "learned from": _source(entry),
        "train items": metadata["train_examples"],
        "validation items": metadata["validation_examples"],
        "best epoch": metadata["best_epoch"],
        "thresholds": ", ".join(f"{k} {v:.2f}" for k, v in metadata["label_thresholds"].items()),
        # Labels with too few validation positives (students.*.min_threshold_positives).
        "at the global threshold": ", ".join(metadata.get("threshold_floor", {}).get("fell_back", [])) or "–",
        "training s": f"{metadata['train_seconds']:.0f}",
    }
    check = read_json(entry.get("onnx_check"))
    if check:
        row["ONNX int8: same sets"] = f"{check['same_label_share']:.3f}"
        if "f1_micro_difference_points" in check:
            row["ONNX int8: F1 micro - torch (points)"] = f"{check['f1_micro_difference_points']:+.1f}"
    return row


def vote_table(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(artifact_rows(teachers, "stats", _vote_row))


def student_table(students: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(artifact_rows(students, "metadata", _student_row))


# The cost tables the report writes as CSV beside report.md (output table_<name>, rules/report.smk).
COST_TABLES = ("teacher_cost", "student_cost", "break_even")


def cost_sections(
    teachers: list[dict[str, Any]], students: list[dict[str, Any]], hardware: dict[str, Any], outputs: dict[str, str]
) -> list[Section]:
    """Teacher cost, student cost and break-even, as the single_label report has them, each table also
    written as CSV (``outputs``: table_<name> for COST_TABLES)."""
    teacher_costs = teacher_cost_table(teachers)
    student_costs = student_cost_table(students, hardware)
    breaks = break_even_table(students, student_costs, teacher_costs)
    for name, frame in zip(COST_TABLES, (teacher_costs, student_costs, breaks), strict=True):
        frame.to_csv(outputs[f"table_{name}"], index=False)
    return [
        break_even_section(teacher_costs=teacher_costs, breaks=breaks),
        teacher_cost_section(teacher_costs=teacher_costs),
        student_cost_section(student_costs=student_costs, hardware=hardware),
    ]


def build(
    teachers: list[dict[str, Any]],
    students: list[dict[str, Any]],
    labels: list[str],
    paired_path: str | None,
    outputs: dict[str, str],
    *,
    splits: dict[str, str] | None = None,
    hardware: dict[str, Any] | None = None,
) -> list[Section]:
    """Write the report (``outputs``: markdown, html, and table_<name> of COST_TABLES when the students
    were benchmarked). ``splits`` (``train`` and ``test`` split files of prepare_data) give the trivial
    baselines of the quality table; ``hardware`` (costs.student_hardware) prices the students."""
    evaluated = any(entry.get("metrics") for entry in teachers + students)
    baselines = None
    if evaluated and splits:
        baselines = multi_label_baselines(pd.read_parquet(splits["train"]), pd.read_parquet(splits["test"]), labels)
    sections = []
    collapses = collapse_lines(students)
    if evaluated:
        quality = Section("Quality on the frozen expert test split")
        quality.text(
            "Teachers are scored on their voted label sets, students on their predicted sets (sigmoid scores at "
            "the per-label thresholds tuned on the validation split), all on the same test items. An item "
            "without a vote counts as the empty set. Intervals: 95% percentile bootstrap over test items."
        )
        for line in [*(baseline_lines(teachers, students, baselines) if baselines else []), *collapses]:
            quality.text(line)
        quality.table(quality_table(teachers, students, baselines))
        quality.text("Per label: F1 (precision / recall).")
        quality.table(per_label_table(teachers, students, labels))
        sections.append(quality)
        if paired_path:
            paired = Section("Student against its teacher (paired)")
            paired.text(
                "F1 micro of each student (a) and the teacher it learned from (b) on the same resampled test "
                "items: the 95% interval of a - b and a two-sided bootstrap p-value."
            )
            paired.table(pd.read_csv(paired_path).round(3).astype(str))
            sections.append(paired)
    sections.append(Section("Teacher answers and votes").table(vote_table(teachers)))
    if students:
        trained = Section("Students")
        for line in [] if evaluated else collapses:  # shown with the quality table when there is one
            trained.text(line)
        sections.append(trained.table(student_table(students)))
    active = active_section(teachers=teachers)
    if active:
        sections.append(active)
    # Costs need every student's benchmark (the benchmark_student rule, task feature costs).
    if students and all(entry.get("benchmark") for entry in students):
        sections.extend(cost_sections(teachers, students, hardware or {}, outputs))
    intro = f"Task multi_label over the labels {', '.join(labels)}: each text gets any subset. " + (
        "" if evaluated else "The dataset has no expert labels, so nothing is scored."
    )
    write_pages(TITLE, intro, sections, outputs)
    return sections


def write_report(
    entries: dict[str, list[dict[str, Any]]], labels: list[str], outputs: dict[str, str], run: dict[str, Any]
) -> None:
    """The report step of task multi_label (``outputs``: markdown, html and the cost tables); of ``run``
    it reads the paired tests, the train and test split files (the trivial baselines) and the student
    hardware (the costs)."""
    build(
        entries["teachers"],
        entries["students"],
        labels,
        run["paired"],
        outputs,
        splits=run["splits"],
        hardware=run["hardware"],
    )
