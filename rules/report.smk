from synthdistill.metrics.run_facts import config_hash


def report_entries():
    """The files the report reads for each teacher label set and each student, with their names."""
    teachers = [
        {
            "teacher": t,
            "prompt": p,
            "stats": fill(rules.vote.output.stats, teacher=t, prompt=p),
            "votes": fill(rules.vote.output.votes, teacher=t, prompt=p),
            "metrics": (
                fill(rules.evaluate_teacher.output[0], teacher=t, prompt=p)
                if EVALUATED
                else None
            ),
            # An ensemble's stats carry its members' summed costs, so it needs none of its own.
            "costing": TEACHER_COSTING.get(t, {}),
            "active_rounds": (
                fill(rules.active_pool.output.rounds, teacher=t, prompt=p)
                if ACTIVE
                else None
            ),
            "pilot_table": (
                fill(rules.pilot.output.table, teacher=t) if p == PILOT_PROMPT else None
            ),
            "pilot_choice": (
                fill(rules.pilot.output.choice, teacher=t)
                if p == PILOT_PROMPT
                else None
            ),
        }
        for t, p in labellers()
    ]
    students = [
        {
            "student": s,
            "teacher": t,
            "prompt": p,
            "metadata": fill(
                rules.train_student.output.metadata, student=s, teacher=t, prompt=p
            ),
            "benchmark": (
                fill(rules.benchmark_student.output[0], student=s, teacher=t, prompt=p)
                if TASK_KIND.supports("costs")
                else None
            ),
            "onnx_check": (
                fill(rules.export_onnx.output.check, student=s, teacher=t, prompt=p)
                if config["inference"]["onnx"]
                else None
            ),
            "metrics": (
                fill(
                    rules.evaluate_student.output.metrics,
                    student=s,
                    teacher=t,
                    prompt=p,
                )
                if EVALUATED
                else None
            ),
        }
        for s in STUDENTS
        for t, p in label_sources()
    ]
    cascade_entries = [
        {
            "student": s,
            "teacher": t,
            "prompt": p,
            "summary": fill(
                rules.cascade.output.summary, student=s, teacher=t, prompt=p
            ),
            "curve": fill(rules.cascade.output.curve, student=s, teacher=t, prompt=p),
        }
        for s, t, p in (cascades() if TASK_KIND.supports("cascade") else [])
    ]
    return {"teachers": teachers, "students": students, "cascades": cascade_entries}


def report_files(entries):
    return [
        path
        for group in entries.values()
        for entry in group
        for key, path in entry.items()
        if key
        in (
            "stats",
            "votes",
            "metrics",
            "metadata",
            "benchmark",
            "onnx_check",
            "summary",
            "curve",
            "active_rounds",
            "pilot_table",
            "pilot_choice",
        )
        and path
    ]


def feedback_entries():
    """The students trained on served feedback, with what add_feedback added and dropped."""
    return [
        {
            "student": s,
            "teacher": t,
            "prompt": p,
            "summary": fill(rules.add_feedback.output.summary, teacher=t, prompt=p),
            "deferral": fill(
                rules.feedback_deferral.output[0], student=s, teacher=t, prompt=p
            ),
        }
        for s in STUDENTS
        for t, p in label_sources()
        if (t, p) in FEEDBACK_PAIRS
    ]


REPORT_ENTRIES = report_entries()
FEEDBACK_ENTRIES = feedback_entries()
# Printed in the report so two reports can be told apart; taken before any rule changes config.
CONFIG_HASH = config_hash(config)


# The figures and CSV tables a report may write beside report.md and report.html; each task kind
# names those its report writes (Task.report_files).
REPORT_FILES = {
    "figure_quality": report(
        "results/report/figures/quality.png",
        caption="../report/quality.rst",
        category="Quality",
    ),
    "figure_agreement": report(
        "results/report/figures/agreement.png",
        caption="../report/agreement.rst",
        category="Label quality",
    ),
    "figure_accuracy_by_agreement": report(
        "results/report/figures/accuracy_by_agreement.png",
        caption="../report/accuracy_by_agreement.rst",
        category="Label quality",
    ),
    "figure_confusion": report(
        "results/report/figures/confusion.png",
        caption="../report/confusion.rst",
        category="Quality",
    ),
    "figure_pareto": report(
        "results/report/figures/pareto.png",
        caption="../report/pareto.rst",
        category="Decision report",
    ),
    "figure_cascade": report(
        "results/report/figures/cascade.png",
        caption="../report/cascade.rst",
        category="Cascade",
    ),
    "table_quality": report(
        "results/report/tables/quality.csv",
        caption="../report/tables.rst",
        category="Quality",
        labels={"table": "quality"},
    ),
    "table_label_quality": report(
        "results/report/tables/label_quality.csv",
        caption="../report/tables.rst",
        category="Label quality",
        labels={"table": "label_quality"},
    ),
    "table_teacher_cost": report(
        "results/report/tables/teacher_cost.csv",
        caption="../report/tables.rst",
        category="Teacher cost",
        labels={"table": "teacher_cost"},
    ),
    "table_student_cost": report(
        "results/report/tables/student_cost.csv",
        caption="../report/tables.rst",
        category="Student cost",
        labels={"table": "student_cost"},
    ),
    "table_break_even": report(
        "results/report/tables/break_even.csv",
        caption="../report/tables.rst",
        category="Decision report",
        labels={"table": "break_even"},
    ),
    "table_cascade": report(
        "results/report/tables/cascade.csv",
        caption="../report/tables.rst",
        category="Cascade",
        labels={"table": "cascade"},
    ),
    "table_stages": report(
        "results/report/tables/stages.csv",
        caption="../report/tables.rst",
        category="Run facts",
        labels={"table": "stages"},
    ),
}


rule report:
    input:
        summary=rules.prepare_data.output.summary,
        parts=report_files(REPORT_ENTRIES),
        paired=(
            rules.compare_models.output
            if EVALUATED and TASK_KIND.supports("paired_tests")
            else []
        ),
        # The labeller ranking on the gold dev split, and the choice of students_learn_from: best.
        selection=(
            [rules.select_labeller.output.choice, rules.select_labeller.output.ranking]
            if GOLD_DEV
            else []
        ),
        # The trivial baselines: the train pool's majority class, scored on the test split.
        splits=data_splits("train", "test") if EVALUATED else [],
        feedback=[
            path
            for entry in FEEDBACK_ENTRIES
            for path in (entry["summary"], entry["deferral"])
        ],
    output:
        **{name: REPORT_FILES[name] for name in TASK_KIND.report_files},
        markdown="results/report/report.md",
        html=report(
            "results/report/report.html",
            caption="../report/decision.rst",
            category="Decision report",
            labels={"file": "decision report (self-contained)"},
        ),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    params:
        task=TASK,
        entries=REPORT_ENTRIES,
        labels=lookup(dpath="labels", within=config),
        run={
            "evaluated": EVALUATED,
            "hardware": STUDENT_HARDWARE,
            "config_hash": CONFIG_HASH,
            "benchmarks_dir": "benchmarks",
            "feedback": FEEDBACK_ENTRIES,
        },
    script:
        "../scripts/report.py"
