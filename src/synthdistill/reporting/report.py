"""The decision report: keep calling the LLM teacher, or switch to the student?

Everything is read from the run's artifacts (vote stats, votes, metrics, student metadata, student
benchmarks, paired tests, Snakemake benchmark files); nothing is annotated, trained or measured
here, so regenerating the report is cheap. It is written as Markdown with PNG figures beside it,
as one self-contained HTML page (figures embedded), and as CSV tables.

The work is split by kind: tables.py computes the tables, figures.py draws them, sections.py
says what each section shows, render.py fills the templates in templates/; ``build`` only
wires them together and writes the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.evaluation.baselines import trivial_baselines
from synthdistill.metrics.run_facts import machine, read_json, versions
from synthdistill.reporting import figures as report_figures
from synthdistill.reporting import render
from synthdistill.reporting.active import active_section
from synthdistill.reporting.feedback import feedback_section, feedback_table
from synthdistill.reporting.pilot import pilot_section
from synthdistill.reporting.sections import (
    RunFacts,
    Section,
    cascade_section,
    decision_section,
    label_quality_section,
    quality_section,
    run_facts_section,
    selection_section,
    student_cost_section,
    teacher_cost_section,
)
from synthdistill.reporting.tables import (
    ReportTables,
    break_even_table,
    compute_tables,
    label_quality_table,
    pareto_points,
    quality_table,
    student_cost_table,
    teacher_cost_table,
)
from synthdistill.tasks.names import BEST

__all__ = [
    "FIGURES",
    "TABLES",
    "break_even_table",
    "build",
    "label_quality_table",
    "quality_table",
    "student_cost_table",
    "teacher_cost_table",
]

FIGURES = ("quality", "agreement", "accuracy_by_agreement", "confusion", "pareto", "cascade")
TABLES = ("quality", "label_quality", "teacher_cost", "student_cost", "break_even", "cascade", "stages")

TITLE = "synthdistill decision report: keep calling the LLM, or switch to the student?"
INTRO_EVALUATED = (
    "Scores are on the frozen expert test split (an abstained item counts as wrong); 95% intervals by bootstrap."
)
INTRO_NOT_EVALUATED = "Evaluation skipped: the dataset has no expert labels (dataset.label_column is null)."


@report_figures.plain_text
def _placeholder(path: str, message: str) -> None:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 1.5))
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center")
    figure.savefig(path, dpi=report_figures.DPI)
    plt.close(figure)


def draw_figures(tables: ReportTables, *, evaluated: bool, paths: dict[str, str]) -> None:
    """Every figure in FIGURES, written to ``paths``; placeholders where there is nothing to score."""
    if evaluated and len(tables.quality):
        report_figures.quality_bars(tables.quality, paths["quality"])
        report_figures.confusion_matrices(tables.confusion, paths["confusion"])
        report_figures.accuracy_by_agreement(tables.by_agreement, paths["accuracy_by_agreement"])
    else:
        for name in ("quality", "confusion", "accuracy_by_agreement"):
            _placeholder(paths[name], "not evaluated: the dataset has no expert labels")
    report_figures.agreement_histogram(tables.agreement, paths["agreement"])
    report_figures.pareto(pareto_points(tables.quality, tables.teacher_cost, tables.student_cost), paths["pareto"])
    report_figures.cascade_curves(tables.cascade_curves, tables.cascade, paths["cascade"])


def run_facts(summary: dict[str, Any], students: list[dict[str, Any]], config_hash: str | None) -> RunFacts:
    """What the run-facts section says besides the stage table (``summary``: the data summary)."""
    return RunFacts(
        config_hash=config_hash,
        per_split=summary["per_split"],
        rows_dropped=summary["rows_dropped"],
        report_machine=machine(),
        # Every student is benchmarked by the same rule on the same kind of node: the first one speaks for all.
        benchmark_machine=read_json(students[0]["benchmark"])["machine"] if students else None,
        versions=versions(),
    )


def report_sections(
    tables: ReportTables,
    facts: RunFacts,
    *,
    evaluated: bool,
    hardware: dict[str, Any],
    paired_path: str | None = None,
    selection: Section | None = None,
) -> list[Section]:
    """The report's sections in reading order."""
    return [
        decision_section(quality=tables.quality, teacher_costs=tables.teacher_cost, breaks=tables.break_even),
        cascade_section(cascades=tables.cascade),
        quality_section(quality=tables.quality, evaluated=evaluated, paired_path=paired_path),
        *([selection] if selection else []),
        label_quality_section(label_quality=tables.label_quality, evaluated=evaluated),
        teacher_cost_section(teacher_costs=tables.teacher_cost),
        student_cost_section(student_costs=tables.student_cost, hardware=hardware),
        run_facts_section(facts=facts, stages=tables.stages),
    ]


