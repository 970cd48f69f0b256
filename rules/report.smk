def report_entries():
    teachers = [
        {
            "teacher": t,
            "prompt": p,
            "stats": f"results/votes/{t}/{p}.stats.json",
            "metrics": f"results/evaluation/teachers/{t}/{p}.json" if EVALUATED else None,
        }
        for t in TEACHERS
        for p in PROMPTS
    ]
    students = [
        {
            "student": s,
            "teacher": t,
            "prompt": p,
            "metadata": f"results/students/{s}/{t}/{p}/metadata.json",
            "metrics": f"results/evaluation/students/{s}/{t}/{p}.json" if EVALUATED else None,
        }
        for s in STUDENTS
        for t, p in label_sources()
    ]
    return {"teachers": teachers, "students": students}


def report_files(entries):
    return [
        path
        for group in entries.values()
        for entry in group
        for key, path in entry.items()
        if key in ("stats", "metrics", "metadata") and path
    ]


REPORT_ENTRIES = report_entries()


rule report:
    input:
        summary="results/data/summary.json",
        parts=report_files(REPORT_ENTRIES),
    output:
        markdown="results/report/report.md",
        html="results/report/report.html",
    params:
        entries=REPORT_ENTRIES,
        evaluated=EVALUATED,
    log:
        "logs/report.log",
    script:
        "../scripts/report.py"