def build(
    summary_path: str,
    teachers: list[dict[str, Any]],
    students: list[dict[str, Any]],
    evaluated: bool,
    hardware: dict[str, Any],
    outputs: dict[str, Any],
    paired_path: str | None = None,
    benchmarks_dir: str | None = None,
    config_hash: str | None = None,
    splits: dict[str, str] | None = None,
    labels: list[str] | None = None,
    selection_paths: tuple[str, str] | None = None,
    feedback: list[dict[str, Any]] | None = None,
    cascades: list[dict[str, Any]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Write the report's Markdown, HTML, figures and CSV tables; return the tables.

    ``outputs`` has ``markdown``, ``html``, ``figures`` (name -> PNG path) and ``tables``
    (name -> CSV path) for the names in FIGURES and TABLES. ``splits`` (``train`` and ``test`` split
    files) and ``labels`` give the trivial baselines of the quality table. ``selection_paths`` are
    select_labeller's choice (JSON) and ranking (CSV), when the run has a gold dev split.
    ``feedback`` names the students trained on served feedback (cascade.feedback) and their
    add_feedback summaries; they get a Served feedback section before the run facts.
    ``cascades`` has student, teacher, prompt and the cascade rule's ``summary`` and ``curve`` files.
    """
    selection = None
    if selection_paths:
        choice, ranking = read_json(selection_paths[0]), pd.read_csv(selection_paths[1])
        learn_from_best = any(entry["teacher"] == BEST for entry in students)
        # Costs and the decision compare a best/on_gold_dev student with the labeller it learned from.
        students = [{**e, "source": choice["labeller"]} if e["teacher"] == BEST else e for e in students]
        cascades = [{**e, "source": choice["labeller"]} if e["teacher"] == BEST else e for e in cascades or []]
        selection = selection_section(choice=choice, ranking=ranking, learn_from_best=learn_from_best)
    baselines = None
    if evaluated and splits and labels:
        baselines = trivial_baselines(pd.read_parquet(splits["train"]), pd.read_parquet(splits["test"]), labels)
    tables = compute_tables(
        teachers=teachers,
        students=students,
        evaluated=evaluated,
        hardware=hardware,
        benchmarks_dir=benchmarks_dir,
        baselines=baselines,
        cascades=cascades,
    )
    csv_tables = tables.csv_tables()
    for name, frame in csv_tables.items():
        frame.to_csv(outputs["tables"][name], index=False)

    figures = outputs["figures"]
    draw_figures(tables, evaluated=evaluated, paths=figures)

    facts = run_facts(read_json(summary_path), students, config_hash)
    sections = report_sections(
        tables, facts, evaluated=evaluated, hardware=hardware, paired_path=paired_path, selection=selection
    )
    if feedback:
        sections.insert(-1, feedback_section(feedback=feedback_table(feedback)))
    for extra in (pilot_section(teachers=teachers), active_section(teachers=teachers, breaks=tables.break_even)):
        if extra:
            sections.insert(-1, extra)
    intro = INTRO_EVALUATED if evaluated else INTRO_NOT_EVALUATED
    figure_dir = Path(figures["quality"]).parent.relative_to(Path(outputs["markdown"]).parent).as_posix()
    Path(outputs["markdown"]).write_text(
        render.markdown(title=TITLE, intro=intro, sections=sections, figure_dir=figure_dir)
    )
    Path(outputs["html"]).write_text(render.html_page(title=TITLE, intro=intro, sections=sections, figures=figures))
    return csv_tables


def write_report(
    entries: dict[str, list[dict[str, Any]]], labels: list[str], outputs: dict[str, str], run: dict[str, Any]
) -> None:
    """The report step of task single_label. ``outputs``: markdown, html, figure_<name> and
    table_<name> for FIGURES and TABLES; ``run`` (rules/report.smk): the data summary, whether the run
    is evaluated, the student hardware, the paired tests, the selection files, the split files, the
    benchmarks folder, the config hash and the served-feedback entries."""
    build(
        run["summary"],
        entries["teachers"],
        entries["students"],
        run["evaluated"],
        run["hardware"],
        {
            "markdown": outputs["markdown"],
            "html": outputs["html"],
            "figures": {name: outputs[f"figure_{name}"] for name in FIGURES},
            "tables": {name: outputs[f"table_{name}"] for name in TABLES},
        },
        paired_path=run["paired"],
        selection_paths=run["selection"],
        benchmarks_dir=run["benchmarks_dir"],
        config_hash=run["config_hash"],
        splits=run["splits"],
        labels=labels,
        feedback=run["feedback"],
        cascades=entries["cascades"],
    )
